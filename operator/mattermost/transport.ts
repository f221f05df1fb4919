// One HTTP call to the Mattermost REST API, and what its answer means.
//
// - Every answer body is read with a cap (a post is at most 16383 runes; no answer we use comes near a
//   few MB): a bigger one is cut off and treated as Unexpected, so a runaway proxy or server cannot
//   bloat the process.
// - A 2xx that is not the API's JSON (an SSO proxy's login page, text/plain, truncated JSON, a redirect)
//   is Unexpected: temporary and ambiguous (the call may have been carried out), never a refusal.
// - A non-2xx is classified by its status (errors.ts); the AppError id rides along for per-call meaning
//   (refusal.ts).
// - Every call passes the process's pacing gate (pacing.ts) first and feeds it its answer's rate-limit
//   headers; a 429 the gate paced says to retry when the gate expects a token, not after Retry-After.
// - One attempt per call: the relay owns retries. The outage watch logs one warning when Mattermost goes
//   away and one info line when it is back, with how long and how many calls failed meanwhile.
// - Calls go through node:http / node:https with a keep-alive agent, not fetch: fetch loads Node's bundled
//   undici (3–4 MiB of the watcher's RSS, issue 16) and costs more CPU per call; redirects are never
//   followed and no compression is asked for, so an answer is what the server sent.
import type { Agent, IncomingMessage } from 'node:http';
import https from 'node:https';
import { http } from '../node-builtins.js';
import type { Logger } from '../observability/logger.js';
import { MattermostError } from './api.js';
import { maskUrl } from './connection.js';
import { errorFromNetwork, errorFromResponse } from './errors.js';
import type { PacingGate } from './pacing.js';

/** The largest answer body read; anything bigger is cut off and Unexpected. */
export const MAX_BODY_BYTES = 4 * 1024 * 1024;

export interface TransportOptions {
  /** Normalized base URL without credentials (normalizeBaseUrl). */
  baseUrl: string;
  token: string;
  timeoutMs: number;
  userAgent: string;
  logger: Logger;
  maxBodyBytes?: number;
  /** The process's pacing gate (pacing.ts): every call waits there and reports its answer's headers. */
  gate?: PacingGate;
}

export type Method = 'GET' | 'POST' | 'PUT';

export interface Transport {
  /** One call; returns the parsed JSON of a 2xx or throws a MattermostError. `path` is below /api/v4. */
  call<T>(op: string, path: string, method: Method, body?: unknown): Promise<T>;
}

type Body = { text: string } | { oversize: true };

/** An answer's headers, read by name (case-insensitive), like fetch's Headers. */
export interface AnswerHeaders {
  get(name: string): string | null;
  has(name: string): boolean;
}

interface Answer {
  status: number;
  headers: AnswerHeaders;
  body: Body;
}

function headersOf(res: IncomingMessage): AnswerHeaders {
  const value = (name: string) => res.headers[name.toLowerCase()];
  return {
    get: (name) => {
      const v = value(name);
      return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
    },
    has: (name) => value(name) !== undefined,
  };
}

/** Reads at most `cap` bytes of the body; drops the connection rather than read more. */
export async function readCapped(res: IncomingMessage, cap: number): Promise<Body> {
  const declared = Number(res.headers['content-length'] ?? '');
  if (Number.isFinite(declared) && declared > cap) {
    res.destroy();
    return { oversize: true };
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > cap) {
      res.destroy();
      return { oversize: true };
    }
    chunks.push(chunk);
  }
  return { text: new TextDecoder().decode(Buffer.concat(chunks)) };
}

/**
 * Keep-alive connections for one transport. An idle connection is closed after 4 s (as fetch's undici
 * did), before a server or proxy closes it under a request (nginx and load balancers wait 60 s or more).
 */
function agentsFor(): { http: Agent; https: https.Agent } {
  const options = { keepAlive: true, timeout: 4000 };
  return { http: new http.Agent(options), https: new https.Agent(options) };
}

