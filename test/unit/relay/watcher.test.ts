// The relay end to end against in-memory Teleport and Mattermost: lifecycle, crash windows, retries,
// catch-up and upstream compatibility.
import { bootstrapLogger, captureLogger, silentLogger } from '../../../operator/observability/logger.js';
import { decodePluginData } from '../../../operator/relay/plugindata.js';
import { runWatcher, type WatcherInternals } from '../../../operator/relay/run.js';
import { parsePostFields } from '../../../operator/mattermost/render.js';
import type { AccessRequest } from '../../../operator/teleport/api.js';
import { FAST_TUNING, MemoryMattermost, MemoryTeleport, testConfig, until } from './fakes.js';

const logger = process.env.RELAY_DEBUG ? bootstrapLogger('debug') : silentLogger();
const REVIEWER1 = 'reviewer1@example.com';
const REVIEWER2 = 'reviewer2@example.com';

let teleport: MemoryTeleport;
let mattermost: MemoryMattermost;
let watchers: WatcherInternals[];

beforeEach(() => {
  teleport = new MemoryTeleport();
  mattermost = new MemoryMattermost();
  mattermost.addChannel(REVIEWER1, 'dm-reviewer1');
  mattermost.addChannel(REVIEWER2, 'dm-reviewer2');
  mattermost.addChannel('team-llama/channel-llama', 'ch-llama');
  mattermost.addChannel('requester@example.com', 'dm-requester');
  watchers = [];
});

afterEach(async () => {
  for (const w of watchers) await w.stop(1000);
});

async function start(
  roleToRecipients: Record<string, string[]> = { editor: [REVIEWER1] },
  notify = false,
  tuning: Partial<typeof FAST_TUNING> = {},
) {
  const w = await runWatcher(testConfig(roleToRecipients, notify), logger, {
    teleport,
    mattermost,
    tuning: { ...FAST_TUNING, ...tuning },
  });
  watchers.push(w);
  await until(() => w.ready() === undefined, 5000, 'ready');
  return w;
}

const data = (id: string) => decodePluginData(teleport.pluginData(id) ?? {});

/** What a writer that crashed after posting leaves: the intent recorded, the post made, no messages. */
async function postedButNotRecorded(req: AccessRequest, message: string) {
  await teleport.updatePluginData(req.id, 'mattermost', {
    user: req.user,
    roles: 'editor',
    mm_recipients: 'dm-reviewer1',
    mm_post_intent_at: String(Date.now()),
  });
  return mattermost.createPost({
    channelId: 'dm-reviewer1',
    message,
    props: { teleport_request_id: req.id, teleport_post: 'request' },
  });
}
const status = (message: string) => parsePostFields(message).Status;

