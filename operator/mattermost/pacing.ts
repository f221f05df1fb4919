// The pacing gate: every Mattermost call of the process waits here before it is sent, so that a burst
// is drained at the server's rate limit instead of bouncing off it.
//
// Why one gate per process: Mattermost's limiter (throttled's GCRA) keys by client address (or token),
// so all workers of the watcher share one bucket. Workers backing off on their own after a 429 leave the
// limit unused in waves; one shared model of the bucket lets each call go the moment a token is there.
//
// The model, fed by every answer:
// - `X-Ratelimit-Remaining` is the number of calls the bucket still allows after this one (floored).
//   Each answer re-bases the model on it, minus the calls sent after this one that are still in flight
//   (the server has probably not counted them yet). Re-basing on every answer makes this a closed loop:
//   an estimate of the refill rate that is too low is corrected by the next answers' higher Remaining.
// - The refill rate is not in the headers. `X-Ratelimit-Reset` is whole seconds until the bucket is full
//   (rounded up), so (Limit − Remaining − 1) / Reset is a lower bound of the rate; the gate keeps the
//   highest bound seen, and slows by 10% on each 429 (the rate may have been lowered), never below the bound.
//   A measured refill over one-second windows in which the bucket was never full (RefillWindow) replaces
//   the bound when it is higher: the bound alone is half the real rate whenever the rate exceeds the burst.
//   It never pauses everyone until the reset: with 1-second granularity that idles the limit for most
//   of a second (measured 5× slower).
// - A 429 without rate-limit headers (a proxy's) does not pause the gate: that call's retry honours its
//   Retry-After (retry.ts), as before. (A gate-wide pause was tried: test/integration/relay/
//   hostile-answers.test.ts then ended with an approved request's posts not edited; see the report.)
// - A 2xx without rate-limit headers means the limiter is off: calls pass at once, with no added latency
//   (enter() then returns synchronously, not even a promise).
// Waiting calls leave in arrival order (FIFO), so one recipient's retries queue behind other recipients'
// first attempts instead of starving them.

export interface PacingClock {
  now(): number;
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
}

