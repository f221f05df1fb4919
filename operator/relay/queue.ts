// A keyed work queue: bounded concurrency overall, at most one running task per key (strict order per
// request), coalescing of events that arrive while a key is busy (reconciliation is level-based, so
// the newest snapshot is all that matters), and re-queueing with backoff on failure. Nothing is dropped
// while the queue runs; on stop, pending keys are left for the next start's catch-up.
import { backoffDelay } from './retry.js';

export interface QueueOptions<T> {
  concurrency: number;
  requeue: { baseDelayMs: number; maxDelayMs: number };
  /** Combines a pending item with a newer one for the same key. */
  merge: (pending: T, next: T) => T;
  handler: (key: string, item: T, signal: AbortSignal) => Promise<void>;
  onRequeue?: (key: string, err: unknown, attempt: number, delayMs: number) => void;
  onDone?: (key: string, firstQueuedAt: number) => void;
  onDepth?: (depth: number) => void;
}

interface Entry<T> {
  pending: T | undefined;
  running: boolean;
  attempts: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  firstQueuedAt: number;
}

export class KeyedQueue<T> {
  private readonly entries = new Map<string, Entry<T>>();
  private readonly ready: string[] = [];
  private running = 0;
  private stopped = false;
  private readonly abort = new AbortController();
  private idleWaiters: (() => void)[] = [];
  private runningWaiters: (() => void)[] = [];

  constructor(private readonly opts: QueueOptions<T>) {}

  /** Keys with work pending, waiting for a retry, or running. */
  get depth(): number {
    return this.entries.size;
  }

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  push(key: string, item: T): void {
    if (this.stopped) return;
    let entry = this.entries.get(key);
    if (!entry) {
      entry = {
        pending: undefined,
        running: false,
        attempts: 0,
        timer: undefined,
        firstQueuedAt: Date.now(),
      };
      this.entries.set(key, entry);
      this.opts.onDepth?.(this.entries.size);
    }
    entry.pending = entry.pending === undefined ? item : this.opts.merge(entry.pending, item);
    if (!entry.running && entry.timer === undefined && !this.ready.includes(key)) this.ready.push(key);
    this.pump();
  }

  private pump(): void {
    while (!this.stopped && this.running < this.opts.concurrency && this.ready.length > 0) {
      const key = this.ready.shift() as string;
      const entry = this.entries.get(key);
      if (!entry || entry.pending === undefined || entry.running) continue;
      const item = entry.pending;
      entry.pending = undefined;
      entry.running = true;
      this.running++;
      void this.run(key, entry, item);
    }
  }

  private async run(key: string, entry: Entry<T>, item: T): Promise<void> {
    let failure: { err: unknown } | undefined;
    try {
      await this.opts.handler(key, item, this.abort.signal);
    } catch (err) {
      failure = { err };
    }
    entry.running = false;
    this.running--;
    if (failure && !this.stopped) {
      // Keep the failed item unless a newer one arrived meanwhile (then the newer one supersedes it).
      entry.pending = entry.pending === undefined ? item : this.opts.merge(item, entry.pending);
      entry.attempts++;
      const delay = backoffDelay(entry.attempts - 1, this.opts.requeue);
      this.opts.onRequeue?.(key, failure.err, entry.attempts, delay);
      entry.timer = setTimeout(() => {
        entry.timer = undefined;
        if (!this.stopped) this.ready.push(key);
        this.pump();
      }, delay);
    } else if (!failure) {
      entry.attempts = 0;
      if (entry.pending !== undefined) {
        this.ready.push(key);
      } else {
        this.entries.delete(key);
        this.opts.onDone?.(key, entry.firstQueuedAt);
        this.opts.onDepth?.(this.entries.size);
      }
    }
    if (this.running === 0) {
      for (const w of this.runningWaiters.splice(0)) w();
    }
    if (this.entries.size === 0) {
      for (const w of this.idleWaiters.splice(0)) w();
    }
    this.pump();
  }

  /** Runs every key waiting for a retry now (e.g. Mattermost answered again after an outage). */
  retryNow(): void {
    if (this.stopped) return;
    for (const [key, entry] of this.entries) {
      if (entry.timer === undefined) continue;
      clearTimeout(entry.timer);
      entry.timer = undefined;
      this.ready.push(key);
    }
    this.pump();
  }

  /** Resolves when no key has work left (tests, demo). */
  idle(): Promise<void> {
    if (this.entries.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Stops taking work, lets running tasks finish within `timeoutMs`, then aborts them.
   * Returns true when everything in flight finished in time.
   */
  async stop(timeoutMs: number): Promise<boolean> {
    this.stopped = true;
    for (const entry of this.entries.values()) {
      if (entry.timer) clearTimeout(entry.timer);
      entry.timer = undefined;
    }
    this.ready.length = 0;
    if (this.running === 0) return true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const finished = await Promise.race([
      new Promise<boolean>((resolve) => this.runningWaiters.push(() => resolve(true))),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (!finished) this.abort.abort();
    return finished;
  }

  /** Aborts everything at once without waiting (what a crash does). */
  abandon(): void {
    this.stopped = true;
    for (const entry of this.entries.values()) if (entry.timer) clearTimeout(entry.timer);
    this.ready.length = 0;
    this.abort.abort();
  }
}