describe('relay lifecycle', () => {
  it('posts to role recipients and a suggested reviewer, records both messages', async () => {
    const w = await start({ editor: [REVIEWER1], '*': ['fallback'] });
    const req = teleport.createRequest({ suggestedReviewers: [REVIEWER2] });
    await w.idle();
    const roots = mattermost.roots();
    expect(roots.map((p) => p.channelId).sort()).toEqual(['dm-reviewer1', 'dm-reviewer2']);
    expect(parsePostFields(roots[0]!.message)['Request ID']).toBe(req.id);
    expect(status(roots[0]!.message)).toBe('⏳ PENDING');
    expect(data(req.id).messages).toHaveLength(2);
    expect(teleport.pluginData(req.id)?.messages).toMatch(/^dm-reviewer\d\/\w+,dm-reviewer\d\/\w+$/);
  });

  it('threads reviews, edits on approval, and never edits twice for the same text', async () => {
    const w = await start();
    const req = teleport.createRequest();
    await w.idle();
    teleport.review(req.id, { author: REVIEWER1, proposedState: 'APPROVED', reason: 'okay' });
    await w.idle();
    teleport.setState(req.id, 'APPROVED', 'finally okay');
    await w.idle();
    const [root] = mattermost.roots();
    expect(mattermost.repliesTo(root!.id)).toHaveLength(1);
    expect(mattermost.repliesTo(root!.id)[0]!.message).toMatch(
      /reviewer1@example\.com.*reviewed the request/,
    );
    expect(status(root!.message)).toBe('✅ APPROVED');
    expect(parsePostFields(root!.message)['Resolution reason']).toBe('finally okay');
    expect(root!.edits).toHaveLength(1);
    expect(data(req.id)).toMatchObject({
      resolution: 'APPROVED',
      reviewsCount: 1,
      resolveReason: 'finally okay',
    });
    // A re-delivered event changes nothing.
    teleport.setState(req.id, 'APPROVED', 'finally okay');
    await w.idle();
    expect(root!.edits).toHaveLength(1);
    expect(mattermost.posts).toHaveLength(2);
  });

  it('marks a deleted pending request EXPIRED, and keeps APPROVED when an approved one is deleted', async () => {
    const w = await start();
    const a = teleport.createRequest();
    const b = teleport.createRequest();
    await w.idle();
    teleport.setState(b.id, 'APPROVED');
    await w.idle();
    teleport.deleteRequest(a.id);
    teleport.deleteRequest(b.id);
    await w.idle();
    const byId = (id: string) => mattermost.roots().find((p) => p.props.teleport_request_id === id)!;
    expect(status(byId(a.id).message)).toBe('⌛ EXPIRED');
    expect(status(byId(b.id).message)).toBe('✅ APPROVED');
    expect(data(a.id).resolution).toBe('EXPIRED');
  });

  it('posts once to a channel and an email that resolve to different channels, skipping an unknown one', async () => {
    const w = await start({ '*': ['team-llama/channel-llama', REVIEWER1, 'nope/missing', 'bad format'] });
    const req = teleport.createRequest();
    await w.idle();
    expect(
      mattermost
        .roots()
        .map((p) => p.channelId)
        .sort(),
    ).toEqual(['ch-llama', 'dm-reviewer1']);
    expect(data(req.id).recipients?.sort()).toEqual(['ch-llama', 'dm-reviewer1']);
  });

  it('sends the requester a direct message once on resolution when configured', async () => {
    const w = await start({ editor: [REVIEWER1] }, true);
    const req = teleport.createRequest();
    await w.idle();
    teleport.setState(req.id, 'DENIED', 'no');
    await w.idle();
    teleport.setState(req.id, 'DENIED', 'no');
    await w.idle();
    const dms = mattermost.posts.filter((p) => p.channelId === 'dm-requester');
    expect(dms).toHaveLength(1);
    expect(dms[0]!.message).toMatch(/was denied/);
  });
});

