// Fault runs R1–R4: each reports delivered / expected / duplicates, counted by request id (and channel)
// over the root posts in the fake Mattermost.
import { performance } from 'node:perf_hooks';
import { sec, sleep, waitFor } from '../lib/measure.js';
import { scaled, type ScenarioOptions, type ScenarioResult } from '../lib/result.js';
import { paced, startBenchStack, type BenchStack } from '../lib/stack.js';
import { prng } from '../../test/integration/relay/prng.js';

const DRAIN_TIMEOUT_MS = 180_000;

/** Waits for every root post, then a little longer so late duplicates show; the delivery figures. */
async function settle(stack: BenchStack, timeoutMs = DRAIN_TIMEOUT_MS) {
  const t0 = performance.now();
  const ok = await waitFor(() => stack.count().lost === 0, timeoutMs, 50);
  const drainS = (performance.now() - t0) / 1000;
  await sleep(2000);
  const c = stack.count();
  return { ok, drainS, ...c };
}

function deliveryFigures(c: { delivered: number; expected: number; duplicates: number }): [string, string] {
  return ['delivered / expected / duplicates', `${c.delivered} / ${c.expected} / ${c.duplicates}`];
}

const zeroLoss = (c: { ok: boolean; lost: number; duplicates: number }) =>
  c.ok && c.lost === 0 && c.duplicates === 0;

export async function r1MattermostDown(opts: ScenarioOptions): Promise<ScenarioResult> {
  const count = scaled(500, opts);
  const downMs = 60_000;
  const stack = await startBenchStack();
  try {
    const relay = stack.startRelay();
    await relay.waitReady();
    opts.log(`R1: ${count} requests at 100/s; Mattermost down for ${downMs / 1000} s after 1 s`);
    const burst = paced(stack, count, 100);
    await sleep(1000);
    const deliveredBefore = stack.count().delivered;
    await stack.mattermost.down(downMs);
    await burst;
    await stack.mattermost.waitUp();
    const upAt = performance.now();
    const c = await settle(stack, downMs + DRAIN_TIMEOUT_MS);
    const recoverS = c.ok ? (Math.max(...stack.accepted.values()) - upAt) / 1000 : Number.NaN;
    return {
      id: 'R1',
      title: `Mattermost down ${downMs / 1000} s during a ${count}-request burst`,
      figures: [
        ['root posts delivered before the outage', String(deliveredBefore)],
        ['Mattermost back up → last root post', sec(recoverS)],
        deliveryFigures(c),
      ],
      headline: `${c.delivered} / ${c.expected} delivered, ${c.duplicates} duplicates`,
      target: '0 lost, 0 duplicated',
      met: zeroLoss(c),
      notes: [
        'The listener is closed (connections refused) for the whole 60 s. The relay runs with its production retry/requeue tuning, so the time to recover after Mattermost returns is bounded by its requeue backoff (max 60 s).',
      ],
    };
  } finally {
    await stack.stop();
  }
}

export async function r2StreamCuts(opts: ScenarioOptions): Promise<ScenarioResult> {
  const count = scaled(1000, opts);
  const cuts = 10;
  const stack = await startBenchStack();
  try {
    const relay = stack.startRelay();
    await relay.waitReady();
    opts.log(`R2: ${count} requests at 100/s; the watch stream cut ${cuts} times`);
    const burst = paced(stack, count, 100);
    let dropped = 0;
    const spacing = Math.max(200, (count * 10) / (cuts + 1));
    for (let i = 0; i < cuts; i++) {
      await sleep(spacing);
      dropped += stack.teleport.dropStreams();
      // Wait for the relay to watch again, so every cut hits a live stream.
      await stack.teleport.waitForWatchers(1, 30_000).catch(() => undefined);
    }
    await burst;
    const c = await settle(stack);
    return {
      id: 'R2',
      title: `Teleport watch stream cut ${cuts} times during a ${count}-request burst`,
      figures: [
        ['cuts / streams ended', `${cuts} / ${dropped}`],
        ['after the burst → all delivered', sec(c.drainS)],
        deliveryFigures(c),
      ],
      headline: `${c.delivered} / ${c.expected} delivered, ${c.duplicates} duplicates`,
      target: '0 lost, 0 duplicated',
      met: zeroLoss(c) && dropped >= cuts,
      notes: [
        'Each cut ends the open watch stream with UNAVAILABLE (events emitted while no stream is open are only seen through the catch-up on the next INIT).',
      ],
    };
  } finally {
    await stack.stop();
  }
}

