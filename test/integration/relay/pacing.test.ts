// The pacing gate through the whole relay against the fake Mattermost's GCRA rate limiter (which sends
// X-Ratelimit-* on every answer, like the real one): a burst to two recipients is delivered exactly once,
// and the relay draws far fewer 429s with the gate than the same relay without it. Counts, not timings
// (the drain time is measured in bench/, P2).
import { createMattermostClient } from '../../../operator/mattermost/client.js';
import { silentLogger } from '../../../operator/observability/logger.js';
import { runWatcher, type WatcherInternals } from '../../../operator/relay/run.js';
import { REVIEWER1, TEAM_CHANNEL, TEST_TUNING, startStack, until, type Stack } from './harness.js';
import { expectOneRootEach } from './root-posts.js';

let stack: Stack;
let relay: WatcherInternals | undefined;
afterEach(async () => {
  await relay?.stop(1000).catch(() => undefined);
  relay = undefined;
  await stack?.stop();
});

const REQUESTS = 100;
// Tight enough that even a slow, loaded machine runs into it without the gate.
const LIMIT = { perSecond: 60, burst: 5 };

/** Runs a burst through a relay whose client paces (or not); returns the 429 count. */
async function burst(pacing: boolean): Promise<number> {
  stack = await startStack({ roleToRecipients: { '*': [TEAM_CHANNEL, REVIEWER1] } });
  const mattermost = createMattermostClient(stack.config.mattermost, silentLogger(), { pacing });
  relay = await runWatcher(stack.config, silentLogger(), {
    mattermost,
    // Generous budgets: this test counts 429s; it must not depend on how fast the machine is.
    tuning: { ...TEST_TUNING, retry: { baseDelayMs: 20, maxDelayMs: 250, budgetMs: 30_000 } },
  });
  const started = relay;
  await until(() => started.ready() === undefined, 15_000, 'relay ready');
  // Recipients resolved and the DM channel created before the limit is on: only posts are counted.
  const warm = stack.teleport.createRequest().id;
  await relay.idle();
  stack.mattermost.setRateLimit(LIMIT);
  stack.mattermost.clearRequests();
  const ids = Array.from(
    { length: REQUESTS },
    (_, i) => stack.teleport.createRequest({ requestReason: `p${i}` }).id,
  );
  await relay.idle();
  const limited = stack.mattermost.requests().filter((r) => r.status === 429).length;
  stack.mattermost.setRateLimit(null);

  expectOneRootEach(stack, [stack.teamChannelId, stack.dmOf(REVIEWER1)!], [warm, ...ids]);
  if (pacing) {
    const metrics = await (await fetch(`http://127.0.0.1:${relay.httpPort}/metrics`)).text();
    expect(metrics).toMatch(/teleport_mattermost_mattermost_pacing_wait_seconds_count [1-9]/);
  }
  await relay.stop(1000);
  relay = undefined;
  await stack.stop();
  return limited;
}

it('a burst to two recipients under a rate limit: exactly once, and far fewer 429s with the gate', async () => {
  const without = await burst(false);
  const withGate = await burst(true);
  // Without the gate 16 workers run into the limit over and over; with it only the first answers' 429s
  // (before the gate has learnt the rate) and the odd one from the pessimistic rate bound remain.
  expect(without).toBeGreaterThan(30);
  expect(withGate).toBeLessThan(without / 3);
}, 120_000);
