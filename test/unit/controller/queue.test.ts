import { jest } from '@jest/globals';
import { TokenBucket, WorkQueue } from '../../../operator/controller/queue.js';

const limits = { baseMs: 5, maxMs: 1000, qps: 10, burst: 100 };

describe('WorkQueue', () => {
  it('de-duplicates keys that are waiting', async () => {
    const q = new WorkQueue(limits);
    q.add('ns/a');
    q.add('ns/a');
    q.add('ns/b');
    expect(q.len()).toBe(2);
    expect(await q.get()).toBe('ns/a');
    expect(await q.get()).toBe('ns/b');
    expect(q.len()).toBe(0);
  });

  it('never hands a key in flight to a second worker, and re-queues it when done', async () => {
    const q = new WorkQueue(limits);
    q.add('ns/a');
    const first = await q.get();
    q.add('ns/a'); // changed while being reconciled
    expect(q.len()).toBe(0);
    let second: string | undefined = 'none';
    void q.get().then((k) => (second = k));
    await Promise.resolve();
    expect(second).toBe('none');
    q.done(first!);
    await Promise.resolve();
    expect(second).toBe('ns/a');
  });

  it('wakes a waiting worker on add', async () => {
    const q = new WorkQueue(limits);
    const p = q.get();
    q.add('ns/x');
    expect(await p).toBe('ns/x');
    expect(q.inFlight()).toBe(1);
  });

  it('backs off exponentially per key, capped, and forget() resets it', () => {
    const q = new WorkQueue({ ...limits, qps: 1e9, burst: 1e9 });
    const delays = Array.from({ length: 12 }, () => q.nextBackoff('ns/a'));
    expect(delays.slice(0, 4)).toEqual([5, 10, 20, 40]);
    expect(delays.at(-1)).toBe(1000);
    expect(q.nextBackoff('ns/b')).toBe(5);
    q.forget('ns/a');
    expect(q.failureCount('ns/a')).toBe(0);
    expect(q.nextBackoff('ns/a')).toBe(5);
  });

  it('applies the global token bucket when many keys fail at once', () => {
    let now = 0;
    const q = new WorkQueue({ baseMs: 5, maxMs: 1000, qps: 10, burst: 2 }, () => now);
    expect(q.nextBackoff('a')).toBe(5);
    expect(q.nextBackoff('b')).toBe(5);
    expect(q.nextBackoff('c')).toBe(100);
    expect(q.nextBackoff('d')).toBe(200);
    now = 10_000;
    expect(q.nextBackoff('e')).toBe(5);
  });

  it('addAfter keeps the earliest schedule and adds the key later', async () => {
    jest.useFakeTimers();
    try {
      const q = new WorkQueue(limits);
      q.addAfter('ns/a', 1000);
      q.addAfter('ns/a', 50);
      q.addAfter('ns/a', 5000);
      jest.advanceTimersByTime(60);
      expect(q.len()).toBe(1);
      jest.advanceTimersByTime(5000);
      expect(q.len()).toBe(1);
    } finally {
      jest.useRealTimers();
    }
  });

  it('shutdown releases waiting workers with undefined', async () => {
    const q = new WorkQueue(limits);
    const p = q.get();
    q.shutdown();
    expect(await p).toBeUndefined();
    q.add('ns/a');
    expect(await q.get()).toBeUndefined();
  });
});

describe('TokenBucket', () => {
  it('allows a burst, then paces at qps', () => {
    let now = 0;
    const b = new TokenBucket(2, 3, () => now);
    expect([b.reserve(), b.reserve(), b.reserve()]).toEqual([0, 0, 0]);
    expect(b.reserve()).toBe(500);
    now = 5000;
    expect(b.reserve()).toBe(0);
  });
});
