// Hostile answers for the Mattermost-compatible server: a 2xx whose body is not the API's JSON, as sent by
// an SSO/auth proxy in front of Mattermost (its login page), a misconfigured route (text/plain), a cut
// connection (truncated JSON) or a runaway answer (a body of many megabytes). Kept apart from the
// faithful server so the modes are easy to find and to merge.
import type http from 'node:http';

export type GarbleKind = 'html' | 'text' | 'truncated' | 'oversize' | 'empty';

export interface GarbleRule {
  kind: GarbleKind;
  /** Number of matching calls to garble. */
  count?: number;
  /** Or: garble every matching call for this long. */
  forMs?: number;
  method?: string;
  /** Only calls whose path (without query) starts with this string or matches this regex. */
  path?: string | RegExp;
  /** Carry the call out first (the post exists), then garble the answer. Without it nothing happens. */
  afterProcessing?: boolean;
  /** Size of an `oversize` body (default 8 MiB). */
  bytes?: number;
}

interface ActiveRule extends GarbleRule {
  left?: number;
  until?: number;
}

const LOGIN_PAGE =
  '<!DOCTYPE html><html><head><title>Sign in</title></head><body><form action="/oauth2/start">' +
  '<button>Sign in with SSO</button></form></body></html>';

export class Garbler {
  private rules: ActiveRule[] = [];

  add(rule: GarbleRule): void {
    if (rule.count === undefined && rule.forMs === undefined) throw new Error('garble: give count or forMs');
    this.rules.push({
      ...rule,
      left: rule.count,
      until: rule.forMs !== undefined ? Date.now() + rule.forMs : undefined,
    });
  }

  clear(): void {
    this.rules = [];
  }

  /** The rule that garbles this call at this stage, if any (and counts it). */
  take(method: string, path: string, afterProcessing: boolean): GarbleRule | undefined {
    const now = Date.now();
    this.rules = this.rules.filter(
      (r) => (r.left === undefined || r.left > 0) && (r.until === undefined || r.until > now),
    );
    const rule = this.rules.find(
      (r) =>
        (r.afterProcessing ?? false) === afterProcessing &&
        (!r.method || r.method.toUpperCase() === method.toUpperCase()) &&
        (r.path === undefined || (typeof r.path === 'string' ? path.startsWith(r.path) : r.path.test(path))),
    );
    if (rule && rule.left !== undefined) rule.left--;
    return rule;
  }
}

/** Answers 200 with the garbled body; `json` is the answer the call would have had, if carried out. */
export function sendGarbled(res: http.ServerResponse, rule: GarbleRule, json?: string): void {
  const real = json ?? '{"id":"ybndrfg8ejkmcpqxot1uwisza3","message":"ok","props":{}}';
  switch (rule.kind) {
    case 'html':
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(LOGIN_PAGE);
      return;
    case 'text':
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' }).end('OK\n');
      return;
    case 'empty':
      res.writeHead(200, { 'Content-Type': 'application/json' }).end();
      return;
    case 'truncated':
      res
        .writeHead(200, { 'Content-Type': 'application/json' })
        .end(real.slice(0, Math.max(1, Math.floor(real.length / 2))));
      return;
    case 'oversize':
      streamOversize(res, rule.bytes ?? 8 * 1024 * 1024);
      return;
  }
}

/** A valid-looking JSON object of `bytes` bytes, written in chunks (the client may stop reading early). */
function streamOversize(res: http.ServerResponse, bytes: number): void {
  res.writeHead(200, { 'Content-Type': 'application/json' });
  const head = '{"id":"ybndrfg8ejkmcpqxot1uwisza3","message":"';
  const tail = '"}';
  const chunk = 'x'.repeat(64 * 1024);
  let left = Math.max(0, bytes - head.length - tail.length);
  res.write(head);
  const pump = () => {
    while (left > 0) {
      const piece = chunk.slice(0, Math.min(chunk.length, left));
      left -= piece.length;
      if (!res.write(piece)) {
        res.once('drain', pump);
        return;
      }
    }
    res.end(tail);
  };
  res.on('error', () => undefined);
  pump();
}
