// Retries for one Mattermost or Teleport call: exponential backoff with jitter on temporary errors
// (5xx, timeouts, connection errors, 429 honouring Retry-After), bounded by a time budget that each
// recipient gets for itself. A call that is still failing when its budget is spent throws, and the
// queue re-queues the whole request later: nothing is dropped.
import { MattermostError } from '../mattermost/api.js';
import { TeleportError } from '../teleport/api.js';

export interface RetryPolicy {
  /** First backoff delay. */
  baseDelayMs: number;
  /** Cap of one backoff delay (and of an honoured Retry-After). */
  maxDelayMs: number;
  /** Total time one recipient's call may spend retrying before the request is re-queued. */
  budgetMs: number;
}

/** Full-jitter exponential backoff: random in [base/2, min(max, base·2^attempt)]. */
export function backoffDelay(
  attempt: number,
  policy: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs'>,
  random = Math.random,
): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.min(attempt, 30));
  const floor = Math.min(ceiling, policy.baseDelayMs / 2);
  return Math.round(floor + random() * (ceiling - floor));
}

export type ErrorClass = 'temporary' | 'permanent' | 'conflict';

/** How the relay treats an error from either API. */
export function classifyError(err: unknown): ErrorClass {
  if (err instanceof MattermostError) return err.temporary ? 'temporary' : 'permanent';
  if (err instanceof TeleportError) {
    if (err.kind === 'CompareFailed') return 'conflict';
    if (err.kind === 'Unavailable' || err.kind === 'LimitExceeded' || err.kind === 'Unknown')
      return 'temporary';
    return 'permanent';
  }
  // Anything unexpected (a bug, a socket error the client did not wrap) is retried: never drop.
  return 'temporary';
}

/** The server's requested wait (429), if any. */
export function retryAfterOf(err: unknown): number | undefined {
  return err instanceof MattermostError && err.retryAfterMs !== undefined && err.retryAfterMs >= 0
    ? err.retryAfterMs
    : undefined;
}

/** The delay before the next attempt, or undefined when the budget does not allow another one. */
export function nextRetryDelay(
  err: unknown,
  attempt: number,
  elapsedMs: number,
  policy: RetryPolicy,
  random = Math.random,
): number | undefined {
  if (classifyError(err) === 'permanent') return undefined;
  const serverWait = retryAfterOf(err);
  const delay =
    serverWait !== undefined
      ? Math.min(policy.maxDelayMs, Math.max(serverWait, policy.baseDelayMs / 2))
      : backoffDelay(attempt, policy, random);
  if (elapsedMs + delay > policy.budgetMs) return undefined;
  return delay;
}

export class AbortedError extends Error {
  constructor() {
    super('stopped');
    this.name = 'AbortedError';
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new AbortedError());
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new AbortedError());
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export interface RetryHooks {
  signal?: AbortSignal;
  /** Called before each wait (metrics, debug logs). */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  /** Called after a failed attempt that may have had an effect (timeouts): the next attempt can check first. */
  onAmbiguousFailure?: (err: unknown) => void;
}

/** Runs `fn` until it succeeds, fails permanently, or the budget is spent (then the last error is thrown). */
export async function withRetry<T>(
  fn: (attempt: number) => Promise<T>,
  policy: RetryPolicy,
  hooks: RetryHooks = {},
): Promise<T> {
  const started = Date.now();
  for (let attempt = 0; ; attempt++) {
    if (hooks.signal?.aborted) throw new AbortedError();
    try {
      return await fn(attempt);
    } catch (err) {
      if (err instanceof AbortedError) throw err;
      const delay = nextRetryDelay(err, attempt, Date.now() - started, policy);
      if (delay === undefined) throw err;
      hooks.onRetry?.(err, attempt, delay);
      await sleep(delay, hooks.signal);
    }
  }
}
