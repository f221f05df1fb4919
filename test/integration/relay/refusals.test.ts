// One recipient refusing never holds the others back (issue 11, bugs 1-4), and an answer that is not the
// API's JSON is an ambiguous temporary failure, never a refusal (issue 15, item 1). Each case runs the
// whole lifecycle through the relay against the Mattermost-compatible server in the mode the real server
// showed: the recipients that work get their root post, the review reply and the final edit, and the
// resolution is recorded; the refusing one is reported once with its fix, counted and shown in /readyz.
import { captureLogger, type Logger } from '../../../operator/observability/logger.js';
import { decodePluginData } from '../../../operator/relay/plugindata.js';
import { LOOKUP_CONCURRENCY } from '../../../operator/relay/resolver.js';
import type { WatcherInternals } from '../../../operator/relay/run.js';
import { REVIEWER1, REVIEWER2, TEAM_CHANNEL, settle, startStack, until, type Stack } from './harness.js';

let stack: Stack;
afterEach(async () => {
  await stack?.stop();
});

async function readyRelay(logger?: Logger): Promise<WatcherInternals> {
  const relay = await stack.startRelay(logger ? { logger } : {});
  await until(() => relay.ready() === undefined, 15_000, 'relay ready');
  return relay;
}

async function http(relay: WatcherInternals, path: string): Promise<string> {
  return (await fetch(`http://127.0.0.1:${relay.httpPort}${path}`)).text();
}

const rootsOf = (id: string) =>
  stack.mattermost.rootPosts().filter((p) => p.props.teleport_request_id === id);
const rootIn = (id: string, channelId: string) => rootsOf(id).find((p) => p.channelId === channelId);

/** A second channel of the bot's in team-llama. */
function addChannel(name: string, members: string[] = [stack.botId]): string {
  return stack.mattermost.addChannel({ team: 'team-llama', name, members }).id;
}

/** Review + approval, then the full outcome in `channelId`: root post, one reply, final edit, recorded. */
async function approveAndExpectDelivered(relay: WatcherInternals, id: string, channelId: string) {
  stack.teleport.submitReview(id, { author: REVIEWER2, proposedState: 'APPROVED', reason: 'fine' });
  await settle(relay);
  const root = rootIn(id, channelId);
  expect(root).toBeDefined();
  expect(stack.mattermost.repliesTo(root!.id)).toHaveLength(1);
  expect(root!.message).toMatch(/✅ APPROVED/);
  const data = decodePluginData(stack.teleport.pluginData(id) ?? {});
  expect(data.resolution).toBe('APPROVED');
  expect(data.reviewsCount).toBe(1);
  return data;
}