/** The parsed JSON value, or undefined when the text is not JSON. */
function parseJson(text: string): unknown {
  if (!/^\s*[[{]/.test(text)) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function unexpected(op: string, url: string, status: number, what: string): MattermostError {
  return new MattermostError(
    'Unexpected',
    `Mattermost ${op} at ${url} answered HTTP ${status} with ${what}, not the JSON of the Mattermost API ` +
      `(an SSO or auth proxy in front of Mattermost? is [mattermost] url the server's base URL?); ` +
      `the call may or may not have been carried out, so it is checked and retried.`,
    status,
  );
}

/** Logs one warning when Mattermost stops answering and one info line when it answers again. */
class OutageWatch {
  private since: number | undefined;
  private failedCalls = 0;

  constructor(private readonly logger: Logger) {}

  failed(err: MattermostError): void {
    if (this.since === undefined) {
      this.since = Date.now();
      this.logger.warn('Mattermost is not reachable; requests are kept and retried', { error: err.message });
    }
    this.failedCalls++;
  }

  answered(): void {
    if (this.since === undefined) return;
    this.logger.info('Mattermost is reachable again', {
      unreachable_for_ms: Date.now() - this.since,
      retried_calls: this.failedCalls,
    });
    this.since = undefined;
    this.failedCalls = 0;
  }
}

/** A 429 while the gate paces: the retry waits at the gate, so it need not sit out the whole Retry-After. */
function pacedRetry(err: MattermostError, gate: PacingGate): MattermostError {
  const wait = gate.estimatedWaitMs();
  return new MattermostError(err.kind, err.message, err.status, wait, err.notProcessed, err.appErrorId);
}

/** 502/503/504 come from a proxy whose upstream (Mattermost) is not answering. */
const GATEWAY_DOWN = new Set([502, 503, 504]);

export function createTransport(opts: TransportOptions): Transport {
  const cap = opts.maxBodyBytes ?? MAX_BODY_BYTES;
  const outage = new OutageWatch(opts.logger);
  const headers = {
    Authorization: `Bearer ${opts.token}`,
    Accept: 'application/json',
    'User-Agent': opts.userAgent,
    'X-Requested-With': 'XMLHttpRequest',
  };

  const agents = agentsFor();

  async function exchange(op: string, url: string, shown: string, method: Method, body?: unknown) {
    const gate = opts.gate;
    if (!gate) return send(op, url, shown, method, body);
    const entered = gate.enter();
    const ticket = typeof entered === 'number' ? entered : await entered;
    try {
      const answer = await send(op, url, shown, method, body);
      gate.leave(ticket, answer.status, answer.headers);
      return answer;
    } catch (err) {
      gate.leave(ticket);
      throw err;
    }
  }

  /** One request, its answer read with the cap; the timeout covers both. */
  function request(url: string, method: Method, body?: unknown): Promise<Answer> {
    const target = new URL(url);
    const secure = target.protocol === 'https:';
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise<Answer>((resolve, reject) => {
      const req = (secure ? https : http).request(
        target,
        {
          method,
          agent: secure ? agents.https : agents.http,
          headers: payload
            ? { ...headers, 'Content-Type': 'application/json', 'Content-Length': payload.length }
            : headers,
          signal: AbortSignal.timeout(opts.timeoutMs),
        },
        (res) => {
          readCapped(res, cap).then(
            (answer) => resolve({ status: res.statusCode ?? 0, headers: headersOf(res), body: answer }),
            reject,
          );
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  async function send(op: string, url: string, shown: string, method: Method, body?: unknown) {
    try {
      return await request(url, method, body);
    } catch (err) {
      const mapped = errorFromNetwork(op, shown, err, opts.timeoutMs);
      outage.failed(mapped);
      throw mapped;
    }
  }

  async function call<T>(op: string, path: string, method: Method, body?: unknown): Promise<T> {
    const url = `${opts.baseUrl}/api/v4${path}`;
    const shown = url.split('?')[0]!;
    const {
      status,
      headers: answerHeaders,
      body: answer,
    } = await exchange(op, url, shown, method, body).catch((err: unknown) => {
      opts.logger.debug('Mattermost call failed', { op, url: shown, error: (err as Error).message });
      throw err;
    });
    const type = answerHeaders.get('Content-Type') ?? 'no content type';
    const data = 'text' in answer ? parseJson(answer.text) : undefined;
    let failure: MattermostError | undefined;
    if ('oversize' in answer) {
      failure = unexpected(op, shown, status, `a body over ${cap} bytes`);
    } else if (status >= 300 && status < 400) {
      const to = answerHeaders.get('Location');
      const where = to ? ` to ${maskUrl(to.split('?')[0]!)}` : '';
      failure = unexpected(op, shown, status, `a redirect${where} (redirects are not followed)`);
    } else if (status < 200 || status >= 300) {
      failure = errorFromResponse(op, shown, status, answerHeaders, data ?? answer.text);
    } else if (!data || typeof data !== 'object') {
      failure = unexpected(op, shown, status, answer.text.trim() ? type : `an empty ${type} body`);
    }
    if (failure && failure.kind === 'Unavailable' && GATEWAY_DOWN.has(status)) {
      outage.failed(failure);
    } else if (failure?.kind !== 'Unexpected') {
      // Something that is not Mattermost (an auth proxy) may answer while Mattermost is away.
      outage.answered();
    }
    if (failure?.kind === 'RateLimited' && opts.gate && answerHeaders.has('X-Ratelimit-Remaining')) {
      failure = pacedRetry(failure, opts.gate);
    }
    if (failure) {
      opts.logger.debug('Mattermost call failed', {
        op,
        url: shown,
        status: status,
        error: failure.message,
      });
      throw failure;
    }
    return data as T;
  }

  return { call };
}
