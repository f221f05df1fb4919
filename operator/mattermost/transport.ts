// One HTTP call to the Mattermost REST API, and what its answer means.
//
// - Every answer body is read with a cap (a post is at most 16383 runes; no answer we use comes near a
//   few MB): a bigger one is cut off and treated as Unexpected, so a runaway proxy or server cannot
//   bloat the process.
// - A 2xx that is not the API's JSON (an SSO proxy's login page, text/plain, truncated JSON, a redirect)
//   is Unexpected: temporary and ambiguous (the call may have been carried out), never a refusal.
// - A non-2xx is classified by its status (errors.ts); the AppError id rides along for per-call meaning
//   (refusal.ts).
// - One attempt per call: the relay owns retries. The outage watch logs one warning when Mattermost goes
//   away and one info line when it is back, with how long and how many calls failed meanwhile.
import type { Logger } from '../observability/logger.js';
import { MattermostError } from './api.js';
import { maskUrl } from './connection.js';
import { errorFromNetwork, errorFromResponse } from './errors.js';

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
}

export type Method = 'GET' | 'POST' | 'PUT';

export interface Transport {
  /** One call; returns the parsed JSON of a 2xx or throws a MattermostError. `path` is below /api/v4. */
  call<T>(op: string, path: string, method: Method, body?: unknown): Promise<T>;
}

type Body = { text: string } | { oversize: true };

/** Reads at most `cap` bytes of the body; cancels the rest. */
export async function readCapped(response: Response, cap: number): Promise<Body> {
  const declared = Number(response.headers.get('Content-Length') ?? '');
  if (Number.isFinite(declared) && declared > cap) {
    await response.body?.cancel().catch(() => undefined);
    return { oversize: true };
  }
  if (!response.body) return { text: '' };
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > cap) {
      await reader.cancel().catch(() => undefined);
      return { oversize: true };
    }
    chunks.push(value);
  }
  return { text: new TextDecoder().decode(Buffer.concat(chunks)) };
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

  async function exchange(op: string, url: string, shown: string, method: Method, body?: unknown) {
    try {
      const response = await fetch(url, {
        method,
        headers: body === undefined ? headers : { ...headers, 'Content-Type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        redirect: 'manual',
        signal: AbortSignal.timeout(opts.timeoutMs),
      });
      return { response, body: await readCapped(response, cap) };
    } catch (err) {
      const mapped = errorFromNetwork(op, shown, err, opts.timeoutMs);
      outage.failed(mapped);
      throw mapped;
    }
  }

  async function call<T>(op: string, path: string, method: Method, body?: unknown): Promise<T> {
    const url = `${opts.baseUrl}/api/v4${path}`;
    const shown = url.split('?')[0]!;
    const { response, body: answer } = await exchange(op, url, shown, method, body).catch((err: unknown) => {
      opts.logger.debug('Mattermost call failed', { op, url: shown, error: (err as Error).message });
      throw err;
    });
    const type = response.headers.get('Content-Type') ?? 'no content type';
    const data = 'text' in answer ? parseJson(answer.text) : undefined;
    let failure: MattermostError | undefined;
    if ('oversize' in answer) {
      failure = unexpected(op, shown, response.status, `a body over ${cap} bytes`);
    } else if (response.status >= 300 && response.status < 400) {
      const to = response.headers.get('Location');
      const where = to ? ` to ${maskUrl(to.split('?')[0]!)}` : '';
      failure = unexpected(op, shown, response.status, `a redirect${where} (redirects are not followed)`);
    } else if (!response.ok) {
      failure = errorFromResponse(op, shown, response.status, response.headers, data ?? answer.text);
    } else if (!data || typeof data !== 'object') {
      failure = unexpected(op, shown, response.status, answer.text.trim() ? type : `an empty ${type} body`);
    }
    if (failure && failure.kind === 'Unavailable' && GATEWAY_DOWN.has(response.status)) {
      outage.failed(failure);
    } else if (failure?.kind !== 'Unexpected') {
      // Something that is not Mattermost (an auth proxy) may answer while Mattermost is away.
      outage.answered();
    }
    if (failure) {
      opts.logger.debug('Mattermost call failed', {
        op,
        url: shown,
        status: response.status,
        error: failure.message,
      });
      throw failure;
    }
    return data as T;
  }

  return { call };
}