describe('a refusing recipient never holds back the others (issue 11)', () => {
  it('hidden emails (403 on every lookup): the channel gets everything; the fix is reported once', async () => {
    stack = await startStack({ roleToRecipients: { '*': [REVIEWER1, TEAM_CHANNEL] } });
    stack.mattermost.setShowEmailAddress(false);
    const { logger, lines } = captureLogger();
    const relay = await readyRelay(logger);
    const req = stack.teleport.createRequest({ suggestedReviewers: [REVIEWER2] });
    const other = stack.teleport.createRequest();
    await settle(relay);
    expect(rootsOf(req.id).map((p) => p.channelId)).toEqual([stack.teamChannelId]);
    expect(rootsOf(other.id).map((p) => p.channelId)).toEqual([stack.teamChannelId]);
    await approveAndExpectDelivered(relay, req.id, stack.teamChannelId);

    const warnings = lines.filter((l) => l.level === 'warn' && /cannot read emails/i.test(l.message));
    expect(warnings.map((w) => w.recipient).sort()).toEqual([REVIEWER1, REVIEWER2].sort());
    expect(warnings[0]!.message).toMatch(/use channel recipients/);
    const ready = await http(relay, '/readyz');
    expect(ready).toMatch(/^ok/);
    expect(ready).toContain(REVIEWER1);
    expect(ready).toMatch(/cannot read emails/);
    expect(await http(relay, '/metrics')).toMatch(
      /teleport_mattermost_refusals_total\{reason="emails_hidden"\} [1-9]/,
    );
  }, 30_000);

  it('a refused lookup is re-checked on a slow schedule and leaves /readyz once it heals', async () => {
    stack = await startStack({ roleToRecipients: { '*': [REVIEWER1, TEAM_CHANNEL] } });
    stack.mattermost.setShowEmailAddress(false);
    const { logger, lines } = captureLogger();
    const relay = await stack.startRelay({ logger, tuning: { refusalRecheckMs: 200 } });
    await until(() => relay.ready() === undefined, 15_000, 'relay ready');
    await until(() => lines.some((l) => /cannot read emails/.test(l.message)), 5_000, 'refusal reported');
    expect(await http(relay, '/readyz')).toContain(REVIEWER1);
    stack.mattermost.setShowEmailAddress(true);
    await until(() => lines.some((l) => /accepts this recipient again/.test(l.message)), 5_000, 'healed');
    expect(await http(relay, '/readyz')).toBe('ok\n');
    const req = stack.teleport.createRequest();
    await settle(relay);
    expect(
      rootsOf(req.id)
        .map((p) => p.channelId)
        .sort(),
    ).toEqual([stack.teamChannelId, stack.dmOf(REVIEWER1)].sort());
  }, 30_000);

  it('a public channel the bot is not in (by-name 200, POST 403): the other channel gets everything', async () => {
    stack = await startStack({ roleToRecipients: { '*': ['team-llama/lobby', TEAM_CHANNEL] } });
    const lobby = addChannel('lobby', []);
    const { logger, lines } = captureLogger();
    const relay = await readyRelay(logger);
    const req = stack.teleport.createRequest();
    await settle(relay);
    expect(stack.mattermost.postsIn(lobby)).toHaveLength(0);
    await approveAndExpectDelivered(relay, req.id, stack.teamChannelId);
    const refused = lines.filter((l) => l.level === 'warn' && /add the bot to the channel/.test(l.message));
    expect(refused).toHaveLength(1);
    expect(refused[0]!.message).toMatch(/post:all/);
    expect(await http(relay, '/readyz')).toMatch(/add the bot to the channel/);
    expect(await http(relay, '/metrics')).toMatch(
      /teleport_mattermost_refusals_total\{reason="cannot_post"\} [1-9]/,
    );
  }, 30_000);

  it('the bot removed from a channel after posting: replies and edits go on elsewhere', async () => {
    stack = await startStack({ roleToRecipients: { '*': ['team-llama/second', TEAM_CHANNEL] } });
    const second = addChannel('second');
    const relay = await readyRelay();
    const req = stack.teleport.createRequest();
    await settle(relay);
    expect(rootIn(req.id, second)).toBeDefined();
    stack.mattermost.removeFromChannel(second, stack.botId);
    await approveAndExpectDelivered(relay, req.id, stack.teamChannelId);
    expect(stack.mattermost.repliesTo(rootIn(req.id, second)!.id)).toHaveLength(0);
  }, 30_000);

  it('a root post deleted by an admin (reply 400, patch 403): the other channel gets everything', async () => {
    stack = await startStack({ roleToRecipients: { '*': ['team-llama/second', TEAM_CHANNEL] } });
    const second = addChannel('second');
    const relay = await readyRelay();
    const req = stack.teleport.createRequest();
    await settle(relay);
    stack.mattermost.deletePost(rootIn(req.id, second)!.id);
    const patchesBefore = stack.mattermost.requests().filter((r) => r.method === 'PUT').length;
    await approveAndExpectDelivered(relay, req.id, stack.teamChannelId);
    // One edit per post, not a re-patch of the other channel's post on every attempt.
    expect(stack.mattermost.requests().filter((r) => r.method === 'PUT').length - patchesBefore).toBe(2);
  }, 30_000);

  it('an archived channel (400 can_not_post_to_deleted / can_not_update_post_in_deleted)', async () => {
    stack = await startStack({ roleToRecipients: { '*': ['team-llama/second', TEAM_CHANNEL] } });
    const second = addChannel('second');
    const relay = await readyRelay();
    const req = stack.teleport.createRequest();
    await settle(relay);
    stack.mattermost.archiveChannel(second);
    await approveAndExpectDelivered(relay, req.id, stack.teamChannelId);
    expect(await http(relay, '/readyz')).toMatch(/archived/);
  }, 30_000);

  it('an edit keeps the props we do not own (from_bot): the patch sends the message alone', async () => {
    stack = await startStack({ roleToRecipients: { '*': [TEAM_CHANNEL] } });
    const relay = await readyRelay();
    const req = stack.teleport.createRequest();
    await settle(relay);
    await approveAndExpectDelivered(relay, req.id, stack.teamChannelId);
    expect(rootIn(req.id, stack.teamChannelId)!.props).toEqual({
      teleport_request_id: req.id,
      teleport_post: 'request',
      from_bot: 'true',
    });
  }, 30_000);

  it('an edit refused by PostEditTimeLimit: the resolution is replied in the thread, once', async () => {
    stack = await startStack({ roleToRecipients: { '*': [TEAM_CHANNEL] } });
    stack.mattermost.setPostEditTimeLimit(1);
    const relay = await readyRelay();
    const req = stack.teleport.createRequest();
    await settle(relay);
    await new Promise((r) => setTimeout(r, 1_100));
    stack.teleport.setState(req.id, 'APPROVED', 'looks fine');
    await settle(relay);
    const root = rootIn(req.id, stack.teamChannelId)!;
    expect(root.message).toMatch(/PENDING/);
    const replies = stack.mattermost.repliesTo(root.id);
    expect(replies).toHaveLength(1);
    expect(replies[0]!.message).toMatch(/✅ APPROVED/);
    expect(replies[0]!.message).toContain('looks fine');
    expect(decodePluginData(stack.teleport.pluginData(req.id) ?? {}).resolution).toBe('APPROVED');
    // A restart (a crash before the resolution was recorded would look the same) does not reply again.
    await relay.stop(1000);
    const again = await readyRelay();
    await settle(again);
    expect(stack.mattermost.repliesTo(root.id)).toHaveLength(1);
  }, 30_000);
});

