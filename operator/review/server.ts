// The click listener: its own port (never the metrics port), one path (the callback URL's), POST with a
// JSON body of at most 64 KiB. It always answers 200 with JSON within the deadline, because Mattermost
// shows the clicker a bare error for anything else; the ephemeral text says what happened.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { http } from '../node-builtins.js';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../observability/logger.js';
import { EPHEMERAL_TEXT, type ClickBody, type ClickHandler } from './handler.js';

const MAX_BODY_BYTES = 64 * 1024;
/** Mattermost waits 30 s by default; the issue asks for an answer within 10 s. */
export const ANSWER_DEADLINE_MS = 9_000;

export interface ReviewListener {
  port: number;
  close(): Promise<void>;
}

function splitListen(addr: string): { host: string | undefined; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*))?:(\d+)$/.exec(addr.trim());
  const host = m?.[1] ?? m?.[2];
  return { host: host ? host : undefined, port: Number(m?.[3] ?? 0) };
}

function readBody(req: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY_BYTES) chunks.push(c);
    });
    req.on('end', () => resolve(size > MAX_BODY_BYTES ? undefined : Buffer.concat(chunks).toString('utf8')));
    req.on('error', () => resolve(undefined));
  });
}

export async function startReviewListener(
  listenAddr: string,
  callbackPath: string,
  handler: ClickHandler,
  logger: Logger,
  deadlineMs = ANSWER_DEADLINE_MS,
): Promise<ReviewListener> {
  const answer = (res: ServerResponse, text: string): void => {
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ ephemeral_text: text }));
  };
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'POST' || path !== callbackPath) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
      return;
    }
    void (async () => {
      const raw = await readBody(req);
      let body: ClickBody | undefined;
      try {
        const parsed: unknown = raw === undefined ? undefined : JSON.parse(raw);
        if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) body = parsed as ClickBody;
      } catch {
        body = undefined;
      }
      if (!body) return answer(res, EPHEMERAL_TEXT.unverified);
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<string>((resolve) => {
        timer = setTimeout(() => resolve(EPHEMERAL_TEXT.timeout), deadlineMs);
      });
      const text = await Promise.race([handler.handle(body).then((r) => r.ephemeralText), late]);
      clearTimeout(timer);
      answer(res, text);
    })();
  });
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  const { host, port } = splitListen(listenAddr);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;
  logger.info('Review click listener is running', { addr: listenAddr, port: bound, path: callbackPath });
  return {
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