const realClock: PacingClock = {
  now: () => performance.now(),
  setTimer: (fn, ms) => setTimeout(fn, ms),
  clearTimer: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/** Refill rate floor (calls per ms): the gate never stalls for lack of an estimate. */
const MIN_RATE_PER_MS = 1 / 1000;

export interface HeaderSource {
  get(name: string): string | null;
}

export interface PacingOptions {
  clock?: PacingClock;
  /** Called with how long each call waited at the gate (ms), for a histogram. */
  onWait?: (ms: number) => void;
}

interface Waiter {
  resolve: (ticket: number) => void;
  since: number;
}

function headerNumber(headers: HeaderSource, name: string): number | undefined {
  const raw = headers.get(name);
  if (raw === null || raw.trim() === '') return undefined;
  const n = Number(raw);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

/** How long the refill is measured over before the measurement is used. */
const WINDOW_MS = 1000;

/**
 * Measures the refill rate: over a window in which the bucket was never full, tokens refilled =
 * the change in Remaining + the calls it let through. Used slightly discounted (floors and answers
 * arriving out of order make it ±1–2 calls per window), and only while it beats the Reset bound.
 */
class RefillWindow {
  private from: { at: number; remaining: number } | undefined;
  private passed = 0;

  /** Adds an answer; returns a rate (per ms) when a window is complete. */
  sample(now: number, limit: number, remaining: number, passed: boolean): number | undefined {
    if (remaining >= limit - 1) {
      this.from = undefined; // a full bucket wastes refill: nothing to measure
      return undefined;
    }
    if (!this.from) {
      this.from = { at: now, remaining };
      this.passed = 0;
      return undefined;
    }
    if (passed) this.passed++;
    const span = now - this.from.at;
    if (span < WINDOW_MS) return undefined;
    const rate = (0.95 * (remaining - this.from.remaining + this.passed)) / span;
    this.from = { at: now, remaining };
    this.passed = 0;
    return rate > 0 ? rate : undefined;
  }
}

export class PacingGate {
  private readonly clock: PacingClock;
  /** X-Ratelimit-Limit (the bucket size); undefined while the server sends no rate-limit headers. */
  private limit: number | undefined;
  private base = 0;
  private baseAt = 0;
  /** The ticket whose answer set `base`; older answers carry older news and do not re-base. */
  private baseTicket = 0;
  private sentSinceBase = 0;
  private ratePerMs = MIN_RATE_PER_MS;
  private readonly window = new RefillWindow();
  private nextTicket = 1;
  private readonly inFlight = new Set<number>();
  private readonly queue: Waiter[] = [];
  private timer: unknown;
  /** Called with how long each call that had to wait waited (ms); settable later (metrics). */
  onWait: ((ms: number) => void) | undefined;

  constructor(opts: PacingOptions = {}) {
    this.clock = opts.clock ?? realClock;
    this.onWait = opts.onWait;
  }

  /** Whether the server's answers currently carry rate-limit headers. */
  get pacing(): boolean {
    return this.limit !== undefined;
  }

  /** Calls the model thinks the bucket allows now (undefined when not pacing). */
  get tokens(): number | undefined {
    return this.limit === undefined ? undefined : this.tokensAt(this.clock.now());
  }

  /** Calls waiting at the gate. */
  get waiting(): number {
    return this.queue.length;
  }

  /** The refill rate the gate paces with, in calls per second (undefined when not pacing). */
  get ratePerSecond(): number | undefined {
    return this.limit === undefined ? undefined : this.ratePerMs * 1000;
  }

  /** A ticket to send one call now, or a promise of one. Pass the ticket to leave() with the answer. */
  enter(): number | Promise<number> {
    if (this.queue.length === 0 && this.mayPass(this.clock.now())) return this.pass();
    return new Promise<number>((resolve) => {
      this.queue.push({ resolve, since: this.clock.now() });
      this.pump();
    });
  }

  /** The call of `ticket` got an answer (its headers), or failed without one (no headers). */
  leave(ticket: number, status?: number, headers?: HeaderSource): void {
    this.inFlight.delete(ticket);
    if (headers) this.observe(ticket, status ?? 0, headers);
    this.pump();
  }

  /** How long a call entering now would wait, roughly (ms); for the retry delay after a paced 429. */
  estimatedWaitMs(): number {
    const now = this.clock.now();
    if (this.limit === undefined) return 0;
    const missing = 1 + this.queue.length - this.tokensAt(now);
    return missing <= 0 ? 0 : Math.ceil(missing / this.ratePerMs);
  }

  private observe(ticket: number, status: number, headers: HeaderSource): void {
    const now = this.clock.now();
    const limit = headerNumber(headers, 'X-Ratelimit-Limit');
    const remaining = headerNumber(headers, 'X-Ratelimit-Remaining');
    if (limit === undefined || remaining === undefined || limit < 1) {
      // A 429 without them (a proxy's) is left to the caller's retry, which honours its Retry-After.
      if (status >= 200 && status < 300) this.limit = undefined; // the limiter is off
      return;
    }
    const reset = headerNumber(headers, 'X-Ratelimit-Reset');
    const bound = reset ? Math.max(0, limit - remaining - 1) / (reset * 1000) : 0;
    const measured = this.window.sample(now, limit, remaining, status !== 429);
    if (this.limit === undefined) this.ratePerMs = Math.max(MIN_RATE_PER_MS, bound);
    else if (status === 429) this.ratePerMs = Math.max(MIN_RATE_PER_MS, bound, 0.9 * this.ratePerMs);
    else this.ratePerMs = Math.max(this.ratePerMs, bound);
    if (measured !== undefined) this.ratePerMs = Math.max(MIN_RATE_PER_MS, bound, measured);
    this.limit = limit;
    if (ticket < this.baseTicket) return;
    let sentLater = 0;
    for (const t of this.inFlight) if (t > ticket) sentLater++;
    this.base = remaining;
    this.baseAt = now;
    this.baseTicket = ticket;
    this.sentSinceBase = sentLater;
  }

  private tokensAt(now: number): number {
    const limit = this.limit ?? Infinity;
    return Math.min(limit, this.base + (now - this.baseAt) * this.ratePerMs) - this.sentSinceBase;
  }

  private mayPass(now: number): boolean {
    return this.limit === undefined || this.tokensAt(now) >= 1;
  }

  private pass(): number {
    const ticket = this.nextTicket++;
    this.inFlight.add(ticket);
    if (this.limit !== undefined) this.sentSinceBase++;
    return ticket;
  }

  private pump(): void {
    if (this.timer !== undefined) this.clock.clearTimer(this.timer);
    this.timer = undefined;
    const now = this.clock.now();
    while (this.queue.length > 0 && this.mayPass(now)) {
      const waiter = this.queue.shift()!;
      this.onWait?.(now - waiter.since);
      waiter.resolve(this.pass());
    }
    if (this.queue.length === 0) return;
    const delay = (1 - this.tokensAt(now)) / this.ratePerMs;
    this.timer = this.clock.setTimer(
      () => {
        this.timer = undefined;
        this.pump();
      },
      Math.max(1, Math.ceil(delay)),
    );
  }
}
