// Our acceptance scenarios beyond upstream: outages, rate limits, crashes, catch-up, hostile input and
// bad recipients, against the real test servers and clients.
//
// Time scale: the outage tests use retry caps of 250 ms (per call) and 500 ms (requeue) instead of the
// production 10 s and 60 s, and a 3 s outage instead of 60 s: the same sequence of failures, backoffs,
// requeues and recovery, about 20 times faster.
import { status } from '@grpc/grpc-js';
import { decodePluginData } from '../../../operator/relay/plugindata.js';
import type { WatcherInternals } from '../../../operator/relay/run.js';
import { REVIEWER1, TEAM_CHANNEL, startStack, until, type Stack } from './harness.js';

let stack: Stack;
afterEach(async () => {
  await stack?.stop();
});

async function readyRelay(opts?: Parameters<Stack['startRelay']>[0]): Promise<WatcherInternals> {
  const relay = await stack.startRelay(opts);
  await until(() => relay.ready() === undefined, 15_000, 'relay ready');
  return relay;
}

/** Every request has exactly one root post in the channel and exactly that post recorded. */
function expectExactlyOnce(ids: string[], channelId: string): void {
  const roots = stack.mattermost.rootPosts(channelId);
  const counts = new Map<string, number>();
  for (const p of roots) {
    const id = String(p.props.teleport_request_id);
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  const missing = ids.filter((id) => !counts.has(id));
  const duplicated = [...counts].filter(([, n]) => n > 1).map(([id]) => id);
  expect({ missing, duplicated, total: roots.length }).toEqual({
    missing: [],
    duplicated: [],
    total: ids.length,
  });
  for (const id of ids) {
    const data = decodePluginData(stack.teleport.pluginData(id) ?? {});
    const post = roots.find((p) => p.props.teleport_request_id === id);
    expect(data.messages).toEqual([{ channelId, postId: post?.id }]);
  }
}

describe('delivery under failure', () => {
  it('Mattermost down during a 500-request burst: every post delivered exactly once', async () => {
    stack = await startStack({ roleToRecipients: { '*': [TEAM_CHANNEL] } });
    const relay = await readyRelay({ tuning: { concurrency: 32 } });
    const ids: string[] = [];
    for (let i = 0; i < 500; i++) {
      ids.push(stack.teleport.createRequest({ requestReason: `burst ${i}` }).id);
      if (i === 100) await stack.mattermost.down(3_000);
    }
    await until(() => relay.ready() !== undefined, 5_000, 'not ready while Mattermost is down');
    await stack.mattermost.waitUp();
    await relay.idle();
    expectExactlyOnce(ids, stack.teamChannelId);
    expect(relay.ready()).toBeUndefined();
    const metrics = await (await fetch(`http://127.0.0.1:${relay.httpPort}/metrics`)).text();
    expect(metrics).toMatch(/teleport_mattermost_requeues_total [1-9]/);
    expect(metrics).toMatch(/teleport_mattermost_queue_depth 0/);
  }, 120_000);

  it('429 storm: nothing lost, nothing duplicated', async () => {
    stack = await startStack({ roleToRecipients: { '*': [TEAM_CHANNEL] } });
    const relay = await readyRelay();
    stack.mattermost.setRateLimit({ perSecond: 50, burst: 5 });
    // The pacing gate keeps the relay itself under the limit; 429s it could not foresee (another client
    // spending the same bucket) are injected on top, with the limiter's headers and Retry-After.
    stack.mattermost.fail({ status: 429, count: 40, method: 'POST' });
    const ids = Array.from(
      { length: 120 },
      (_, i) => stack.teleport.createRequest({ requestReason: `r${i}` }).id,
    );
    await relay.idle();
    stack.mattermost.setRateLimit(null);
    expectExactlyOnce(ids, stack.teamChannelId);
    expect(stack.mattermost.requests().some((r) => r.status === 429)).toBe(true);
  }, 60_000);

  it('posts created but never acknowledged (reset after processing) are adopted, not duplicated', async () => {
    stack = await startStack({ roleToRecipients: { '*': [TEAM_CHANNEL] } });
    const relay = await readyRelay();
    stack.mattermost.resetConnections(5, { afterProcessing: true });
    const ids = Array.from({ length: 10 }, () => stack.teleport.createRequest().id);
    await relay.idle();
    expectExactlyOnce(ids, stack.teamChannelId);
  }, 60_000);

  it('Teleport failing plugin-data writes (unavailable, CAS conflicts) loses and duplicates nothing', async () => {
    stack = await startStack({ roleToRecipients: { '*': [TEAM_CHANNEL] } });
    const relay = await readyRelay();
    stack.teleport.failNext('UpdatePluginData', status.UNAVAILABLE, 'injected outage', 12);
    const ids = Array.from({ length: 10 }, () => stack.teleport.createRequest().id);
    await relay.idle();
    stack.teleport.failNext('UpdatePluginData', status.FAILED_PRECONDITION, 'injected conflict', 6);
    const more = Array.from({ length: 10 }, () => stack.teleport.createRequest().id);
    await relay.idle();
    expectExactlyOnce([...ids, ...more], stack.teamChannelId);
  }, 60_000);

  it('relay killed mid-burst and started again: no duplicate, no missing', async () => {
    stack = await startStack({ roleToRecipients: { '*': [TEAM_CHANNEL] } });
    const first = await readyRelay();
    stack.mattermost.slow(30);
    const ids = Array.from(
      { length: 200 },
      (_, i) => stack.teleport.createRequest({ requestReason: `k${i}` }).id,
    );
    await until(() => stack.mattermost.rootPosts().length >= 40, 30_000, 'some posts');
    first.abandon(); // no graceful stop: in-flight posts may land without being recorded
    await new Promise((r) => setTimeout(r, 100));
    const postedBeforeRestart = stack.mattermost.rootPosts().length;
    expect(postedBeforeRestart).toBeLessThan(200);
    stack.mattermost.slow(0);
    const second = await readyRelay();
    await second.idle();
    expectExactlyOnce(ids, stack.teamChannelId);
  }, 120_000);
});

describe('catch-up, hostile input and bad recipients', () => {
  it('catches up requests created, reviewed, resolved and deleted while the relay was stopped', async () => {
    stack = await startStack({
      roleToRecipients: { '*': [TEAM_CHANNEL] },
      teleport: { approveThreshold: 2 },
    });
    const relay = await readyRelay();
    const before = stack.teleport.createRequest();
    const toApprove = stack.teleport.createRequest();
    await relay.idle();
    await relay.stop(2000);

    const created = stack.teleport.createRequest();
    const reviewed = stack.teleport.createRequest();
    stack.teleport.submitReview(reviewed.id, {
      author: REVIEWER1,
      proposedState: 'APPROVED',
      reason: 'fine',
    });
    stack.teleport.submitReview(toApprove.id, { author: REVIEWER1, proposedState: 'APPROVED' });
    stack.teleport.submitReview(toApprove.id, { author: 'reviewer2@example.com', proposedState: 'APPROVED' });
    stack.teleport.deleteRequest(before.id);

    const again = await readyRelay();
    await again.idle();
    const root = (id: string) =>
      stack.mattermost.rootPosts().find((p) => p.props.teleport_request_id === id)!;
    expect(stack.mattermost.rootPosts()).toHaveLength(4);
    expect(root(created.id).message).toMatch(/⏳ PENDING/);
    expect(stack.mattermost.repliesTo(root(reviewed.id).id)).toHaveLength(1);
    expect(root(toApprove.id).message).toMatch(/✅ APPROVED/);
    expect(stack.mattermost.repliesTo(root(toApprove.id).id)).toHaveLength(2);
    expect(root(before.id).message).toMatch(/⌛ EXPIRED/);
  }, 60_000);

  it('hostile reasons cannot ping anyone or break the layout', async () => {
    stack = await startStack({ roleToRecipients: { '*': [TEAM_CHANNEL] } });
    const relay = await readyRelay();
    const hostile =
      '@channel @all @here @reviewer1\n# Heading\n```\n</code> **bold** [x](http://evil)\n---\n> quote';
    const req = stack.teleport.createRequest({ user: '@all', roles: ['@here'], requestReason: hostile });
    await relay.idle();
    stack.teleport.setState(req.id, 'DENIED', hostile);
    await relay.idle();
    const [post] = stack.mattermost.rootPosts();
    // Outside code spans and fenced blocks there must be no mention and no block markup from the input.
    const outsideCode = post!.message
      .replace(/```[a-z]*\n[\s\S]*?\n```/g, '')
      .replace(/`` [^\n]*? ``|`[^`\n]*`/g, '');
    expect(outsideCode).not.toMatch(/@/);
    expect(outsideCode).not.toMatch(/^(#|>|---)/m);
    expect(outsideCode).not.toMatch(/\]\(http:\/\/evil/);
    expect(post!.message).toMatch(/❌ DENIED/);
  }, 30_000);

  it('an unresolvable recipient does not block the others', async () => {
    stack = await startStack({
      roleToRecipients: {
        '*': ['nobody@example.com', 'no-team/no-channel', 'not a recipient', TEAM_CHANNEL, REVIEWER1],
      },
    });
    const relay = await readyRelay();
    const req = stack.teleport.createRequest();
    await relay.idle();
    const channels = stack.mattermost
      .rootPosts()
      .filter((p) => p.props.teleport_request_id === req.id)
      .map((p) => p.channelId)
      .sort();
    expect(channels).toEqual([stack.teamChannelId, stack.dmOf(REVIEWER1)].sort());
    expect(stack.mattermost.posts().every((p) => p.channelId !== '')).toBe(true);
  }, 30_000);
});
