import { KeyedQueue } from '../../../operator/relay/queue.js';

const tick = (ms = 2) => new Promise((r) => setTimeout(r, ms));

describe('KeyedQueue', () => {
  it('runs one task per key at a time, in order, and bounds concurrency overall', async () => {
    let running = 0;
    let maxRunning = 0;
    const perKey = new Map<string, number>();
    const seen: string[] = [];
    const q = new KeyedQueue<number>({
      concurrency: 3,
      requeue: { baseDelayMs: 1, maxDelayMs: 5 },
      merge: (_a, b) => b,
      handler: async (key, item) => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        perKey.set(key, (perKey.get(key) ?? 0) + 1);
        expect(perKey.get(key)).toBe(1);
        seen.push(`${key}:${item}`);
        await tick(5);
        perKey.set(key, (perKey.get(key) ?? 0) - 1);
        running--;
      },
    });
    for (let i = 0; i < 10; i++) q.push(`k${i % 5}`, i);
    await q.idle();
    expect(maxRunning).toBeLessThanOrEqual(3);
    for (let k = 0; k < 5; k++) {
      const items = seen.filter((s) => s.startsWith(`k${k}:`)).map((s) => Number(s.split(':')[1]));
      expect(items).toEqual([...items].sort((a, b) => a - b));
      expect(items.at(-1)).toBe(k + 5);
    }
  });

  it('coalesces events that arrive while a key is busy', async () => {
    const handled: number[] = [];
    const q = new KeyedQueue<number>({
      concurrency: 1,
      requeue: { baseDelayMs: 1, maxDelayMs: 5 },
      merge: (a, b) => Math.max(a, b),
      handler: async (_key, item) => {
        handled.push(item);
        await tick(10);
      },
    });
    q.push('a', 1);
    await tick(1);
    q.push('a', 2);
    q.push('a', 3);
    await q.idle();
    expect(handled).toEqual([1, 3]);
  });

  it('re-queues failures until they succeed, never dropping them', async () => {
    let attempts = 0;
    const requeues: number[] = [];
    const q = new KeyedQueue<string>({
      concurrency: 2,
      requeue: { baseDelayMs: 1, maxDelayMs: 4 },
      merge: (_a, b) => b,
      handler: async () => {
        attempts++;
        if (attempts < 4) throw new Error('temporary');
      },
      onRequeue: (_k, _e, attempt) => requeues.push(attempt),
    });
    q.push('x', 'item');
    await q.idle();
    expect(attempts).toBe(4);
    expect(requeues).toEqual([1, 2, 3]);
    expect(q.depth).toBe(0);
  });

  it('stop waits for in-flight work within the bound, then aborts it', async () => {
    let finished = 0;
    const q = new KeyedQueue<number>({
      concurrency: 2,
      requeue: { baseDelayMs: 1, maxDelayMs: 4 },
      merge: (_a, b) => b,
      handler: async (_k, item, signal) => {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, item);
          signal.addEventListener('abort', () => {
            clearTimeout(t);
            resolve();
          });
        });
        if (!signal.aborted) finished++;
      },
    });
    q.push('fast', 10);
    await tick(1);
    expect(await q.stop(1000)).toBe(true);
    expect(finished).toBe(1);
    const q2 = new KeyedQueue<number>({
      concurrency: 1,
      requeue: { baseDelayMs: 1, maxDelayMs: 4 },
      merge: (_a, b) => b,
      handler: async (_k, _item, signal) => {
        await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
      },
    });
    q2.push('slow', 0);
    await tick(1);
    expect(await q2.stop(20)).toBe(false);
    q2.push('ignored', 1);
    expect(q2.depth).toBe(1);
  });
});

describe('KeyedQueue.retryNow', () => {
  it('runs keys waiting for a retry at once', async () => {
    let attempts = 0;
    const q = new KeyedQueue<number>({
      concurrency: 1,
      requeue: { baseDelayMs: 60_000, maxDelayMs: 60_000 },
      merge: (_a, b) => b,
      handler: async () => {
        attempts++;
        if (attempts === 1) throw new Error('down');
      },
    });
    q.push('k', 1);
    await tick(5);
    expect(attempts).toBe(1);
    q.retryNow();
    await q.idle();
    expect(attempts).toBe(2);
  });
});
