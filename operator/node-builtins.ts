// node:http and node:crypto without their ESM facades. `import … from 'node:http'` makes a namespace of
// every export of the module, which reads its lazy WebSocket / CloseEvent / MessageEvent getters and so loads
// Node's bundled undici and http2 (5 MiB RSS, 2.8 MiB of it anonymous, for a process that uses neither);
// node:crypto's facade loads WebCrypto the same way (0.9 MiB). Measured on Node 24 for the operator's idle
// memory (issue 16, bench P4i). process.getBuiltinModule hands out the module objects themselves, typed
// the same; types come from `import type { … } from 'node:…'`, which is erased. eslint.config.js keeps
// value imports of the two modules out of operator/.
export const http = process.getBuiltinModule('node:http');
export const crypto = process.getBuiltinModule('node:crypto');
export const http2 = process.getBuiltinModule('node:http2');
