import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'operator/teleport/gen/**', 'coverage/**', '.tmp/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        URL: 'readonly',
        AbortController: 'readonly',
        AbortSignal: 'readonly',
        fetch: 'readonly',
        setImmediate: 'readonly',
        structuredClone: 'readonly',
        performance: 'readonly',
        queueMicrotask: 'readonly',
        TextEncoder: 'readonly',
        TextDecoder: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    // Their ESM facades load undici, http2 and WebCrypto for nothing (operator/node-builtins.ts).
    files: ['operator/**/*.ts'],
    ignores: ['operator/node-builtins.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        ...['node:http', 'http', 'node:crypto', 'crypto'].map((name) => ({
          name,
          allowTypeImports: true,
          message:
            'Use { http } / { crypto } from operator/node-builtins.ts: this import loads undici and WebCrypto.',
        })),
        {
          // A dev dependency (the test server); the shipped client is operator/teleport/channel.ts (issue 16).
          name: '@grpc/grpc-js',
          message:
            'Use operator/teleport/grpc.ts: grpc-js is only for the test server (test/teleport-server).',
        },
      ],
    },
  },
);