describe('zero loss and no duplicates', () => {
  it('adopts a post that was saved although the call failed (timeout), instead of posting again', async () => {
    mattermost.saveThenFail = 1;
    const w = await start();
    const req = teleport.createRequest();
    await w.idle();
    expect(mattermost.roots()).toHaveLength(1);
    expect(data(req.id).messages).toEqual([{ channelId: 'dm-reviewer1', postId: mattermost.roots()[0]!.id }]);
    expect(await w.metrics.posts.get()).toMatchObject({
      values: expect.arrayContaining([expect.objectContaining({ labels: { result: 'adopted' }, value: 1 })]),
    });
  });

  it('recovers a crash between "post created" and "post recorded" on restart', async () => {
    const req = teleport.createRequest();
    const orphan = await postedButNotRecorded(req, 'posted before the crash');
    const w = await start();
    await w.idle();
    expect(mattermost.roots()).toHaveLength(1);
    expect(data(req.id).messages).toEqual([{ channelId: 'dm-reviewer1', postId: orphan.id }]);
  });

  it('recovers a crash between a reply and reviews_count', async () => {
    const w = await start();
    const req = teleport.createRequest();
    await w.idle();
    await w.stop(1000);
    const root = mattermost.roots()[0]!;
    teleport.review(req.id, { author: REVIEWER1, proposedState: 'APPROVED', reason: 'ok' });
    await teleport.updatePluginData(req.id, 'mattermost', { mm_reply_intent: `0@${Date.now()}` });
    await mattermost.createPost({
      channelId: root.channelId,
      rootId: root.id,
      message: 'reply before the crash',
      props: { teleport_request_id: req.id, teleport_post: 'review', teleport_review_index: 0 },
    });
    const w2 = await start();
    await w2.idle();
    expect(mattermost.repliesTo(root.id)).toHaveLength(1);
    expect(data(req.id).reviewsCount).toBe(1);
  });

  it('keeps requests while Mattermost is down and delivers each once when it is back', async () => {
    const w = await start();
    mattermost.down = true;
    const ids = Array.from({ length: 20 }, () => teleport.createRequest().id);
    await until(() => w.ready() !== undefined, 5000, 'not ready while down');
    await new Promise((r) => setTimeout(r, 150));
    mattermost.down = false;
    await w.idle();
    expect(mattermost.roots()).toHaveLength(20);
    for (const id of ids) expect(data(id).messages).toHaveLength(1);
    expect(w.ready()).toBeUndefined();
    const requeues = await w.metrics.requeues.get();
    expect(requeues.values[0]!.value).toBeGreaterThan(0);
  });

  it('retries 429s honouring Retry-After', async () => {
    const w = await start();
    mattermost.failures = { kind: 'RateLimited', remaining: 5, retryAfterMs: 5 };
    teleport.createRequest();
    await w.idle();
    expect(mattermost.roots()).toHaveLength(1);
  });

  it('does not search the channel after a 429: nothing was saved, and searching spends the limit', async () => {
    const w = await start();
    const before = mattermost.searches;
    mattermost.failures = { kind: 'RateLimited', remaining: 3, retryAfterMs: 5 };
    teleport.createRequest();
    await w.idle();
    expect(mattermost.roots()).toHaveLength(1);
    expect(mattermost.searches).toBe(before);
  });

  // A budget no loaded machine runs out of: the counts below must come from one pass.
  const ROOMY = { retry: { baseDelayMs: 2, maxDelayMs: 20, budgetMs: 60_000 } };

  // Budget 0: one attempt per pass, so each entry of a script is one pass of its own.
  const ONE_ATTEMPT_PER_PASS = { retry: { baseDelayMs: 2, maxDelayMs: 20, budgetMs: 0 } };

  it.each<[string, typeof ROOMY, NonNullable<MemoryMattermost['createScript']>, number]>([
    [
      'searches once after an ambiguous post failure, not again before each retry that follows a 429',
      ROOMY,
      ['unavailable', 'rateLimited', 'rateLimited', 'rateLimited'],
      1,
    ],
    [
      'searches again after each ambiguous failure, and adopts the post the second one saved',
      ROOMY,
      ['unavailable', 'rateLimited', 'saveThenFail', 'rateLimited'],
      2,
    ],
    [
      'does not search again on a later pass when every create since the last search was a 429',
      ONE_ATTEMPT_PER_PASS,
      ['unavailable', 'rateLimited', 'rateLimited', 'rateLimited'],
      1,
    ],
    [
      'does not search on a later pass when every create so far was a 429',
      ONE_ATTEMPT_PER_PASS,
      ['rateLimited', 'rateLimited', 'rateLimited'],
      0,
    ],
  ])('%s', async (_name, tuning, script, searches) => {
    const w = await start(undefined, false, tuning);
    const before = mattermost.searches;
    mattermost.createScript = [...script];
    teleport.createRequest();
    await w.idle();
    expect(mattermost.roots()).toHaveLength(1);
    expect(mattermost.searches - before).toBe(searches);
  });

  it('searches once after an ambiguous reply failure, not again before each retry that follows a 429', async () => {
    const w = await start(undefined, false, ROOMY);
    const req = teleport.createRequest();
    await w.idle();
    const before = mattermost.searches;
    mattermost.createScript = ['unavailable', 'rateLimited', 'rateLimited', 'rateLimited'];
    teleport.review(req.id, { author: REVIEWER1, proposedState: 'APPROVED', reason: 'ok' });
    await w.idle();
    expect(mattermost.repliesTo(mattermost.roots()[0]!.id)).toHaveLength(1);
    expect(mattermost.searches - before).toBe(1);
  });

  it('edits the other threads while one thread cannot get its review reply yet', async () => {
    const w = await start({ editor: [REVIEWER1, REVIEWER2] });
    const req = teleport.createRequest();
    await w.idle();
    mattermost.failingChannels.add('dm-reviewer2');
    teleport.review(req.id, { author: REVIEWER1, proposedState: 'APPROVED', reason: 'ok' });
    teleport.setState(req.id, 'APPROVED');
    const first = () => mattermost.roots().find((r) => r.channelId === 'dm-reviewer1')!;
    await until(() => /APPROVED/.test(status(first().message) ?? ''), 5000, 'reviewer1 root edited');
    mattermost.failingChannels.delete('dm-reviewer2');
    await w.idle();
    for (const root of mattermost.roots()) {
      expect(status(root.message)).toMatch(/APPROVED/);
      expect(mattermost.repliesTo(root.id)).toHaveLength(1);
    }
  });

  it('edits an adopted root post: it shows the state it was made in, not the current one', async () => {
    // A post saved although its call failed, adopted on a later pass after the request was approved.
    const req = teleport.createRequest();
    await teleport.updatePluginData(req.id, 'mattermost', {
      user: req.user,
      roles: 'editor',
      mm_recipients: 'dm-reviewer1',
      mm_post_intent_at: String(Date.now()),
    });
    const orphan = await mattermost.createPost({
      channelId: 'dm-reviewer1',
      message: 'posted while PENDING',
      props: { teleport_request_id: req.id, teleport_post: 'request' },
    });
    teleport.review(req.id, { author: REVIEWER1, proposedState: 'APPROVED', reason: 'ok' });
    teleport.setState(req.id, 'APPROVED');
    const w = await start();
    await w.idle();
    expect(mattermost.roots()).toHaveLength(1);
    expect(status(mattermost.roots()[0]!.message)).toMatch(/APPROVED/);
    expect(mattermost.repliesTo(orphan.id)).toHaveLength(1);
    expect(data(req.id).resolution).toBe('APPROVED');
  });

  it('gives a root post recorded after the reviews were replied those replies, and edits it', async () => {
    const w = await start({ editor: [REVIEWER1, REVIEWER2] });
    mattermost.failingChannels.add('dm-reviewer2');
    const req = teleport.createRequest();
    await until(() => data(req.id).messages.length === 1, 5000, 'first root recorded');
    teleport.review(req.id, { author: REVIEWER1, proposedState: 'APPROVED', reason: 'ok' });
    teleport.setState(req.id, 'APPROVED');
    await until(() => data(req.id).resolution === 'APPROVED', 5000, 'first root edited');
    expect(data(req.id).reviewsCount).toBe(1);
    mattermost.failingChannels.delete('dm-reviewer2');
    await w.idle();
    const roots = mattermost.roots();
    expect(roots.map((r) => r.channelId).sort()).toEqual(['dm-reviewer1', 'dm-reviewer2']);
    for (const root of roots) {
      expect(status(root.message)).toMatch(/APPROVED/);
      expect(mattermost.repliesTo(root.id)).toHaveLength(1);
    }
    expect(data(req.id).replyBackfill).toBeUndefined();
  });

  it('gives an adopted late root post the missed replies and the current text', async () => {
    const w = await start({ editor: [REVIEWER1, REVIEWER2] });
    // Its post is saved while PENDING although the call fails, and the channel keeps failing for a while.
    mattermost.saveThenGoDown = 'dm-reviewer2';
    const req = teleport.createRequest();
    await until(() => data(req.id).messages.length === 1, 5000, 'first root recorded');
    const late = mattermost.roots().find((r) => r.channelId === 'dm-reviewer2')!;
    teleport.review(req.id, { author: REVIEWER1, proposedState: 'APPROVED', reason: 'ok' });
    teleport.setState(req.id, 'APPROVED');
    await until(() => data(req.id).resolution === 'APPROVED', 5000, 'first root edited');
    mattermost.failingChannels.delete('dm-reviewer2');
    await w.idle();
    expect(mattermost.roots()).toHaveLength(2);
    expect(status(mattermost.posts.find((p) => p.id === late.id)!.message)).toMatch(/APPROVED/);
    expect(mattermost.repliesTo(late.id)).toHaveLength(1);
  });

  it('skips a channel that answers 404 and still posts to the others', async () => {
    mattermost.goneChannels.add('dm-reviewer2');
    const w = await start({ editor: [REVIEWER1, REVIEWER2] });
    const req = teleport.createRequest();
    await w.idle();
    expect(mattermost.roots().map((p) => p.channelId)).toEqual(['dm-reviewer1']);
    expect(data(req.id).recipients).toEqual(['dm-reviewer1']);
  });

  it('retries plugin data CAS conflicts', async () => {
    const w = await start();
    teleport.conflicts = 3;
    const req = teleport.createRequest();
    await w.idle();
    expect(mattermost.roots()).toHaveLength(1);
    expect(data(req.id).messages).toHaveLength(1);
  });
});

