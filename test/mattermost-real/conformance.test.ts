// One conformance suite, two targets: every REST call the relay makes, and the error answers it depends
// on, against the real Mattermost (started by global-setup.ts) and against our fake
// (test/mattermost-server), with the same assertions. When they disagree the fake is wrong: fix the fake.
import { randomBytes } from 'node:crypto';
import { dmName, type FakeMattermost } from '../mattermost-server/index.js';
import { createMattermostClient } from '../../operator/mattermost/client.js';
import type { MattermostError } from '../../operator/mattermost/api.js';
import { silentLogger } from '../../operator/observability/logger.js';
import { rest, type RestReply } from './bootstrap.js';
import { startMattermostProcess, type MattermostInstance } from './server.js';
import { realHandoff, realWorld, startFakeWorld, type World } from './world.js';

const suffix = () => randomBytes(4).toString('hex');
const key = () => `${'k'.repeat(6)}:${Date.now()}:${suffix()}`;

/** The English message of every error id the suite meets (the relay quotes them in its reports). */
const MESSAGES: Record<string, string> = {
  'api.context.session_expired.app_error': 'Invalid or expired session, please login again.',
  'api.context.permissions.app_error': 'You do not have the appropriate permissions.',
  'api.context.404.app_error': 'Sorry, we could not find the page.',
  'api.context.invalid_url_param.app_error': 'Invalid or missing post_id parameter in request URL.',
  'app.user.missing_account.const': 'Unable to find the user.',
  'api.user.get_user_by_email.permissions.app_error': 'Unable to get user by email.',
  'app.team.get_by_name.missing.app_error': 'Unable to find the existing team.',
  'app.channel.get_by_name.missing.app_error': 'Channel does not exist.',
  'model.post.is_valid.message_length.app_error':
    'Post Message property is longer than the maximum permitted length.',
  'api.post.deduplicate_create_post.pending':
    'Rejected post since another client is making the same request.',
  'api.post.create_post.root_id.app_error': 'Invalid RootId parameter.',
  'api.post.create_post.channel_root_id.app_error': 'Invalid ChannelId for RootId parameter.',
  'api.post.patch_post.can_not_update_post_in_deleted.error': 'Can not update a post in a deleted channel.',
  'api.post.create_post.can_not_post_to_deleted.error': 'Can not post to deleted channel.',
  'api.post.update_post.permissions_time_limit.app_error':
    'Post edit is only allowed for 1 seconds. Please ask your System Administrator for details.',
};

/** An AppError answer as the real server writes it: JSON, the id and its message, the status, a request id. */
function expectAppError(r: RestReply, status: number, id: string): void {
  expect({ status: r.status, id: r.body?.id }).toEqual({ status, id });
  expect(r.headers.get('content-type')).toBe('application/json');
  expect(Object.keys(r.body)).toEqual(['id', 'message', 'detailed_error', 'request_id', 'status_code']);
  expect(r.body.status_code).toBe(status);
  expect(r.body.detailed_error).toBe('');
  expect(r.body.request_id).toBe(r.headers.get('x-request-id'));
  expect({ id, message: r.body.message }).toEqual({ id, message: MESSAGES[id] });
}

/** No route matched: the router answers before the API layer (no request id; the detail is filled in). */
function expectRouteNotFound(r: RestReply, url: string): void {
  expect(r.status).toBe(404);
  expect(r.headers.get('content-type')).toBe('application/json');
  expect(r.headers.get('x-request-id')).toBeNull();
  expect(r.body).toEqual({
    id: 'api.context.404.app_error',
    message: MESSAGES['api.context.404.app_error'],
    detailed_error: `There doesn't appear to be an api call for the url='/api/v4${url}'.  Typo? are you missing a team_id or user_id as part of the url?`,
    status_code: 404,
  });
}

/** The fake behind a fake world (its rate limiter is set directly; the real one is read at start-up). */
const fakeOf = (w: World) => (w as World & { mm: FakeMattermost }).mm;

const targets: Array<[string, () => Promise<World>]> = [
  ['fake', startFakeWorld],
  ['real', async () => realWorld()],
];

