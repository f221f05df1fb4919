// Fidelity of the Mattermost look-alike against the reference checklist (mattermost-api.md §8), with
/* eslint-disable @typescript-eslint/no-explicit-any -- JSON bodies of a test against the wire */
// plain fetch so nothing in our client can hide a difference.
import { isValidId, type FakeMattermost } from '../../mattermost-server/index.js';
import { startSeededMattermost } from '../../mattermost-server/seed.js';

let mm: FakeMattermost;
let token: string;
let botId: string;
let aliceId: string;
let channelId: string;

async function call(
  method: string,
  path: string,
  body?: unknown,
  auth: string | null = `Bearer ${token}`,
): Promise<{ status: number; type: string | null; headers: Headers; json: any; text: string }> {
  const res = await fetch(mm.url + '/api/v4' + path, {
    method,
    headers: {
      ...(auth ? { Authorization: auth } : {}),
      ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
    },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, type: res.headers.get('content-type'), headers: res.headers, json, text };
}

beforeEach(async () => {
  ({ mm, token, botId, aliceId, townSquareId: channelId } = await startSeededMattermost());
});

afterEach(async () => {
  await mm.stop();
});

describe('auth and error shape', () => {
  it('answers users/me with the bot, JSON without charset, request and version ids', async () => {
    const r = await call('GET', '/users/me');
    expect(r.status).toBe(200);
    expect(r.type).toBe('application/json');
    expect(r.json).toMatchObject({ id: botId, username: 'teleport', is_bot: true });
    expect(isValidId(r.json.id)).toBe(true);
    expect(r.json.id).toMatch(/^[ybndrfg8ejkmcpqxot1uwisza345h769]{26}$/);
    expect(r.headers.get('x-request-id')).toHaveLength(26);
    expect(r.headers.get('x-version-id')).toBeTruthy();
    expect(r.headers.get('expires')).toBe('0');
  });

  it('accepts the scheme word in any case', async () => {
    expect((await call('GET', '/users/me', undefined, `BEARER ${token}`)).status).toBe(200);
    expect((await call('GET', '/users/me', undefined, `bearer ${token}`)).status).toBe(200);
    expect((await call('GET', '/users/me', undefined, `Bearer  ${token}`)).status).toBe(401);
  });

  it('gives 401 with the AppError body for no token, a wrong token, a revoked token and a disabled bot', async () => {
    const none = await call('GET', '/users/me', undefined, null);
    expect(none.status).toBe(401);
    expect(none.type).toBe('application/json');
    expect(Object.keys(none.json)).toEqual(['id', 'message', 'detailed_error', 'request_id', 'status_code']);
    expect(none.json).toMatchObject({
      id: 'api.context.session_expired.app_error',
      message: 'Invalid or expired session, please login again.',
      detailed_error: '',
      status_code: 401,
    });
    expect(none.json.request_id).toBe(none.headers.get('x-request-id'));
    expect((await call('GET', '/users/me', undefined, 'Bearer nope')).status).toBe(401);
    const extra = mm.addToken(botId);
    mm.revokeToken(extra);
    expect((await call('GET', '/users/me', undefined, `Bearer ${extra}`)).status).toBe(401);
    mm.disableUser(botId);
    expect((await call('GET', '/users/me')).json.id).toBe('api.context.session_expired.app_error');
    mm.enableUser(botId);
    expect((await call('GET', '/users/me')).status).toBe(200);
  });

  it('pings without auth and 404s unknown routes with an AppError', async () => {
    const ping = await call('GET', '/system/ping', undefined, null);
    expect(ping.json.status).toBe('OK');
    const unknown = await call('GET', '/nope');
    expect(unknown.status).toBe(404);
    expect(unknown.json.id).toBe('api.context.404.app_error');
  });
});

describe('users, teams, channels', () => {
  it('finds a user by email (case-insensitively) and 404s an unknown one', async () => {
    expect((await call('GET', '/users/email/Alice@Example.com')).json.id).toBe(aliceId);
    const missing = await call('GET', '/users/email/bob@example.com');
    expect(missing.status).toBe(404);
    expect(missing.json.id).toBe('app.user.missing_account.const');
  });

  it('creates a DM idempotently: 201 both times, the same channel, name = sorted ids joined by __', async () => {
    const a = await call('POST', '/channels/direct', [botId, aliceId]);
    const b = await call('POST', '/channels/direct', [aliceId, botId]);
    expect(a.status).toBe(201);
    expect(b.status).toBe(201);
    expect(b.json.id).toBe(a.json.id);
    expect(a.json).toMatchObject({
      type: 'D',
      team_id: '',
      display_name: '',
      name: [botId, aliceId].sort().join('__'),
    });
    expect(mm.dmChannelId(aliceId, botId)).toBe(a.json.id);
    expect((await call('POST', '/channels/direct', [botId])).status).toBe(201);
    expect((await call('POST', '/channels/direct', [botId, 'x'.repeat(26)])).json.id).toBe(
      'api.channel.create_direct_channel.invalid_user.app_error',
    );
    expect(
      (await call('POST', '/channels/direct', [aliceId, mm.addUser({ email: 'c@x.io' }).id])).status,
    ).toBe(403);
    expect((await call('POST', '/channels/direct', { a: 1 })).status).toBe(400);
  });

  it('gets a channel by team and channel handle, with the real 400/403/404 cases', async () => {
    const ok = await call('GET', '/teams/name/myteam/channels/name/town-square?include_deleted=false');
    expect(ok.status).toBe(200);
    expect(ok.json).toMatchObject({
      id: channelId,
      name: 'town-square',
      display_name: 'Town Square',
      type: 'O',
    });
    // The real server lower-cases the names (test/mattermost-real/conformance.test.ts); a space is
    // refused by its router.
    expect((await call('GET', '/teams/name/MyTeam/channels/name/Town-Square')).json.id).toBe(channelId);
    expect((await call('GET', '/teams/name/myteam/channels/name/Town%20Square')).json.id).toBe(
      'api.context.404.app_error',
    );
    expect((await call('GET', '/teams/name/myteam/channels/name/town.square')).json.id).toBe(
      'api.context.404.app_error',
    );
    expect((await call('GET', '/teams/name/myteam/channels/name/nope')).json.id).toBe(
      'app.channel.get_by_name.missing.app_error',
    );
    expect((await call('GET', '/teams/name/other/channels/name/town-square')).json.id).toBe(
      'app.team.get_by_name.missing.app_error',
    );
    mm.addTeam({ name: 'elsewhere' });
    mm.addChannel({ team: 'elsewhere', name: 'public' });
    mm.addChannel({ team: 'myteam', name: 'secret', type: 'P' });
    expect((await call('GET', '/teams/name/elsewhere/channels/name/public')).status).toBe(403);
    expect((await call('GET', '/teams/name/myteam/channels/name/secret')).status).toBe(404);
  });

  it('lists my teams and my channels in a team (the display-name lookup path)', async () => {
    const teams = await call('GET', '/users/me/teams');
    expect(teams.json.map((t: any) => t.name)).toEqual(['myteam']);
    const chans = await call('GET', `/users/me/teams/${teams.json[0].id}/channels?include_deleted=false`);
    expect(chans.json.map((c: any) => c.display_name)).toEqual(['Town Square']);
  });
});

describe('posts', () => {
  it('creates posts (201) with from_bot, replies bump the root, patch edits keep history', async () => {
    const root = await call('POST', '/posts', {
      channel_id: channelId,
      message: 'hello',
      props: { request_id: 'r1' },
    });
    expect(root.status).toBe(201);
    expect(root.json).toMatchObject({
      channel_id: channelId,
      root_id: '',
      user_id: botId,
      edit_at: 0,
      message: 'hello',
    });
    expect(root.json.props).toEqual({ request_id: 'r1', from_bot: 'true' });
    expect(root.json.update_at).toBe(root.json.create_at);
    const reply = await call('POST', '/posts', {
      channel_id: channelId,
      message: 'reply',
      root_id: root.json.id,
    });
    expect(reply.status).toBe(201);
    const patched = await call('PUT', `/posts/${root.json.id}/patch`, {
      id: root.json.id,
      message: 'edited',
    });
    expect(patched.status).toBe(200);
    expect(patched.json.edit_at).toBeGreaterThan(0);
    expect(patched.json.props).toEqual({ request_id: 'r1', from_bot: 'true' });
    const [stored] = mm.rootPosts(channelId);
    expect(stored!.history.map((h) => h.message)).toEqual(['hello']);
    expect(stored!.message).toBe('edited');
    expect(stored!.replyCount).toBe(1);
    expect(mm.repliesTo(root.json.id).map((p) => p.message)).toEqual(['reply']);
    expect(mm.transcript()).toContain('=== channel myteam/town-square ("Town Square")');
  });

  it('enforces the rune limit on create and edit with 400 message_length', async () => {
    mm.setMaxPostRunes(10);
    const ok = await call('POST', '/posts', { channel_id: channelId, message: '😀'.repeat(10) });
    expect(ok.status).toBe(201);
    const long = await call('POST', '/posts', { channel_id: channelId, message: 'x'.repeat(11) });
    expect(long.status).toBe(400);
    expect(long.json.id).toBe('model.post.is_valid.message_length.app_error');
    const edit = await call('PUT', `/posts/${ok.json.id}/patch`, { message: 'y'.repeat(11) });
    expect(edit.json.id).toBe('model.post.is_valid.message_length.app_error');
  });

  it('refuses posting where the bot is not a member (403), bad roots (400), unknown posts on patch (403)', async () => {
    const other = mm.addChannel({ team: 'myteam', name: 'other' });
    expect((await call('POST', '/posts', { channel_id: other.id, message: 'x' })).status).toBe(403);
    expect((await call('POST', '/posts', { channel_id: '', message: 'x' })).status).toBe(403);
    expect(
      (await call('POST', '/posts', { channel_id: channelId, message: 'x', root_id: 'a'.repeat(26) })).json
        .id,
    ).toBe('api.post.create_post.root_id.app_error');
    expect((await call('PUT', `/posts/${'a'.repeat(26)}/patch`, { message: 'x' })).status).toBe(403);
    expect((await call('PUT', `/posts/short/patch`, { message: 'x' })).status).toBe(400);
    mm.archiveChannel(channelId);
    expect((await call('POST', '/posts', { channel_id: channelId, message: 'x' })).json.id).toBe(
      'api.post.create_post.can_not_post_to_deleted.error',
    );
  });

  it('de-duplicates on pending_post_id and does not persist it', async () => {
    const a = await call('POST', '/posts', { channel_id: channelId, message: 'x', pending_post_id: 'k1' });
    const b = await call('POST', '/posts', { channel_id: channelId, message: 'x', pending_post_id: 'k1' });
    expect(a.json.pending_post_id).toBe('k1');
    expect(b.status).toBe(201);
    expect(b.json.id).toBe(a.json.id);
    expect(mm.posts()).toHaveLength(1);
  });

  it('answers a repeat of a pending_post_id that is still being saved with the 500 "pending" error', async () => {
    mm.slow(1000);
    const first = call('POST', '/posts', { channel_id: channelId, message: 'x', pending_post_id: 'k2' });
    for (let i = 0; i < 100 && mm.requests().length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 50));
    const repeat = await call('POST', '/posts', {
      channel_id: channelId,
      message: 'x',
      pending_post_id: 'k2',
    });
    expect(repeat.status).toBe(500);
    expect(repeat.json.id).toBe('api.post.deduplicate_create_post.pending');
    expect((await first).status).toBe(201);
    mm.slow(0);
    const later = await call('POST', '/posts', {
      channel_id: channelId,
      message: 'x',
      pending_post_id: 'k2',
    });
    expect(later.json.id).toBe((await first).json.id);
    expect(mm.posts()).toHaveLength(1);
  });

  it('lists channel posts newest first, and since= returns changed posts including edits', async () => {
    const first = (await call('POST', '/posts', { channel_id: channelId, message: 'one' })).json;
    const second = (await call('POST', '/posts', { channel_id: channelId, message: 'two' })).json;
    const all = await call('GET', `/channels/${channelId}/posts?page=0&per_page=60`);
    expect(all.json.order).toEqual([second.id, first.id]);
    expect(Object.keys(all.json)).toEqual([
      'order',
      'posts',
      'next_post_id',
      'prev_post_id',
      'first_inaccessible_post_time',
    ]);
    await call('PUT', `/posts/${first.id}/patch`, { message: 'one!' });
    const since = await call('GET', `/channels/${channelId}/posts?since=${second.create_at}`);
    expect(since.json.order).toEqual([first.id]);
    expect(since.json.posts[first.id].message).toBe('one!');
    expect((await call('GET', `/channels/${'b'.repeat(26)}/posts`)).status).toBe(404);
  });
});