describe('Teleport calls per new request', () => {
  it('writes the intent of a new request without reading its plugin data first: one write before the post', async () => {
    const w = await start();
    const req = teleport.createRequest();
    await w.idle();
    expect(mattermost.roots()).toHaveLength(1);
    // The intent (with the recipients), then the posts' record; no read at all.
    expect(teleport.reads).toBe(0);
    expect(teleport.updates).toBe(2);
    expect(data(req.id).messages).toHaveLength(1);
  });

  it('an event that looks new for a request already posted does not post again (the CAS catches it)', async () => {
    const w = await start();
    const req = teleport.createRequest();
    await w.idle();
    teleport.setState(req.id, 'PENDING'); // e.g. another field of the pending request changed
    await w.idle();
    expect(mattermost.roots()).toHaveLength(1);
    expect(teleport.reads).toBe(1);
  });

  it("behind another writer's intent (e.g. an instance that crashed after posting), it looks before posting", async () => {
    const w = await start();
    // Recorded and posted by someone else, silently (no event yet): intent, post, no messages.
    const req = new MemoryTeleport().createRequest();
    teleport.requests.set(req.id, req);
    const orphan = await postedButNotRecorded(req, 'posted by the other writer');
    teleport.setState(req.id, 'PENDING');
    await w.idle();
    expect(mattermost.roots()).toHaveLength(1);
    expect(data(req.id).messages).toEqual([{ channelId: 'dm-reviewer1', postId: orphan.id }]);
  });
});