describe('an answer that is not the API JSON is ambiguous and temporary (issue 15 item 1)', () => {
  it('a login page after the post was created: our post is found and recorded, not posted again', async () => {
    stack = await startStack({ roleToRecipients: { '*': [TEAM_CHANNEL] } });
    const relay = await readyRelay();
    stack.mattermost.garble({
      kind: 'html',
      method: 'POST',
      path: '/api/v4/posts',
      count: 1,
      afterProcessing: true,
    });
    const req = stack.teleport.createRequest();
    await settle(relay);
    expect(rootsOf(req.id)).toHaveLength(1);
    const data = decodePluginData(stack.teleport.pluginData(req.id) ?? {});
    expect(data.messages).toEqual([{ channelId: stack.teamChannelId, postId: rootsOf(req.id)[0]!.id }]);
  }, 30_000);

  it.each(['text', 'truncated', 'empty', 'oversize'] as const)(
    '%s 200 answers to posts and edits are retried; nothing is skipped',
    async (kind) => {
      stack = await startStack({ roleToRecipients: { '*': [TEAM_CHANNEL] } });
      const relay = await readyRelay();
      stack.mattermost.garble({
        kind,
        method: 'POST',
        path: '/api/v4/posts',
        count: 2,
        afterProcessing: true,
      });
      stack.mattermost.garble({ kind, method: 'PUT', count: 2 });
      const req = stack.teleport.createRequest();
      await settle(relay);
      expect(rootsOf(req.id)).toHaveLength(1);
      await approveAndExpectDelivered(relay, req.id, stack.teamChannelId);
    },
    30_000,
  );

  it('a login page on the email lookup is not "no such user", and is not cached', async () => {
    stack = await startStack({ roleToRecipients: { '*': [REVIEWER1] } });
    const { logger, lines } = captureLogger();
    stack.mattermost.garble({ kind: 'html', path: '/api/v4/users/email/', forMs: 1_500 });
    const relay = await readyRelay(logger);
    const req = stack.teleport.createRequest();
    await settle(relay);
    expect(rootsOf(req.id).map((p) => p.channelId)).toEqual([stack.dmOf(REVIEWER1)]);
    expect(lines.some((l) => /No Mattermost user has this email/.test(l.message))).toBe(false);
  }, 30_000);

  it('a login page on the channel lookup at start-up is not cached as "no channel"', async () => {
    stack = await startStack({ roleToRecipients: { '*': [TEAM_CHANNEL] } });
    stack.mattermost.garble({ kind: 'html', path: '/api/v4/teams/', forMs: 1_500 });
    const relay = await readyRelay();
    await new Promise((r) => setTimeout(r, 1_600));
    const req = stack.teleport.createRequest();
    await settle(relay);
    expect(rootsOf(req.id).map((p) => p.channelId)).toEqual([stack.teamChannelId]);
  }, 30_000);
});

