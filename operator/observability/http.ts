// The health and metrics listener shared by the watcher and the operator: /healthz, /readyz, /metrics.
import { http } from '../node-builtins.js';
import type { AddressInfo } from 'node:net';
import type { Registry } from './metrics.js';
import { escapeUnsafe, maskUrlCredentials } from './safe-text.js';

/** /readyz text is read by people and by the operator's status: no URL passwords, no control characters. */
const safe = (line: string): string => escapeUnsafe(maskUrlCredentials(line));

export interface ReadinessCheck {
  /** Returns undefined when ready, otherwise a human reason shown in the /readyz body. */
  (): string | undefined;
}

export interface HealthServer {
  port: number;
  close(): Promise<void>;
}

/** Parses `:8081`, `8081`, `0.0.0.0:8081`, `[::1]:8081` into host and port. */
export function parseListenAddr(addr: string): { host: string | undefined; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*))?:?(\d+)$/.exec(addr.trim());
  if (!m) throw new Error(`listen address must look like ':8081' or '127.0.0.1:8081', got '${addr}'`);
  const host = m[1] ?? (m[2] || undefined);
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`listen address port must be at most 65535, got '${addr}'`);
  return { host, port };
}

export async function startHealthServer(opts: {
  listenAddr: string;
  registry: Registry;
  ready: ReadinessCheck;
  /** Extra lines for the /readyz body that do not make the process unready (e.g. refused recipients). */
  detail?: () => string[];
}): Promise<HealthServer> {
  const { host, port } = parseListenAddr(opts.listenAddr);
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else if (path === '/readyz') {
      const reason = opts.ready();
      const extra = (opts.detail?.() ?? []).map((line) => `${safe(line)}\n`).join('');
      if (reason === undefined) res.writeHead(200, { 'content-type': 'text/plain' }).end(`ok\n${extra}`);
      else res.writeHead(503, { 'content-type': 'text/plain' }).end(`not ready: ${safe(reason)}\n${extra}`);
    } else if (path === '/metrics') {
      opts.registry.metrics().then(
        (body) => res.writeHead(200, { 'content-type': opts.registry.contentType }).end(body),
        (err: unknown) => res.writeHead(500).end(String(err)),
      );
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