describe('catch-up and compatibility', () => {
  it('catches up requests created, reviewed, resolved and deleted while stopped', async () => {
    const w = await start();
    const gone = teleport.createRequest();
    await w.idle();
    await w.stop(1000);
    const fresh = teleport.createRequest();
    const reviewed = teleport.createRequest();
    teleport.review(reviewed.id, { author: REVIEWER1, proposedState: 'APPROVED', reason: 'ok' });
    teleport.setState(reviewed.id, 'APPROVED', 'done');
    teleport.deleteRequest(gone.id);
    const w2 = await start();
    await w2.idle();
    const byId = (id: string) => mattermost.roots().find((p) => p.props.teleport_request_id === id)!;
    expect(status(byId(fresh.id).message)).toBe('⏳ PENDING');
    expect(status(byId(reviewed.id).message)).toBe('✅ APPROVED');
    expect(mattermost.repliesTo(byId(reviewed.id).id)).toHaveLength(1);
    expect(status(byId(gone.id).message)).toBe('⌛ EXPIRED');
    expect(mattermost.roots()).toHaveLength(3);
  });

  it('catches up after a reconnect (INIT again) without posting twice', async () => {
    const w = await start();
    const a = teleport.createRequest();
    await w.idle();
    teleport.dropStreams();
    await until(() => teleport.watcherCount === 1);
    teleport.setState(a.id, 'APPROVED');
    await w.idle();
    expect(mattermost.roots()).toHaveLength(1);
    expect(status(mattermost.roots()[0]!.message)).toBe('✅ APPROVED');
  });

  it('does not re-post requests the upstream plugin already posted, and edits them on resolution', async () => {
    const req = teleport.createRequest();
    const upstreamPost = await mattermost.createPost({ channelId: 'dm-reviewer1', message: 'upstream post' });
    await teleport.updatePluginData(req.id, 'mattermost', {
      user: req.user,
      roles: 'editor',
      request_reason: 'because',
      messages: `dm-reviewer1/${upstreamPost.id}`,
    });
    const w = await start();
    await w.idle();
    expect(mattermost.roots()).toHaveLength(1);
    teleport.setState(req.id, 'APPROVED');
    await w.idle();
    expect(status(mattermost.roots()[0]!.message)).toBe('✅ APPROVED');
  });

  it('routes with Access Monitoring Rules when one matches', async () => {
    const w = await start({ editor: [REVIEWER1] });
    teleport.putRule({
      name: 'editors',
      subjects: ['access_request'],
      states: [],
      condition: 'access_request.spec.roles.contains("editor")',
      notification: { name: 'mattermost', recipients: ['team-llama/channel-llama'] },
    });
    await new Promise((r) => setTimeout(r, 20));
    teleport.createRequest();
    teleport.createRequest({ roles: ['db'] });
    await w.idle();
    expect(
      mattermost
        .roots()
        .map((p) => p.channelId)
        .sort(),
    ).toEqual(['ch-llama']);
  });
});