describe('operations', () => {
  it('Mattermost going away mid-run: one warning, then one info line saying how long and how many retries', async () => {
    stack = await startStack({ roleToRecipients: { '*': [TEAM_CHANNEL] } });
    const { logger, lines } = captureLogger();
    const relay = await readyRelay(logger);
    await stack.mattermost.down(1_500);
    for (let i = 0; i < 3; i++) stack.teleport.createRequest();
    await stack.mattermost.waitUp();
    await settle(relay);
    const away = lines.filter((l) => l.level === 'warn' && /not reachable/.test(l.message));
    const back = lines.filter((l) => l.level === 'info' && /reachable again/.test(l.message));
    expect(away).toHaveLength(1);
    expect(back).toHaveLength(1);
    expect(back[0]!.unreachable_for_ms).toBeGreaterThan(0);
    expect(back[0]!.retried_calls).toBeGreaterThan(0);
  }, 30_000);

  it('thousands of recipients: de-duplicated, resolved a few at a time, a warning, and ready at once', async () => {
    const many = Array.from({ length: 2_000 }, (_, i) => `nobody${i % 1_000}@example.com`);
    stack = await startStack({ roleToRecipients: { '*': [...many, TEAM_CHANNEL] } });
    // Each answer takes a little time, so calls that the relay makes at once overlap at the server.
    stack.mattermost.slow(2);
    const { logger, lines } = captureLogger();
    const relay = await stack.startRelay({ logger });
    await until(() => relay.ready() === undefined, 5_000, 'ready while recipients are being looked up');
    const req = stack.teleport.createRequest();
    await settle(relay, 20_000);
    expect(rootsOf(req.id).map((p) => p.channelId)).toEqual([stack.teamChannelId]);
    const lookups = stack.mattermost.requests().filter((r) => r.path.startsWith('/api/v4/users/email/'));
    expect(lookups.length).toBeLessThanOrEqual(1_000 * 2);
    expect(stack.mattermost.maxConcurrent()).toBeGreaterThan(1);
    expect(stack.mattermost.maxConcurrent()).toBeLessThanOrEqual(LOOKUP_CONCURRENCY + 2);
    expect(lines.filter((l) => l.level === 'warn' && /recipients/.test(l.message) && l.count)).toHaveLength(
      1,
    );
  }, 60_000);
});
