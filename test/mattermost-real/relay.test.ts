// The relay end to end against the real Mattermost: the request lifecycle, hostile text, and the
// rate limiter. Teleport is the Teleport-compatible test server; Mattermost is the tier's real server.
// Each test posts into channels of its own, so counts are exact although the server is shared.
import { randomBytes } from 'node:crypto';
import { createLogger } from '../../operator/observability/logger.js';
import { decodePluginData } from '../../operator/relay/plugindata.js';
import { until } from '../integration/relay/harness.js';
import { realHandoff } from './world.js';
import { startMattermostProcess, type MattermostInstance } from './server.js';
import { eventually, newChannel, readyRelay, startRealStack, type RealStack } from './stack.js';

const REVIEWER1 = 'reviewer1@example.com';
const REVIEWER2 = 'reviewer2@example.com';
let stack: RealStack | undefined;
afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

/** A fresh public channel with the bot and every seeded user in it; returns [recipient, id]. */
async function oneRoot(s: RealStack, requestId: string, channelId: string) {
  let roots: Awaited<ReturnType<RealStack['rootsOf']>> = [];
  await eventually(
    async () => (roots = await s.rootsOf(requestId, channelId)).length > 0,
    20_000,
    'root post',
  );
  expect(roots).toHaveLength(1);
  return roots[0]!;
}