describe('operations', () => {
  it('serves /healthz, /readyz and /metrics; not ready while Mattermost is down at start', async () => {
    mattermost.down = true;
    const w = await runWatcher(testConfig({ editor: [REVIEWER1] }), logger, {
      teleport,
      mattermost,
      tuning: { ...FAST_TUNING, retry: { baseDelayMs: 1, maxDelayMs: 2, budgetMs: 5 } },
    });
    watchers.push(w);
    const base = `http://127.0.0.1:${w.httpPort}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const notReady = await fetch(`${base}/readyz`);
    expect(notReady.status).toBe(503);
    expect(await notReady.text()).toMatch(/not ready/);
    mattermost.down = false;
    await until(() => w.ready() === undefined, 5000, 'ready after Mattermost is back');
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    teleport.createRequest();
    await w.idle();
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/teleport_mattermost_events_total\{type="INIT"\} 1/);
    expect(metrics).toMatch(/teleport_mattermost_posts_total\{result="created"\} 1/);
    expect(metrics).toMatch(/teleport_mattermost_delivery_latency_seconds_count [1-9]/);
  });

  it('fails start-up with a clear error when Mattermost rejects the token', async () => {
    mattermost.failures = { kind: 'Unauthorized', remaining: 1 };
    await expect(
      runWatcher(testConfig({ editor: [REVIEWER1] }), logger, { teleport, mattermost, tuning: FAST_TUNING }),
    ).rejects.toThrow(/rejected the bot token.*bot account is enabled/);
  });

  it('reload changes recipients without dropping the watch', async () => {
    const w = await start({ editor: [REVIEWER1] });
    teleport.createRequest();
    await w.idle();
    await w.reload(testConfig({ editor: [REVIEWER2] }));
    teleport.createRequest();
    await w.idle();
    expect(mattermost.roots().map((p) => p.channelId)).toEqual(['dm-reviewer1', 'dm-reviewer2']);
    expect(teleport.watcherCount).toBe(1);
    expect(await w.metrics.events.get()).toMatchObject({
      values: expect.arrayContaining([expect.objectContaining({ labels: { type: 'INIT' }, value: 1 })]),
    });
  });

  it('stop finishes in-flight work and resolves done', async () => {
    const w = await start();
    teleport.createRequest();
    await new Promise((r) => setTimeout(r, 5));
    await w.stop(2000);
    await expect(w.done).resolves.toBeUndefined();
    expect(w.ready()).toBe('shutting down');
  });

  it('does not post old resolved requests it never saw, but posts recent ones', async () => {
    const old = teleport.createRequest({ state: 'APPROVED', created: new Date(Date.now() - 48 * 3600_000) });
    const recent = teleport.createRequest({ state: 'APPROVED' });
    const w = await start();
    await w.idle();
    const ids = mattermost.roots().map((p) => p.props.teleport_request_id);
    expect(ids).toEqual([recent.id]);
    expect(ids).not.toContain(old.id);
  });
});

describe('logs', () => {
  it('carry request_id, user and channel, and warn once per unresolvable recipient', async () => {
    const { logger: captured, lines } = captureLogger();
    const w = await runWatcher(testConfig({ '*': [REVIEWER1, 'missing/channel'] }), captured, {
      teleport,
      mattermost,
      tuning: FAST_TUNING,
    });
    watchers.push(w);
    const req = teleport.createRequest();
    teleport.createRequest();
    await w.idle();
    const posted = lines.find((l) => l.message === 'Posted the request');
    expect(posted).toMatchObject({ request_id: expect.any(String), user: req.user, channel: 'dm-reviewer1' });
    const warnings = lines.filter((l) => l.level === 'warn' && l.recipient === 'missing/channel');
    expect(warnings).toHaveLength(1);
  });
});
