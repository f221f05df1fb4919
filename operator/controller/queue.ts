// A client-go style work queue for reconcile keys ("namespace/name").
//
// Invariants:
// - De-duplication: a key waiting in the queue is queued once, however often it is added.
// - Single flight: a key being processed is never handed to a second worker; if it is added meanwhile it
//   is marked dirty and queued again when done() is called, so the newest state is always reconciled.
// - Rate limiting: addRateLimited() delays a key by per-key exponential backoff (base * 2^failures, capped)
//   or by a global token bucket, whichever is longer; forget() resets the key's failures.
// - addAfter() schedules a key (the earliest pending schedule wins); shutdown() wakes every waiting worker.

export interface RateLimiterOptions {
  baseMs: number;
  maxMs: number;
  qps: number;
  burst: number;
}

/** Token bucket: reserve() returns how long to wait for the next token. */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly qps: number,
    private readonly burst: number,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = burst;
    this.last = now();
  }

  reserve(): number {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.qps);
    this.last = t;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens / this.qps) * 1000);
  }
}

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly waiters: Array<(key: string | undefined) => void> = [];
  private readonly bucket: TokenBucket;
  private stopped = false;

  constructor(
    private readonly limits: RateLimiterOptions,
    private readonly now: () => number = Date.now,
  ) {
    this.bucket = new TokenBucket(limits.qps, limits.burst, now);
  }

  /** Queues the key unless it is already waiting; a key in flight is re-queued when it is done. */
  add(key: string): void {
    if (this.stopped || this.dirty.has(key)) return;
    this.dirty.add(key);
    if (this.processing.has(key)) return;
    const waiter = this.waiters.shift();
    if (waiter) {
      this.dirty.delete(key);
      this.processing.add(key);
      waiter(key);
    } else {
      this.queue.push(key);
    }
  }

  /** Adds the key after `delayMs`; an earlier pending schedule of the same key is kept. */
  addAfter(key: string, delayMs: number): void {
    if (this.stopped) return;
    if (delayMs <= 0) return this.add(key);
    const at = this.now() + delayMs;
    const pending = this.timers.get(key);
    if (pending && pending.at <= at) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, delayMs);
    timer.unref();
    this.timers.set(key, { at, timer });
  }

  /** The delay addRateLimited() would use now (and counts the failure). */
  nextBackoff(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const perItem = Math.min(this.limits.maxMs, this.limits.baseMs * 2 ** n);
    return Math.max(perItem, this.bucket.reserve());
  }

  addRateLimited(key: string): void {
    this.addAfter(key, this.nextBackoff(key));
  }

  /** Clears the key's failure count (after a successful reconcile). */
  forget(key: string): void {
    this.failures.delete(key);
  }

  failureCount(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** Waits for the next key; undefined once the queue is shut down. The caller must call done(key). */
  get(): Promise<string | undefined> {
    if (this.stopped) return Promise.resolve(undefined);
    const key = this.queue.shift();
    if (key !== undefined) {
      this.dirty.delete(key);
      this.processing.add(key);
      return Promise.resolve(key);
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.has(key) && !this.stopped) {
      this.dirty.delete(key);
      this.add(key);
    }
  }

  /** Keys waiting (not counting those in flight or scheduled for later). */
  len(): number {
    return this.queue.length;
  }

  inFlight(): number {
    return this.processing.size;
  }

  shutdown(): void {
    this.stopped = true;
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    for (const w of this.waiters.splice(0)) w(undefined);
  }
}
