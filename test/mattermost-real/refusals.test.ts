// Issue 11's bugs, each reproduced against the real Mattermost: a recipient the server refuses (hidden
// emails, a channel the bot may not post in, a deleted root post, the edit time limit) must not hold
// back the others, and edits keep the props we do not own. The same cases run against the fake in
// test/integration/relay/refusals.test.ts.
import { decodePluginData } from '../../operator/relay/plugindata.js';
import type { WatcherInternals } from '../../operator/relay/run.js';
import { settle } from '../integration/relay/harness.js';
import { eventually, newChannel, readyRelay, startRealStack, type RealStack } from './stack.js';

const REVIEWER1 = 'reviewer1@example.com';
const REVIEWER2 = 'reviewer2@example.com';
let stack: RealStack | undefined;
afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

/** The real server is slower than the fake: a longer bound for settle(). */
const SETTLE_MS = 20_000;

/** Review + approval, then in `channelId`: one root post, one reply, the final edit; the resolution recorded. */
async function approveAndExpectDelivered(
  s: RealStack,
  relay: WatcherInternals,
  id: string,
  channelId: string,
) {
  s.teleport.submitReview(id, { author: REVIEWER2, proposedState: 'APPROVED', reason: 'fine' });
  await settle(relay, SETTLE_MS);
  const roots = await s.rootsOf(id, channelId);
  expect(roots).toHaveLength(1);
  expect(roots[0]!.message).toMatch(/✅ APPROVED/);
  expect(await s.repliesTo(roots[0]!.id, channelId)).toHaveLength(1);
  expect(decodePluginData(s.teleport.pluginData(id) ?? {}).resolution).toBe('APPROVED');
  return roots[0]!;
}

const readyz = async (relay: WatcherInternals) =>
  (await fetch(`http://127.0.0.1:${relay.httpPort}/readyz`)).text();

describe('a recipient the real server refuses never holds back the others (issue 11)', () => {
  it('hidden emails (every lookup 403): the channel gets everything', async () => {
    stack = await startRealStack({ roleToRecipients: {} });
    const [ch, chId] = await newChannel(stack, 'emails');
    stack.config.roleToRecipients = { '*': [REVIEWER1, ch] };
    await stack.world.setShowEmailAddress(false);
    try {
      const relay = await readyRelay(stack);
      const req = stack.teleport.createRequest({ suggestedReviewers: [REVIEWER2] });
      await settle(relay, SETTLE_MS);
      expect(await stack.rootsOf(req.id, chId)).toHaveLength(1);
      await approveAndExpectDelivered(stack, relay, req.id, chId);
      expect(await readyz(relay)).toContain(REVIEWER1);
    } finally {
      await stack.world.setShowEmailAddress(true);
    }
  }, 60_000);

  it('a public channel the bot is not in (by-name 200, POST 403): the other channel gets everything', async () => {
    stack = await startRealStack({ roleToRecipients: {} });
    const [outside, outsideId] = await newChannel(stack, 'outside', { botMember: false });
    const [ch, chId] = await newChannel(stack, 'inside');
    stack.config.roleToRecipients = { '*': [outside, ch] };
    const relay = await readyRelay(stack);
    const req = stack.teleport.createRequest();
    await settle(relay, SETTLE_MS);
    // Nothing by the bot there (the channel holds the server's own join messages).
    expect((await stack.world.posts(outsideId)).filter((p) => p.userId === stack!.world.botId)).toEqual([]);
    await approveAndExpectDelivered(stack, relay, req.id, chId);
    expect(await readyz(relay)).toMatch(/add the bot to the channel/);
  }, 60_000);

  it('a root post deleted by an admin (reply 400, patch 403): the other channel gets everything', async () => {
    stack = await startRealStack({ roleToRecipients: {} });
    const [first, firstId] = await newChannel(stack, 'deleted');
    const [ch, chId] = await newChannel(stack, 'kept');
    stack.config.roleToRecipients = { '*': [first, ch] };
    const relay = await readyRelay(stack);
    const req = stack.teleport.createRequest();
    await settle(relay, SETTLE_MS);
    const doomed = await stack.rootsOf(req.id, firstId);
    expect(doomed).toHaveLength(1);
    await stack.world.deletePost(doomed[0]!.id);
    await approveAndExpectDelivered(stack, relay, req.id, chId);
  }, 60_000);

  it('an edit keeps from_bot (the real server replaces props wholesale on patch)', async () => {
    stack = await startRealStack({ roleToRecipients: {} });
    const [ch, chId] = await newChannel(stack, 'frombot');
    stack.config.roleToRecipients = { '*': [ch] };
    const relay = await readyRelay(stack);
    const req = stack.teleport.createRequest();
    await settle(relay, SETTLE_MS);
    const root = await approveAndExpectDelivered(stack, relay, req.id, chId);
    expect(root.props).toMatchObject({ teleport_request_id: req.id, from_bot: 'true' });
  }, 60_000);

  it('an edit refused by PostEditTimeLimit: the resolution is replied in the thread, once', async () => {
    stack = await startRealStack({ roleToRecipients: {} });
    const [ch, chId] = await newChannel(stack, 'limit');
    stack.config.roleToRecipients = { '*': [ch] };
    await stack.world.setPostEditTimeLimit(1);
    try {
      const relay = await readyRelay(stack);
      const req = stack.teleport.createRequest();
      await settle(relay, SETTLE_MS);
      await new Promise((r) => setTimeout(r, 2_100));
      stack.teleport.setState(req.id, 'APPROVED', 'looks fine');
      await settle(relay, SETTLE_MS);
      const [root] = await stack.rootsOf(req.id, chId);
      expect(root!.message).toMatch(/PENDING/);
      await eventually(async () => (await stack!.repliesTo(root!.id, chId)).length === 1, 10_000, 'reply');
      const replies = await stack.repliesTo(root!.id, chId);
      expect(replies[0]!.message).toMatch(/✅ APPROVED/);
      expect(replies[0]!.message).toContain('looks fine');
      expect(decodePluginData(stack.teleport.pluginData(req.id) ?? {}).resolution).toBe('APPROVED');
    } finally {
      await stack.world.setPostEditTimeLimit(-1);
    }
  }, 60_000);
});