describe('the relay against a real Mattermost', () => {
  it('request -> review -> approve: a root post per recipient, the reply in the thread, the final edit', async () => {
    stack = await startRealStack({ roleToRecipients: {} });
    const [channel, channelId] = await newChannel(stack, 'lifecycle', { everyone: true });
    stack.config.roleToRecipients = { '*': [channel, REVIEWER1] };
    const relay = await readyRelay(stack);
    const req = stack.teleport.createRequest({ requestReason: 'deploy the fix' });
    const root = await oneRoot(stack, req.id, channelId);
    expect(root.message).toMatch(/⏳ PENDING/);
    const dm = await stack.dmOf(REVIEWER1);
    await oneRoot(stack, req.id, dm);

    stack.teleport.submitReview(req.id, { author: REVIEWER2, proposedState: 'APPROVED', reason: 'ok' });
    await eventually(
      async () => (await stack!.repliesTo(root.id, channelId)).length === 1,
      20_000,
      'review reply',
    );
    await relay.idle();
    const edited = await oneRoot(stack, req.id, channelId);
    expect(edited.message).toMatch(/✅ APPROVED/);
    expect((await oneRoot(stack, req.id, dm)).message).toMatch(/✅ APPROVED/);
    expect(decodePluginData(stack.teleport.pluginData(req.id) ?? {}).resolution).toBe('APPROVED');
  }, 60_000);

  it('deny and expire edit the root post to DENIED / EXPIRED', async () => {
    stack = await startRealStack({ roleToRecipients: {} });
    const [channel, channelId] = await newChannel(stack, 'resolve', { everyone: true });
    stack.config.roleToRecipients = { '*': [channel] };
    const relay = await readyRelay(stack);
    const denied = stack.teleport.createRequest();
    const expired = stack.teleport.createRequest();
    await oneRoot(stack, denied.id, channelId);
    await oneRoot(stack, expired.id, channelId);
    stack.teleport.setState(denied.id, 'DENIED', 'not today');
    stack.teleport.deleteRequest(expired.id);
    await relay.idle();
    await eventually(
      async () => /❌ DENIED/.test((await oneRoot(stack!, denied.id, channelId)).message),
      20_000,
      'DENIED',
    );
    await eventually(
      async () => /⌛ EXPIRED/.test((await oneRoot(stack!, expired.id, channelId)).message),
      20_000,
      'EXPIRED',
    );
    expect((await oneRoot(stack, denied.id, channelId)).message).toContain('not today');
  }, 60_000);

  it('hostile request text notifies nobody: members\u2019 mention counts do not move', async () => {
    stack = await startRealStack({ roleToRecipients: {} });
    const [channel, channelId] = await newChannel(stack, 'hostile', { everyone: true });
    stack.config.roleToRecipients = { '*': [channel] };
    const relay = await readyRelay(stack);
    const users = Object.values(stack.world.users);
    const counts = () => Promise.all(users.map((u) => stack!.world.mentionCount(u, channelId)));
    // The server counts mentions after answering (the "added to the channel" messages mention each
    // member): wait until the counts stand still before taking them.
    let before = await counts();
    for (let settled = false; !settled;) {
      await new Promise((r) => setTimeout(r, 500));
      const again = await counts();
      settled = JSON.stringify(again) === JSON.stringify(before);
      before = again;
    }
    const hostile =
      '@channel @all @here @reviewer1 @alice ~channel-llama\n```\n@channel\n```\n`` @here `` <!channel> ' +
      '**@all** [@channel](http://x) @reviewer2: please';
    const req = stack.teleport.createRequest({
      requestReason: hostile,
      user: '@channel',
      roles: ['@here', 'editor'],
    });
    const root = await oneRoot(stack, req.id, channelId);
    stack.teleport.submitReview(req.id, {
      author: REVIEWER2,
      proposedState: 'DENIED',
      reason: `@all ${hostile}`,
    });
    await eventually(
      async () => (await stack!.repliesTo(root.id, channelId)).length === 1,
      20_000,
      'review reply',
    );
    await relay.idle();
    // A plain @channel by the bot, posted last, notifies every member once (so the check can fail, and
    // once it is counted the relay's earlier posts have been counted too): each count moves by exactly 1.
    const probe = await fetch(`${stack.world.url}/api/v4/posts`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${stack.world.botToken}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ channel_id: channelId, message: '@channel probe' }),
    });
    expect(probe.status).toBe(201);
    await eventually(
      async () => (await counts()).every((n, i) => n > before[i]!),
      10_000,
      'the probe @channel to count',
    );
    await new Promise((r) => setTimeout(r, 500));
    expect(await counts()).toEqual(before.map((n) => n + 1));
  }, 60_000);

  describe('with the real rate limiter on', () => {
    let limited: MattermostInstance | undefined;
    afterAll(async () => {
      await limited?.stop();
    });

    it('a storm of 429s: every request posted exactly once, nothing lost', async () => {
      const h = realHandoff();
      limited = await startMattermostProcess({
        dir: h.dir!,
        dataSource: h.dataSource!,
        name: `storm-${randomBytes(3).toString('hex')}`,
        rateLimit: { perSec: 5, maxBurst: 5 },
      });
      stack = await startRealStack({ roleToRecipients: {}, mattermostUrl: limited.url });
      const [channel, channelId] = await newChannel(stack, 'storm', { everyone: true });
      stack.config.roleToRecipients = { '*': [channel] };
      // Production retry policy: the server's Retry-After is honoured, not capped at the test's 250 ms.
      // (Observed: with TEST_TUNING's 250 ms cap and 1 s budget, requests are re-queued, and each retry
      // first searches the channel for its own post; those searches took ~90% of a 5/s limit and 30
      // requests were not all posted in 90 s, against the fake as against this server.)
      const relay = await stack.startRelay({
        tuning: { retry: { baseDelayMs: 250, maxDelayMs: 10_000, budgetMs: 30_000 }, probeIntervalMs: 5_000 },
        ...(process.env.RELAY_DEBUG
          ? { logger: createLogger({ severity: 'debug', format: 'text', output: 'stderr' }) }
          : {}),
      });
      await until(() => relay.ready() === undefined, 20_000, 'relay ready');
      // The relay paces itself by the limiter's headers (operator/mattermost/pacing.ts), so on its own it
      // rarely meets a 429. Another client on the same address spends the same bucket meanwhile (the real
      // limiter keys by remote address), as a busy Mattermost would: the relay must still meet real 429s.
      let storming = true;
      const competitor = (async () => {
        while (storming) {
          await fetch(`${limited!.url}/api/v4/users/me`, {
            headers: { Authorization: `Bearer ${stack!.world.botToken}` },
          }).then(
            (r) => r.arrayBuffer(),
            () => undefined,
          );
          await new Promise((r) => setTimeout(r, 100));
        }
      })();
      const ids = Array.from(
        { length: 30 },
        (_, i) => stack!.teleport.createRequest({ requestReason: `storm ${i}` }).id,
      );
      // The competitor takes about half of the 5/s bucket, so the relay's 30 posts (plus its retries) took
      // 52–92 s over the CI runs of 29 Nov: the wait is a bound on liveness with room to spare, not a speed
      // target (the bench measures speed, P2).
      try {
        await eventually(
          async () => ids.every((id) => (stack!.teleport.pluginData(id)?.messages ?? '') !== ''),
          180_000,
          'every request recorded',
        );
      } finally {
        storming = false;
        await competitor;
      }
      await relay.idle();
      const posts = await stack.world.posts(channelId);
      const counts = new Map<string, number>();
      for (const p of posts) {
        if (p.rootId) continue;
        const id = String(p.props.teleport_request_id);
        counts.set(id, (counts.get(id) ?? 0) + 1);
      }
      expect(ids.filter((id) => counts.get(id) !== 1)).toEqual([]);
      const metrics = await (await fetch(`http://127.0.0.1:${relay.httpPort}/metrics`)).text();
      // The limiter did bite (retries), and each request was created once.
      expect(metrics).toMatch(/teleport_mattermost_retries_total\{operation="[a-z_]+"\} [1-9]/);
      expect(metrics).toMatch(/teleport_mattermost_posts_total\{result="created"\} 30\n/);
    }, 240_000);
  });
});
