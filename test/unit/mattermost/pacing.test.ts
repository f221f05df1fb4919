// The pacing gate (operator/mattermost/pacing.ts) on a fake clock: no waiting without rate-limit headers,
// pacing by X-Ratelimit-Remaining and the rate bound from X-Ratelimit-Reset, FIFO order, Retry-After pauses.
import { PacingGate, type PacingClock } from '../../../operator/mattermost/pacing.js';

class FakeClock implements PacingClock {
  t = 0;
  private timers: { at: number; fn: () => void; id: number }[] = [];
  private ids = 0;
  now(): number {
    return this.t;
  }
  setTimer(fn: () => void, ms: number): unknown {
    const id = ++this.ids;
    this.timers.push({ at: this.t + ms, fn, id });
    return id;
  }
  clearTimer(handle: unknown): void {
    this.timers = this.timers.filter((x) => x.id !== handle);
  }
  /** Moves time forward, firing due timers in order. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      const due = this.timers.filter((x) => x.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.timers = this.timers.filter((x) => x !== due);
      this.t = due.at;
      due.fn();
      await flush();
    }
    this.t = end;
    await flush();
  }
}

const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

function headers(values: Record<string, number>): { get(name: string): string | null } {
  const lower = new Map(Object.entries(values).map(([k, v]) => [k.toLowerCase(), String(v)]));
  return { get: (name) => lower.get(name.toLowerCase()) ?? null };
}

const limited = (remaining: number, reset: number, limit = 101) =>
  headers({ 'X-Ratelimit-Limit': limit, 'X-Ratelimit-Remaining': remaining, 'X-Ratelimit-Reset': reset });

/** Enters n calls; collects the tickets in the order they pass. */
/** A gate whose first answer said the bucket is empty, with a second call `u` still in flight. */
function emptiedWithOneInFlight(): { gate: PacingGate; u: number } {
  const gate = new PacingGate({ clock: new FakeClock() });
  const t = gate.enter() as number;
  const u = gate.enter() as number;
  gate.leave(t, 201, limited(0, 1));
  return { gate, u };
}

function enterMany(gate: PacingGate, n: number, passed: number[]): void {
  for (let i = 0; i < n; i++) {
    const entered = gate.enter();
    if (typeof entered === 'number') passed.push(i);
    else void entered.then(() => passed.push(i));
  }
}

describe('PacingGate', () => {
  it('lets every call through synchronously while answers carry no rate-limit headers', () => {
    const gate = new PacingGate({ clock: new FakeClock() });
    for (let i = 0; i < 1000; i++) {
      const ticket = gate.enter();
      expect(typeof ticket).toBe('number');
      gate.leave(ticket as number, 201, headers({}));
    }
    expect(gate.pacing).toBe(false);
    expect(gate.tokens).toBeUndefined();
  });

  it('lets calls go while Remaining allows and holds the rest', async () => {
    const clock = new FakeClock();
    const gate = new PacingGate({ clock });
    const first = gate.enter() as number;
    gate.leave(first, 201, limited(3, 1));
    const passed: number[] = [];
    enterMany(gate, 6, passed);
    await flush();
    expect(passed).toEqual([0, 1, 2]);
    expect(gate.waiting).toBe(3);
  });

  it('paces waiting calls at the rate bound from Reset, in arrival order', async () => {
    const clock = new FakeClock();
    const waits: number[] = [];
    const gate = new PacingGate({ clock, onWait: (ms) => waits.push(ms) });
    // Limit 101, Remaining 0, Reset 1 s: at least 100 calls per second refill, one per 10 ms.
    gate.leave(gate.enter() as number, 201, limited(0, 1));
    const passed: number[] = [];
    enterMany(gate, 5, passed);
    await flush();
    expect(passed).toEqual([]);
    await clock.advance(10);
    expect(passed).toEqual([0]);
    await clock.advance(30);
    expect(passed).toEqual([0, 1, 2, 3]);
    await clock.advance(10);
    expect(passed).toEqual([0, 1, 2, 3, 4]);
    expect(waits).toEqual([10, 20, 30, 40, 50]);
  });

  it('re-bases on each answer: a higher Remaining than modelled releases waiting calls at once', async () => {
    const { gate, u } = emptiedWithOneInFlight();
    const passed: number[] = [];
    enterMany(gate, 4, passed);
    await flush();
    expect(passed).toEqual([]);
    // The server refilled faster than the bound: its answer says 3 more are allowed.
    gate.leave(u, 201, limited(3, 1));
    await flush();
    expect(passed).toEqual([0, 1, 2]);
  });

  it('counts calls sent after an answered one as already spent', async () => {
    const clock = new FakeClock();
    const gate = new PacingGate({ clock });
    gate.leave(gate.enter() as number, 201, limited(100, 1));
    const a = gate.enter() as number;
    const later = [gate.enter(), gate.enter()];
    expect(later.every((x) => typeof x === 'number')).toBe(true);
    // a's answer says 2 left; the two calls sent after a are in flight and will take them.
    gate.leave(a, 201, limited(2, 1));
    expect(gate.tokens).toBeCloseTo(0);
    expect(typeof gate.enter()).not.toBe('number');
  });

  it('ignores an older answer arriving after a newer one', () => {
    const clock = new FakeClock();
    const gate = new PacingGate({ clock });
    const old = gate.enter() as number;
    const newer = gate.enter() as number;
    gate.leave(newer, 201, limited(50, 1));
    gate.leave(old, 201, limited(0, 1));
    expect(gate.tokens).toBe(50);
  });

  it('after a 429 with rate-limit headers paces instead of pausing until the reset', async () => {
    const clock = new FakeClock();
    const gate = new PacingGate({ clock });
    const t = gate.enter() as number;
    gate.leave(
      t,
      429,
      headers({
        'X-Ratelimit-Limit': 101,
        'X-Ratelimit-Remaining': 0,
        'X-Ratelimit-Reset': 1,
        'Retry-After': 1,
      }),
    );
    expect(gate.estimatedWaitMs()).toBe(10);
    const passed: number[] = [];
    enterMany(gate, 1, passed);
    await clock.advance(10);
    expect(passed).toEqual([0]);
  });

  it('a 429 without rate-limit headers (a proxy) holds no one: that call retries after its Retry-After', () => {
    const clock = new FakeClock();
    const gate = new PacingGate({ clock });
    gate.leave(gate.enter() as number, 429, headers({ 'Retry-After': 2 }));
    expect(typeof gate.enter()).toBe('number');
    expect(gate.estimatedWaitMs()).toBe(0);
  });

  it('stops pacing when a 2xx comes without rate-limit headers (limiter turned off)', async () => {
    const { gate, u } = emptiedWithOneInFlight();
    const passed: number[] = [];
    enterMany(gate, 3, passed);
    gate.leave(u, 200, headers({}));
    await flush();
    expect(passed).toEqual([0, 1, 2]);
    expect(gate.pacing).toBe(false);
  });

  it('a failed call without an answer only frees its place', async () => {
    const clock = new FakeClock();
    const gate = new PacingGate({ clock });
    gate.leave(gate.enter() as number, 201, limited(1, 1));
    const t = gate.enter() as number;
    gate.leave(t);
    expect(gate.tokens).toBe(0);
  });

  it('slows by 10% on each 429, down to the bound of the 429 itself', () => {
    const clock = new FakeClock();
    const gate = new PacingGate({ clock });
    gate.leave(gate.enter() as number, 201, limited(0, 1)); // ≥ 100/s
    expect(gate.ratePerSecond).toBe(100);
    gate.leave(gate.enter() as number, 429, limited(0, 5)); // now ≥ 20/s only
    expect(gate.ratePerSecond).toBeCloseTo(90);
    for (let i = 0; i < 30; i++) gate.leave(gate.enter() as number, 429, limited(0, 5));
    expect(gate.ratePerSecond).toBeCloseTo(20);
  });

  it('measures the refill over a window in which the bucket was never full', async () => {
    const clock = new FakeClock();
    const gate = new PacingGate({ clock });
    // A 200/s bucket of 101: the Reset bound says only ≥ 100/s.
    gate.leave(gate.enter() as number, 201, limited(50, 1));
    expect(gate.ratePerSecond).toBe(50);
    // Over one second 150 calls pass while the server refills 200: Remaining climbs from 50 towards 99.
    for (let i = 1; i <= 150; i++) {
      clock.t = (i * 1000) / 150;
      const remaining = Math.floor(50 + (200 * clock.t) / 1000 - i);
      gate.leave(gate.enter() as number, 201, limited(Math.min(remaining, 99), 1));
    }
    expect(gate.ratePerSecond).toBeGreaterThan(180);
    expect(gate.ratePerSecond).toBeLessThanOrEqual(200);
  });
});