describe('rate limiting and faults', () => {
  it('answers 429 as plain text with Retry-After and X-Ratelimit headers, per remote address', async () => {
    // One request per 10 s after a burst of 3: the 4th and 5th are limited however slow this runs.
    mm.setRateLimit({ perSecond: 0.1, burst: 2 });
    const statuses: number[] = [];
    let limited: Awaited<ReturnType<typeof call>> | undefined;
    for (let i = 0; i < 5; i++) {
      const r = await call('GET', '/users/me');
      statuses.push(r.status);
      expect(r.headers.get('x-ratelimit-limit')).toBe('3');
      if (r.status === 429) limited = r;
    }
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    expect(limited!.text).toBe('limit exceeded\n');
    expect(limited!.type).toBe('text/plain; charset=utf-8');
    expect(Number(limited!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(limited!.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(Number(limited!.headers.get('x-ratelimit-reset'))).toBeGreaterThanOrEqual(1);
    // Keyed by remote address, as Mattermost does by default: another token on 127.0.0.1 shares the bucket.
    const other = mm.addToken(aliceId);
    expect((await call('GET', '/users/me', undefined, `Bearer ${other}`)).status).toBe(429);
    // With VaryByUser each token has its own.
    mm.setRateLimit({ perSecond: 0.1, burst: 2, varyByUser: true });
    expect((await call('GET', '/users/me', undefined, `Bearer ${other}`)).status).toBe(200);
  });

  it('fails N calls, or calls for a while, then recovers', async () => {
    mm.fail({ status: 503, count: 2, path: '/api/v4/posts' });
    const a = await call('POST', '/posts', { channel_id: channelId, message: 'x' });
    expect(a.status).toBe(503);
    expect(a.json.status_code).toBe(503);
    expect((await call('GET', '/users/me')).status).toBe(200);
    expect((await call('POST', '/posts', { channel_id: channelId, message: 'x' })).status).toBe(503);
    expect((await call('POST', '/posts', { channel_id: channelId, message: 'x' })).status).toBe(201);
    mm.fail({ status: 500, forMs: 60_000 });
    expect((await call('GET', '/users/me')).status).toBe(500);
    mm.clearFailures();
    expect((await call('GET', '/users/me')).status).toBe(200);
    mm.fail({ status: 429, count: 1, retryAfterSec: 7 });
    const r = await call('GET', '/users/me');
    expect(r.status).toBe(429);
    expect(r.headers.get('retry-after')).toBe('7');
    expect(mm.posts()).toHaveLength(1);
  });

  it('resets connections, goes down (connection refused) and comes back on the same port', async () => {
    mm.resetConnections(1);
    await expect(call('GET', '/users/me')).rejects.toThrow(/fetch failed/);
    expect((await call('GET', '/users/me')).status).toBe(200);
    const url = mm.url;
    await mm.down(300);
    const err = await call('GET', '/users/me').catch((e: Error) => e);
    expect((err as Error & { cause?: { code?: string } }).cause?.code).toBe('ECONNREFUSED');
    await mm.waitUp();
    expect(mm.url).toBe(url);
    expect((await call('GET', '/users/me')).status).toBe(200);
  });

  it('can fail or reset after carrying the call out (the post exists, the client hears nothing good)', async () => {
    mm.fail({ status: 504, count: 1, path: '/api/v4/posts', afterProcessing: true });
    expect((await call('POST', '/posts', { channel_id: channelId, message: 'a' })).status).toBe(504);
    mm.resetConnections(1, { afterProcessing: true });
    await expect(call('POST', '/posts', { channel_id: channelId, message: 'b' })).rejects.toThrow(
      /fetch failed/,
    );
    mm.resetConnections(1);
    await expect(call('POST', '/posts', { channel_id: channelId, message: 'c' })).rejects.toThrow(
      /fetch failed/,
    );
    expect(mm.posts().map((p) => p.message)).toEqual(['a', 'b']);
  });

  it('slow responses still carry out the call', async () => {
    mm.slow(200);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    await expect(
      fetch(mm.url + '/api/v4/posts', {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}` },
        body: JSON.stringify({ channel_id: channelId, message: 'late' }),
        signal: controller.signal,
      }),
    ).rejects.toThrow();
    for (let i = 0; i < 100 && mm.posts().length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(mm.posts().map((p) => p.message)).toEqual(['late']);
  });
});