describe.each(targets)('%s Mattermost', (kind, start) => {
  let w: World;
  let bot: (method: string, path: string, body?: unknown) => Promise<RestReply>;
  const post = async (channelId: string, message: string, extra: Record<string, unknown> = {}) => {
    const r = await bot('POST', '/posts', { channel_id: channelId, message, ...extra });
    expect(r.status).toBe(201);
    return r.body;
  };

  beforeAll(async () => {
    w = await start();
    bot = (method, path, body) => rest(w.url, w.botToken, method, path, body);
  });
  afterAll(async () => {
    await w?.stop();
  });

  describe('authentication and the answer shape', () => {
    it('GET /users/me with the bot token: the bot, as JSON with request and version ids', async () => {
      const r = await rest(w.url, w.botToken, 'GET', '/users/me', undefined);
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toBe('application/json');
      expect(r.headers.get('x-request-id')).toMatch(/^[a-z0-9]{26}$/);
      expect(r.headers.get('x-version-id')).toBeTruthy();
      expect(r.body).toMatchObject({ id: w.botId, username: 'teleport', is_bot: true, roles: 'system_user' });
    });

    it('the scheme word is case-insensitive (Client4 sends BEARER)', async () => {
      const r = await rest(w.url, undefined, 'GET', '/users/me', undefined, {
        Authorization: `BEARER ${w.botToken}`,
      });
      expect(r.status).toBe(200);
    });

    it('a wrong token: 401 session_expired with the real message', async () => {
      const r = await rest(w.url, 'x'.repeat(26), 'GET', '/users/me');
      expectAppError(r, 401, 'api.context.session_expired.app_error');
      expect(r.body.message).toBe('Invalid or expired session, please login again.');
    });

    it('an unknown route: 404 from the router', async () => {
      expectRouteNotFound(await bot('GET', '/no/such/route'), '/no/such/route');
    });
  });

  describe('users and direct channels', () => {
    it('GET /users/email/{email}: the user; unknown: 404 "Unable to find the user."', async () => {
      const r = await bot('GET', '/users/email/reviewer1%40example.com');
      expect(r.status).toBe(200);
      expect(r.body.id).toBe(w.users['reviewer1@example.com']);
      const missing = await bot('GET', '/users/email/nobody%40example.com');
      expectAppError(missing, 404, 'app.user.missing_account.const');
      expect(missing.body.message).toBe('Unable to find the user.');
    });

    it('with ShowEmailAddress=false every email lookup is 403, known or not', async () => {
      await w.setShowEmailAddress(false);
      try {
        for (const email of ['reviewer1@example.com', 'nobody@example.com']) {
          const r = await bot('GET', `/users/email/${encodeURIComponent(email)}`);
          expectAppError(r, 403, 'api.user.get_user_by_email.permissions.app_error');
        }
      } finally {
        await w.setShowEmailAddress(true);
      }
      expect((await bot('GET', '/users/email/reviewer1%40example.com')).status).toBe(200);
    });

    it('POST /channels/direct: 201 with the D channel, the same one again', async () => {
      const alice = w.users['alice@example.com']!;
      const first = await bot('POST', '/channels/direct', [w.botId, alice]);
      expect(first.status).toBe(201);
      expect(first.body).toMatchObject({ type: 'D', team_id: '', name: dmName(w.botId, alice) });
      const again = await bot('POST', '/channels/direct', [w.botId, alice]);
      expect(again.status).toBe(201);
      expect(again.body.id).toBe(first.body.id);
    });

    it("GET /users/me/teams/{id}/channels: the bot's channels, private ones and its DMs included", async () => {
      const dm = (await bot('POST', '/channels/direct', [w.botId, w.users['reviewer2@example.com']!])).body;
      const r = await bot('GET', `/users/me/teams/${w.teamId}/channels?include_deleted=false`);
      expect(r.status).toBe(200);
      const ids = (r.body as Array<{ id: string }>).map((c) => c.id);
      expect(ids).toEqual(expect.arrayContaining([w.channels.llama, w.channels.private, dm.id]));
      expect(ids).not.toContain(w.channels.outside);
      expect(ids).not.toContain(w.channels.secret);
    });
  });

  describe('teams and channels by name', () => {
    it('GET /teams/name/{name}; GET /users/me/teams', async () => {
      expect((await bot('GET', '/teams/name/team-llama')).body.id).toBe(w.teamId);
      expectAppError(
        await bot('GET', '/teams/name/no-such-team'),
        404,
        'app.team.get_by_name.missing.app_error',
      );
      const mine = await bot('GET', '/users/me/teams');
      expect((mine.body as Array<{ id: string }>).map((t) => t.id)).toContain(w.teamId);
    });

    it('a channel by handle: member or public 200; private non-member and unknown 404', async () => {
      const byName = (c: string) =>
        bot('GET', `/teams/name/team-llama/channels/name/${c}?include_deleted=false`);
      expect((await byName('channel-llama')).body.id).toBe(w.channels.llama);
      expect((await byName('private-llama')).body.id).toBe(w.channels.private);
      // Public and the bot is in the team: visible although the bot may not post there.
      expect((await byName('outside-llama')).body.id).toBe(w.channels.outside);
      expectAppError(await byName('secret-llama'), 404, 'app.channel.get_by_name.missing.app_error');
      expectAppError(await byName('no-such-channel'), 404, 'app.channel.get_by_name.missing.app_error');
    });

    it('a display name in the by-name URL is refused by the router (404); upper-case handles are lower-cased', async () => {
      const base = '/teams/name/team-llama/channels/name/';
      expectRouteNotFound(await bot('GET', `${base}Channel%20Llama`), `${base}Channel Llama`);
      expect((await bot('GET', `${base}CHANNEL-LLAMA`)).body.id).toBe(w.channels.llama);
      expect((await bot('GET', '/teams/name/Team-Llama/channels/name/channel-llama')).body.id).toBe(
        w.channels.llama,
      );
      expect((await bot('GET', '/teams/name/Team-Llama')).body.id).toBe(w.teamId);
    });
  });

  describe('creating posts', () => {
    it('201 with the post: the bot as author, from_bot added, our props kept, pending_post_id echoed', async () => {
      const k = key();
      const p = await post(w.channels.llama, 'hello', {
        props: { teleport_request_id: 'r-1' },
        pending_post_id: k,
      });
      expect(p).toMatchObject({
        channel_id: w.channels.llama,
        user_id: w.botId,
        root_id: '',
        message: 'hello',
        edit_at: 0,
        delete_at: 0,
        pending_post_id: k,
        props: { teleport_request_id: 'r-1', from_bot: 'true' },
      });
      expect(p.id).toMatch(/^[a-z0-9]{26}$/);
      expect(p.update_at).toBe(p.create_at);
    });

    it('the server adds channel_mentions for ~public-channel text, code spans and fences included', async () => {
      const p = await post(
        w.channels.llama,
        'see ~channel-llama `~outside-llama` ~private-llama ~nope\n```\n~secret-llama ~team-llama\n```',
      );
      expect(p.props.channel_mentions).toEqual({
        'channel-llama': { display_name: 'Channel Llama', team_name: 'team-llama' },
        'outside-llama': { display_name: 'Outside Llama', team_name: 'team-llama' },
      });
      const plain = await post(w.channels.llama, 'no mentions');
      expect(plain.props).toEqual({ from_bot: 'true' });
      const dm = (await bot('POST', '/channels/direct', [w.botId, w.users['alice@example.com']!])).body;
      expect((await post(dm.id, 'dm ~channel-llama')).props.channel_mentions).toEqual({
        'channel-llama': { display_name: 'Channel Llama', team_name: 'team-llama' },
      });
    });

    it('403 where the bot may not post: public or private non-member channel, unknown channel id', async () => {
      for (const channelId of [w.channels.outside, w.channels.secret, 'u'.repeat(26)]) {
        const r = await bot('POST', '/posts', { channel_id: channelId, message: 'x' });
        expectAppError(r, 403, 'api.context.permissions.app_error');
        expect(r.body.message).toBe('You do not have the appropriate permissions.');
      }
    });

    it('with post:all (system_post_all) the bot posts to channels it is not in; lookups stay as they were', async () => {
      await w.setBotRoles('system_user system_post_all');
      try {
        expect((await bot('GET', '/users/me')).body.roles).toBe('system_user system_post_all');
        for (const channelId of [w.channels.outside, w.channels.secret]) {
          expect((await bot('POST', '/posts', { channel_id: channelId, message: 'post:all' })).status).toBe(
            201,
          );
        }
        expectAppError(
          await bot('GET', '/teams/name/team-llama/channels/name/secret-llama'),
          404,
          'app.channel.get_by_name.missing.app_error',
        );
      } finally {
        await w.setBotRoles('system_user');
      }
      const r = await bot('POST', '/posts', { channel_id: w.channels.outside, message: 'x' });
      expectAppError(r, 403, 'api.context.permissions.app_error');
    });

    it('at most 16383 runes (four-byte emoji count as one); one more is 400 message_length', async () => {
      const ok = await bot('POST', '/posts', { channel_id: w.channels.llama, message: '🦙'.repeat(16383) });
      expect(ok.status).toBe(201);
      const long = await bot('POST', '/posts', { channel_id: w.channels.llama, message: '🦙'.repeat(16384) });
      expectAppError(long, 400, 'model.post.is_valid.message_length.app_error');
    });

    it('a repeated pending_post_id returns the first post, even for another channel (the key is global)', async () => {
      const k = key();
      const first = await post(w.channels.llama, 'once', { pending_post_id: k });
      const again = await post(w.channels.llama, 'once', { pending_post_id: k });
      expect(again.id).toBe(first.id);
      const elsewhere = await post(w.channels.private, 'other text', { pending_post_id: k });
      expect(elsewhere.id).toBe(first.id);
      const posts = await w.posts(w.channels.llama);
      expect(posts.filter((p) => p.message === 'once')).toHaveLength(1);
    });

    it('concurrent posts with one pending_post_id: one post; the others get it or 500 "pending"', async () => {
      const k = key();
      const text = `burst ${k}`;
      // Eight warm keep-alive connections first, so the burst arrives at once (not one TCP handshake apart).
      await Promise.all(Array.from({ length: 8 }, () => bot('GET', '/users/me')));
      const replies = await Promise.all(
        Array.from({ length: 8 }, () =>
          bot('POST', '/posts', { channel_id: w.channels.llama, message: text, pending_post_id: k }),
        ),
      );
      const created = replies.filter((r) => r.status === 201);
      const pending = replies.filter((r) => r.status === 500);
      expect(created.length + pending.length).toBe(8);
      expect(new Set(created.map((r) => r.body.id)).size).toBe(1);
      expect(pending.length).toBeGreaterThanOrEqual(1);
      for (const r of pending) expectAppError(r, 500, 'api.post.deduplicate_create_post.pending');
      expect((await w.posts(w.channels.llama)).filter((p) => p.message === text)).toHaveLength(1);
    });

    it('replies: 201 in the thread; to a reply or to a root in another channel, 400', async () => {
      const root = await post(w.channels.llama, 'root');
      const reply = await post(w.channels.llama, 'reply', { root_id: root.id });
      expect(reply.root_id).toBe(root.id);
      const nested = await bot('POST', '/posts', {
        channel_id: w.channels.llama,
        message: 'x',
        root_id: reply.id,
      });
      expectAppError(nested, 400, 'api.post.create_post.root_id.app_error');
      const across = await bot('POST', '/posts', {
        channel_id: w.channels.private,
        message: 'x',
        root_id: root.id,
      });
      expectAppError(across, 400, 'api.post.create_post.channel_root_id.app_error');
    });
  });

  describe('editing posts (PUT /posts/{id}/patch)', () => {
    it('the message alone: props (from_bot, ours) are kept', async () => {
      const p = await post(w.channels.llama, 'before', { props: { teleport_request_id: 'r-2' } });
      const r = await bot('PUT', `/posts/${p.id}/patch`, { message: 'after' });
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({
        message: 'after',
        props: { teleport_request_id: 'r-2', from_bot: 'true' },
      });
      expect(r.body.edit_at).toBeGreaterThan(0);
    });

    it('with props: the props are replaced by exactly what was sent (from_bot is lost)', async () => {
      const p = await post(w.channels.llama, 'before', { props: { teleport_request_id: 'r-3', other: 'x' } });
      const r = await bot('PUT', `/posts/${p.id}/patch`, {
        message: 'after',
        props: { teleport_request_id: 'r-3' },
      });
      expect(r.status).toBe(200);
      expect(r.body.props).toEqual({ teleport_request_id: 'r-3' });
      const stored = (await w.posts(w.channels.llama)).find((x) => x.id === p.id)!;
      expect(stored.props).toEqual({ teleport_request_id: 'r-3' });
    });

    it('an unknown post id is 403 (not 404); a malformed id 400', async () => {
      expectAppError(
        await bot('PUT', `/posts/${'u'.repeat(26)}/patch`, { message: 'x' }),
        403,
        'api.context.permissions.app_error',
      );
      expectAppError(
        await bot('PUT', '/posts/short/patch', { message: 'x' }),
        400,
        'api.context.invalid_url_param.app_error',
      );
    });

    it('a post an admin deleted: patch 403, reply 400 root_id', async () => {
      const p = await post(w.channels.llama, 'to be deleted');
      await w.deletePost(p.id);
      expectAppError(
        await bot('PUT', `/posts/${p.id}/patch`, { message: 'x' }),
        403,
        'api.context.permissions.app_error',
      );
      const reply = await bot('POST', '/posts', {
        channel_id: w.channels.llama,
        message: 'x',
        root_id: p.id,
      });
      expectAppError(reply, 400, 'api.post.create_post.root_id.app_error');
    });

    it('after the bot was removed from the channel: patch, reply and new post are 403', async () => {
      const ch = await w.createChannel(`left-${suffix()}`, { type: 'O', botMember: true });
      const p = await post(ch, 'root');
      await w.removeFromChannel(ch, w.botId);
      expectAppError(
        await bot('PUT', `/posts/${p.id}/patch`, { message: 'x' }),
        403,
        'api.context.permissions.app_error',
      );
      for (const body of [{ root_id: p.id }, {}]) {
        const r = await bot('POST', '/posts', { channel_id: ch, message: 'x', ...body });
        expectAppError(r, 403, 'api.context.permissions.app_error');
      }
    });

    it('an archived channel: patch and posts 400, the by-name lookup 404', async () => {
      const name = `archived-${suffix()}`;
      const ch = await w.createChannel(name, { type: 'O', botMember: true });
      const p = await post(ch, 'root');
      await w.archiveChannel(ch);
      expectAppError(
        await bot('PUT', `/posts/${p.id}/patch`, { message: 'x' }),
        400,
        'api.post.patch_post.can_not_update_post_in_deleted.error',
      );
      for (const body of [{ root_id: p.id }, {}]) {
        const r = await bot('POST', '/posts', { channel_id: ch, message: 'x', ...body });
        expectAppError(r, 400, 'api.post.create_post.can_not_post_to_deleted.error');
      }
      expectAppError(
        await bot('GET', `/teams/name/team-llama/channels/name/${name}?include_deleted=false`),
        404,
        'app.channel.get_by_name.missing.app_error',
      );
    });

    it('after ServiceSettings.PostEditTimeLimit: 400 permissions_time_limit', async () => {
      const p = await post(w.channels.llama, 'old post');
      await w.setPostEditTimeLimit(1);
      try {
        await new Promise((r) => setTimeout(r, 2100));
        const r = await bot('PUT', `/posts/${p.id}/patch`, { message: 'too late' });
        expectAppError(r, 400, 'api.post.update_post.permissions_time_limit.app_error');
      } finally {
        await w.setPostEditTimeLimit(-1);
      }
      expect((await bot('PUT', `/posts/${p.id}/patch`, { message: 'now fine' })).status).toBe(200);
    });
  });

  describe('reading posts back (crash recovery)', () => {
    it('GET /channels/{id}/posts: newest first, with props; deleted posts are left out', async () => {
      const ch = await w.createChannel(`list-${suffix()}`, { type: 'P', botMember: true });
      const a = await post(ch, 'a', { props: { teleport_request_id: 'r-a' } });
      const b = await post(ch, 'b');
      const gone = await post(ch, 'gone');
      await w.deletePost(gone.id);
      const r = await bot('GET', `/channels/${ch}/posts?page=0&per_page=200`);
      expect(r.status).toBe(200);
      const order = (r.body.order as string[]).filter((id) => [a.id, b.id, gone.id].includes(id));
      expect(order).toEqual([b.id, a.id]);
      expect(r.body.posts[a.id].props).toMatchObject({ teleport_request_id: 'r-a', from_bot: 'true' });
    });
  });

  describe("through the relay's client (operator/mattermost/client.ts)", () => {
    const client = () =>
      createMattermostClient(
        { url: w.url, token: w.botToken, tokenSource: 'inline', recipients: [], notifyRequester: false },
        silentLogger(),
      );

    it('getMe and every recipient form resolve to the same channels on both servers', async () => {
      const c = client();
      expect((await c.getMe()).id).toBe(w.botId);
      expect((await c.resolveRecipient('team-llama/channel-llama')).channelId).toBe(w.channels.llama);
      expect((await c.resolveRecipient('Team Llama/Private Llama')).channelId).toBe(w.channels.private);
      expect((await c.resolveRecipient('team-llama/Channel Llama')).channelId).toBe(w.channels.llama);
      const dm = await c.resolveRecipient('reviewer1@example.com');
      expect(dm.kind).toBe('user');
      const again = await bot('POST', '/channels/direct', [w.botId, w.users['reviewer1@example.com']!]);
      expect(dm.channelId).toBe(again.body.id);
    });

    it('refusals map to the same kinds and statuses on both servers', async () => {
      const c = client();
      const kindOf = (p: Promise<unknown>) =>
        p.then(
          () => 'ok',
          (e: MattermostError) => `${e.kind} ${e.status}`,
        );
      expect(await kindOf(c.resolveRecipient('nobody@example.com'))).toBe('NotFound 404');
      expect(await kindOf(c.resolveRecipient('team-llama/secret-llama'))).toMatch(/^NotFound 404$/);
      const outside = await c.resolveRecipient('team-llama/outside-llama');
      expect(outside.channelId).toBe(w.channels.outside);
      expect(await kindOf(c.createPost({ channelId: outside.channelId, message: 'x' }))).toMatch(/ 403$/);
      expect(await kindOf(c.updatePost('u'.repeat(26), 'x'))).toMatch(/ 403$/);
      const long = c.createPost({ channelId: w.channels.llama, message: 'x'.repeat(16384) });
      expect(await kindOf(long)).toBe('BadRequest 400');
    });

    it('create, edit and read back: the post the relay finds after a crash is the one it made', async () => {
      const c = client();
      const ch = await w.createChannel(`client-${suffix()}`, { type: 'O', botMember: true });
      const since = Date.now() - 60_000;
      const k = key();
      const created = await c.createPost({
        channelId: ch,
        message: 'pending',
        props: { teleport_request_id: 'r-c' },
        idempotencyKey: k,
      });
      expect((await c.createPost({ channelId: ch, message: 'pending', idempotencyKey: k })).id).toBe(
        created.id,
      );
      const edited = await c.updatePost(created.id, 'approved');
      expect(edited.message).toBe('approved');
      const found = (await c.listPostsSince(ch, since)).filter((p) => p.props.teleport_request_id === 'r-c');
      expect(found.map((p) => [p.id, p.message, p.props.from_bot])).toEqual([
        [created.id, 'approved', 'true'],
      ]);
    });
  });

  describe('the rate limiter (keyed by remote address)', () => {
    let limited: MattermostInstance | undefined;
    let url: string;
    beforeAll(async () => {
      if (kind === 'real') {
        const h = realHandoff();
        limited = await startMattermostProcess({
          dir: h.dir!,
          dataSource: h.dataSource!,
          name: `limited-${suffix()}`,
          rateLimit: { perSec: 1, maxBurst: 2 },
        });
        url = limited.url;
      } else {
        fakeOf(w).setRateLimit({
          perSecond: 1,
          burst: 2,
        });
        url = w.url;
      }
    }, 120_000);
    afterAll(async () => {
      await limited?.stop();
      if (kind === 'fake') fakeOf(w).setRateLimit(null);
    });

    it('429 text/plain "limit exceeded" with Retry-After and X-Ratelimit-*; another token shares the bucket', async () => {
      const other = await w.newBotToken();
      const replies: RestReply[] = [];
      for (let i = 0; i < 6; i++) replies.push(await rest(url, w.botToken, 'GET', '/users/me'));
      const tooMany = replies.filter((r) => r.status === 429);
      expect(tooMany.length).toBeGreaterThanOrEqual(2);
      const r = tooMany[0]!;
      expect(r.text).toBe('limit exceeded\n');
      expect(r.headers.get('content-type')).toBe('text/plain; charset=utf-8');
      expect(r.headers.get('retry-after')).toBe('1');
      expect(r.headers.get('x-ratelimit-limit')).toBe('3');
      expect(r.headers.get('x-ratelimit-remaining')).toBe('0');
      expect(Number(r.headers.get('x-ratelimit-reset'))).toBeGreaterThanOrEqual(1);
      expect(r.headers.get('x-request-id')).toBeNull();
      expect((await rest(url, other, 'GET', '/users/me')).status).toBe(429);
    });

    it("the relay's client reads a 429 as RateLimited with the server's Retry-After", async () => {
      const c = createMattermostClient(
        { url, token: w.botToken, tokenSource: 'inline', recipients: [], notifyRequester: false },
        silentLogger(),
        // How one call reads a 429, so without the pacing gate (which would wait instead of sending).
        { pacing: false },
      );
      const errors: MattermostError[] = [];
      for (let i = 0; i < 5; i++) await c.getMe().catch((e: MattermostError) => errors.push(e));
      expect(errors.length).toBeGreaterThanOrEqual(2);
      expect(errors.map((e) => [e.kind, e.status, e.retryAfterMs, e.notProcessed])).toContainEqual([
        'RateLimited',
        429,
        1000,
        true,
      ]);
    });
  });
});