export async function r3Kill9(opts: ScenarioOptions): Promise<ScenarioResult> {
  const kills = 20;
  const maxRequests = scaled(2000, opts);
  const seed = Number(process.env.BENCH_SEED ?? 8);
  const random = prng(seed);
  const stack = await startBenchStack();
  try {
    opts.log(`R3: ${kills} kill -9 at random points (seed ${seed}) during a burst at 50/s`);
    let killing = true;
    const burst = paced(stack, maxRequests, 50, () => !killing);
    const points: number[] = [];
    for (let i = 0; i < kills; i++) {
      const relay = stack.startRelay();
      const at = 300 + random() * 2700; // ms after spawn: before, during and after readiness
      points.push(Math.round(at));
      await sleep(at);
      await relay.kill9();
    }
    killing = false;
    await burst;
    const final = stack.startRelay();
    await final.waitReady();
    const c = await settle(stack);
    return {
      id: 'R3',
      title: `kill -9 of the relay at ${kills} random points during a burst, restarted each time`,
      figures: [
        ['requests created during the kills (50/s)', String(stack.created.size)],
        ['kill points, ms after spawn', points.join(', ')],
        ['final start → all delivered', sec(c.drainS)],
        deliveryFigures(c),
      ],
      headline: `${c.delivered} / ${c.expected} delivered, ${c.duplicates} duplicates`,
      target: '0 lost, 0 duplicated',
      met: zeroLoss(c),
      notes: [`Kill points come from a seeded PRNG (BENCH_SEED=${seed}); each restart is immediate.`],
    };
  } finally {
    await stack.stop();
  }
}

export async function r4IdentityRotation(opts: ScenarioOptions): Promise<ScenarioResult> {
  const rotations = 4;
  const everyMs = 30_000;
  const ttlMs = 50_000;
  const rate = 20;
  const stack = await startBenchStack({ refreshIdentity: true, identityTtlMs: ttlMs });
  try {
    const relay = stack.startRelay();
    await relay.waitReady();
    const count = scaled((rate * ((rotations + 1) * everyMs)) / 1000, opts);
    opts.log(
      `R4: ${count} requests at ${rate}/s; identity rotated every ${everyMs / 1000} s, ${rotations} times`,
    );
    const burst = paced(stack, count, rate);
    const start = performance.now();
    let reconnects = 0;
    for (let i = 1; i <= rotations; i++) {
      await sleep(Math.max(0, start + i * everyMs - performance.now()));
      const path = await stack.teleport.writeIdentity({
        dir: stack.dir,
        ttlMs: ttlMs + 1000,
        notBefore: new Date(Date.now() - 1000),
      });
      if (path !== stack.identityPath)
        throw new Error(`identity written to ${path}, not ${stack.identityPath}`);
      // 25 s later the previous identity has expired: close every connection so the relay can only
      // reconnect with the rotated file.
      await sleep(Math.max(0, start + i * everyMs + 25_000 - performance.now()));
      stack.teleport.dropConnections();
      reconnects++;
    }
    await burst;
    const c = await settle(stack);
    return {
      id: 'R4',
      title: `Identity file rotated every ${everyMs / 1000} s under load (${rotations} rotations, ~${Math.round((rotations * everyMs) / 60_000)} min)`,
      figures: [
        ['rotations / forced reconnects', `${rotations} / ${reconnects}`],
        ['load', `${count} requests at ${rate}/s`],
        deliveryFigures(c),
      ],
      headline: `${c.delivered} / ${c.expected} delivered, ${c.duplicates} duplicates`,
      target: '0 lost, 0 duplicated',
      met: zeroLoss(c),
      notes: [
        `Shortened to ${rotations} rotations over ~2 minutes to keep the run short. Each identity lives ${ttlMs / 1000} s; refresh_identity_interval = "5s". ~25 s after each rotation every connection to Teleport is closed, when the previous identity has already expired, so the reconnect only succeeds with the rotated file.`,
      ],
    };
  } finally {
    await stack.stop();
  }
}
