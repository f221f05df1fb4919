// Pure mapping of Mattermost HTTP outcomes to MattermostError kinds, with messages that say what is
// wrong and what to do. The client makes one attempt per call; the relay's delivery queue decides on
// retries from `kind` (and `retryAfterMs` for 429).
import { MattermostError, type MattermostErrorKind } from './api.js';

/** When a 429 carries neither Retry-After nor X-Ratelimit-Reset. */
export const DEFAULT_RETRY_AFTER_MS = 1000;

/** The AppError body fields we use (any of them may be missing on a proxy's or a 429's body). */
interface AppErrorBody {
  id?: unknown;
  message?: unknown;
}

function describeBody(data: unknown, contentType: string | null): string {
  if (data && typeof data === 'object') {
    const body = data as AppErrorBody;
    const id = typeof body.id === 'string' && body.id ? body.id : '';
    const message = typeof body.message === 'string' && body.message ? body.message : '';
    const text = [id, message && message !== id ? message : ''].filter(Boolean).join(': ');
    if (text) return text;
  }
  if (typeof data === 'string' && data.trim()) {
    const flat = data.replace(/\s+/g, ' ').trim();
    return flat.length > 120 ? `${flat.slice(0, 120)}…` : flat;
  }
  return contentType ? `empty ${contentType} body` : 'empty body';
}

/** Seconds (Retry-After, X-Ratelimit-Reset: "seconds until reset", not an epoch) to ms. */
export function retryAfterMs(headers: { get(name: string): string | null }): number {
  for (const name of ['Retry-After', 'X-Ratelimit-Reset']) {
    const raw = headers.get(name);
    if (raw === null || raw.trim() === '') continue;
    const seconds = Number(raw);
    if (Number.isFinite(seconds) && seconds >= 0) return Math.max(Math.ceil(seconds * 1000), 1);
    // Retry-After may also be an HTTP date.
    const at = Date.parse(raw);
    if (!Number.isNaN(at)) return Math.max(at - Date.now(), 1);
  }
  return DEFAULT_RETRY_AFTER_MS;
}

/** A non-2xx answer from the server (or from a proxy in front of it). */
export function errorFromResponse(
  op: string,
  url: string,
  status: number,
  headers: { get(name: string): string | null },
  data: unknown,
): MattermostError {
  const detail = describeBody(data, headers.get('Content-Type'));
  const what = `Mattermost ${op} at ${url} failed with HTTP ${status} (${detail})`;
  const body = data && typeof data === 'object' ? (data as AppErrorBody) : {};
  const id = typeof body.id === 'string' && body.id ? body.id : undefined;
  const make = (kind: MattermostErrorKind, message: string, retryAfter?: number) =>
    new MattermostError(kind, message, status, retryAfter, kind === 'RateLimited', id);
  if (status === 401) {
    return make(
      'Unauthorized',
      `${what}: the bot token was rejected. Either [mattermost] token is wrong or revoked, or the bot account ` +
        `is disabled (System Console > Integrations > Bot Accounts); fix it and restart or reload (SIGHUP).`,
    );
  }
  if (status === 403) {
    return make(
      'Forbidden',
      `${what}: the bot is not allowed to do this here (not a member of the channel, a deleted post, or ` +
        `a permission it lacks).`,
    );
  }
  if (status === 429) {
    const wait = retryAfterMs(headers);
    return make('RateLimited', `${what}: rate limited by the server (retry after ${wait} ms).`, wait);
  }
  if (status === 404) return make('NotFound', `${what}: not found.`);
  if (status >= 500) return make('Unavailable', `${what}: the server had a problem.`);
  // 400, 413 and any other 4xx: the request itself is wrong and repeating it will not help.
  return make('BadRequest', `${what}.`);
}

const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'ERR_SSL_WRONG_VERSION_NUMBER',
]);

/** Failures before a request could reach Mattermost: nothing was processed. */
const NOT_SENT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);

const NETWORK_HINTS: Record<string, string> = {
  ECONNREFUSED: 'connection refused: is Mattermost running and is [mattermost] url right?',
  ENOTFOUND: 'the host name does not resolve: check [mattermost] url',
  EAI_AGAIN: 'the host name could not be resolved right now (DNS)',
  ECONNRESET: 'the connection was reset',
  EPIPE: 'the connection was closed while sending',
  ETIMEDOUT: 'the connection timed out',
  EHOSTUNREACH: 'the host is unreachable',
  ENETUNREACH: 'the network is unreachable',
  UND_ERR_SOCKET: 'the connection was closed by the other side',
  UND_ERR_CONNECT_TIMEOUT: 'connecting timed out',
  UND_ERR_HEADERS_TIMEOUT: 'the server did not answer in time',
  UND_ERR_BODY_TIMEOUT: 'the server stopped sending the answer',
};

function causeChain(err: unknown): Array<{ code?: string; message?: string; name?: string }> {
  const out: Array<{ code?: string; message?: string; name?: string }> = [];
  let cur: unknown = err;
  for (let i = 0; i < 5 && cur && typeof cur === 'object'; i++) {
    out.push(cur as { code?: string; message?: string; name?: string });
    cur = (cur as { cause?: unknown }).cause;
  }
  return out;
}

/** A failure before any HTTP answer: timeout, refused connection, TLS, DNS, reset. Always Unavailable. */
export function errorFromNetwork(op: string, url: string, err: unknown, timeoutMs: number): MattermostError {
  const chain = causeChain(err);
  if (chain.some((e) => e.name === 'TimeoutError')) {
    return new MattermostError(
      'Unavailable',
      `Mattermost ${op} at ${url} did not answer within ${timeoutMs} ms.`,
    );
  }
  const code = chain.map((e) => e.code).find((c): c is string => typeof c === 'string' && c !== 'UND_ERR');
  if (code && (TLS_CODES.has(code) || code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL'))) {
    return new MattermostError(
      'Unavailable',
      `Mattermost ${op} at ${url} failed: TLS verification of the server failed (${code}). If Mattermost uses ` +
        `a private CA, set [mattermost] ca_file to that CA's PEM file; check that the URL's host name matches ` +
        `the certificate.`,
      undefined,
      undefined,
      true,
    );
  }
  const hint = code ? (NETWORK_HINTS[code] ?? code) : undefined;
  const message =
    chain
      .map((e) => e.message)
      .filter(Boolean)
      .at(-1) ?? String(err);
  return new MattermostError(
    'Unavailable',
    `Mattermost ${op} at ${url} failed: ${hint ? `${hint} (${code})` : message}.`,
    undefined,
    undefined,
    code !== undefined && NOT_SENT_CODES.has(code),
  );
}
