// The Mattermost look-alike's modes that reproduce what a real server does to the relay (issue 11: hidden
// emails, edit time limit, deleted posts, a bot removed from a channel, props replaced on patch, archived
// channels, channels the bot is not in; the full-update route PUT /posts/{id}) and the hostile answers of
// a proxy in front of it (issue 15). Plain fetch, so nothing in our client can hide a difference.
/* eslint-disable @typescript-eslint/no-explicit-any -- JSON bodies of a test against the wire */
import type { FakeMattermost } from '../../mattermost-server/index.js';
import { startSeededMattermost } from '../../mattermost-server/seed.js';

let mm: FakeMattermost;
let token: string;
let botId: string;
let channelId: string;

async function call(method: string, path: string, body?: unknown) {
  const res = await fetch(mm.url + '/api/v4' + path, {
    method,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, type: res.headers.get('content-type'), json, text };
}

const post = async (message = 'root', extra: Record<string, unknown> = {}) =>
  (await call('POST', '/posts', { channel_id: channelId, message, ...extra })).json;

beforeEach(async () => {
  ({ mm, token, botId, townSquareId: channelId } = await startSeededMattermost());
});

afterEach(async () => {
  await mm.stop();
});

describe('server settings and admin actions', () => {
  it('ShowEmailAddress=false: 403 get_user_by_email.permissions for every address', async () => {
    mm.setShowEmailAddress(false);
    for (const email of ['alice@example.com', 'nobody@example.com']) {
      const r = await call('GET', `/users/email/${email}`);
      expect([r.status, r.json.id]).toEqual([403, 'api.user.get_user_by_email.permissions.app_error']);
    }
    mm.setShowEmailAddress(true);
    expect((await call('GET', '/users/email/alice@example.com')).status).toBe(200);
  });

  it('PostEditTimeLimit: a message change after the limit is 400 permissions_time_limit', async () => {
    const root = await post();
    mm.setPostEditTimeLimit(0);
    await new Promise((r) => setTimeout(r, 5));
    const r = await call('PUT', `/posts/${root.id}/patch`, { message: 'late' });
    expect([r.status, r.json.id]).toEqual([400, 'api.post.update_post.permissions_time_limit.app_error']);
    mm.setPostEditTimeLimit(-1);
    expect((await call('PUT', `/posts/${root.id}/patch`, { message: 'late' })).status).toBe(200);
  });

  it('a deleted post: patch 403, reply 400 root_id', async () => {
    const root = await post();
    mm.deletePost(root.id);
    expect((await call('PUT', `/posts/${root.id}/patch`, { message: 'x' })).status).toBe(403);
    const reply = await call('POST', '/posts', { channel_id: channelId, message: 'r', root_id: root.id });
    expect([reply.status, reply.json.id]).toEqual([400, 'api.post.create_post.root_id.app_error']);
  });

  it('the bot removed from the channel: post, reply and patch 403', async () => {
    const root = await post();
    mm.removeFromChannel(channelId, botId);
    expect((await call('POST', '/posts', { channel_id: channelId, message: 'x' })).status).toBe(403);
    const reply = await call('POST', '/posts', { channel_id: channelId, message: 'r', root_id: root.id });
    expect(reply.status).toBe(403);
    expect((await call('PUT', `/posts/${root.id}/patch`, { message: 'x' })).status).toBe(403);
  });

  it('a public channel the bot is not in (bot in the team): by-name 200, POST 403', async () => {
    const lobby = mm.addChannel({ team: 'myteam', name: 'lobby' });
    mm.addToTeam('myteam', botId);
    expect((await call('GET', '/teams/name/myteam/channels/name/lobby')).status).toBe(200);
    expect((await call('POST', '/posts', { channel_id: lobby.id, message: 'x' })).status).toBe(403);
  });

  it('an archived channel: by-name 404, post and patch 400', async () => {
    const root = await post();
    mm.archiveChannel(channelId);
    expect((await call('GET', '/teams/name/myteam/channels/name/town-square')).status).toBe(404);
    const p = await call('POST', '/posts', { channel_id: channelId, message: 'x' });
    expect([p.status, p.json.id]).toEqual([400, 'api.post.create_post.can_not_post_to_deleted.error']);
    const e = await call('PUT', `/posts/${root.id}/patch`, { message: 'x' });
    expect([e.status, e.json.id]).toEqual([400, 'api.post.patch_post.can_not_update_post_in_deleted.error']);
  });

  it('patch with props replaces the whole map (from_bot lost); without props keeps them', async () => {
    const root = await post('root', { props: { mine: 1 } });
    expect((await call('PUT', `/posts/${root.id}/patch`, { message: 'a' })).json.props).toEqual({
      mine: 1,
      from_bot: 'true',
    });
    expect((await call('PUT', `/posts/${root.id}/patch`, { props: { other: 2 } })).json.props).toEqual({
      other: 2,
    });
  });

  it('PUT /posts/{id}: full update, id must match, props replaced (from_bot kept)', async () => {
    const root = await post('root', { props: { mine: 1 } });
    const bad = await call('PUT', `/posts/${root.id}`, { id: 'x'.repeat(26), message: 'y' });
    expect(bad.status).toBe(400);
    const r = await call('PUT', `/posts/${root.id}`, { id: root.id, message: 'updated', props: { b: 2 } });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ id: root.id, message: 'updated', props: { b: 2, from_bot: 'true' } });
    expect(r.json.edit_at).toBeGreaterThan(0);
    expect((await call('PUT', `/posts/${'a'.repeat(26)}`, { id: 'a'.repeat(26), message: 'y' })).status).toBe(
      403,
    );
  });
});

describe('hostile answers (a proxy in front of the server)', () => {
  it.each([
    ['html', /text\/html/, /<html>/],
    ['text', /text\/plain/, /^OK/],
    ['truncated', /application\/json/, /^\{"id"/],
    ['empty', /application\/json/, /^$/],
  ] as const)('%s: 200 with a body that is not the API JSON', async (kind, type, body) => {
    mm.garble({ kind, path: '/api/v4/users/me', count: 1 });
    const r = await call('GET', '/users/me');
    expect(r.status).toBe(200);
    expect(r.type).toMatch(type);
    expect(r.text).toMatch(body);
    expect(r.json).toBeUndefined();
    expect((await call('GET', '/users/me')).json.id).toBe(botId);
  });

  it('afterProcessing: the post is created and only the answer is garbled', async () => {
    mm.garble({ kind: 'truncated', method: 'POST', path: '/api/v4/posts', count: 1, afterProcessing: true });
    const r = await call('POST', '/posts', { channel_id: channelId, message: 'hi' });
    expect(r.status).toBe(200);
    expect(r.json).toBeUndefined();
    expect(mm.rootPosts(channelId).map((p) => p.message)).toEqual(['hi']);
  });

  it('oversize: a JSON-looking body of the given size', async () => {
    mm.garble({ kind: 'oversize', bytes: 3 * 1024 * 1024, path: '/api/v4/users/me', count: 1 });
    const r = await call('GET', '/users/me');
    expect(r.text.length).toBe(3 * 1024 * 1024);
    expect(r.json.message).toMatch(/^x+$/);
  });
});
