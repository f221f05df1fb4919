// The Mattermost-compatible server's interactive actions behave as observed on a real 11.4.0 server
// (reference native-review.md): what the callback receives, what counts as success, and what the answer's
// `update` and `ephemeral_text` do.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { verify, createPublicKey } from 'node:crypto';
import { startFakeMattermost, type FakeMattermost } from '../../mattermost-server/index.js';

let mm: FakeMattermost;
let callback: http.Server;
let callbackUrl: string;
let answer: (req: http.IncomingMessage, body: string, res: http.ServerResponse) => void;
let botToken: string;
let userToken: string;
let userId: string;
let channelId: string;

beforeAll(async () => {
  mm = await startFakeMattermost();
  const bot = mm.addBot({ username: 'teleport' });
  botToken = bot.token;
  mm.addTeam({ name: 'ops', members: [bot.user.id] });
  const user = mm.addUser({ email: 'bob@example.com', username: 'bob' });
  userId = user.id;
  userToken = mm.addToken(user.id);
  mm.addToTeam('ops', user.id);
  channelId = mm.addChannel({ team: 'ops', name: 'access', members: [bot.user.id, user.id] }).id;
  callback = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => answer(req, body, res));
  });
  await new Promise<void>((r) => callback.listen(0, '127.0.0.1', r));
  callbackUrl = `http://127.0.0.1:${(callback.address() as AddressInfo).port}/cb`;
  mm.setActionSettings({ allowedUntrustedInternalConnections: '127.0.0.1' });
});
afterAll(async () => {
  callback.closeAllConnections();
  await new Promise((r) => callback.close(r));
  await mm.stop();
});

async function api(token: string | undefined, method: string, path: string, body?: unknown) {
  const res = await fetch(`${mm.url}/api/v4${path}`, {
    method,
    headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), 'Content-Type': 'application/json' },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, text, json: text ? (JSON.parse(text) as Record<string, any>) : {} }; // eslint-disable-line @typescript-eslint/no-explicit-any
}

async function postWithButton(context: Record<string, unknown>, type?: string): Promise<string> {
  const res = await api(botToken, 'POST', '/posts', {
    channel_id: channelId,
    message: 'request text',
    props: {
      attachments: [
        {
          actions: [
            {
              id: 'approve',
              name: 'Approve',
              ...(type ? { type } : {}),
              integration: { url: callbackUrl, context },
            },
          ],
        },
      ],
    },
  });
  expect(res.status).toBe(201);
  expect(res.text).not.toContain('integration');
  return res.json.id as string;
}

test('the callback gets the documented body, Go-encoded, with a verifiable trigger_id and no signature header', async () => {
  let seen: { headers: http.IncomingHttpHeaders; body: string } | undefined;
  answer = (req, body, res) => {
    seen = { headers: req.headers, body };
    res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}');
  };
  const postId = await postWithButton({ z: 'last', a: '<b>&' });
  const click = await api(userToken, 'POST', `/posts/${postId}/actions/approve`, {});
  expect(click.json).toEqual({ status: 'OK', trigger_id: expect.stringMatching(/^[a-z0-9]{26}$/) });
  expect(seen!.body).toContain('"context":{"a":"\\u003cb\\u003e\\u0026","z":"last"}');
  const body = JSON.parse(seen!.body);
  expect(Object.keys(body)).toEqual([
    'user_id',
    'user_name',
    'channel_id',
    'channel_name',
    'team_id',
    'team_domain',
    'post_id',
    'trigger_id',
    'type',
    'data_source',
    'context',
  ]);
  expect(body).toMatchObject({
    user_id: userId,
    user_name: 'bob',
    channel_id: channelId,
    post_id: postId,
    type: '',
  });
  expect(seen!.headers['user-agent']).toBe('Mattermost-Bot/1.1');
  expect(Object.keys(seen!.headers).filter((h) => /sign|token|auth/i.test(h))).toEqual([]);
  const cfg = await api(undefined, 'GET', '/config/client?format=old');
  const key = createPublicKey({
    key: Buffer.from(cfg.json.AsymmetricSigningPublicKey, 'base64'),
    format: 'der',
    type: 'spki',
  });
  const [clientId, uid, millis, sig] = Buffer.from(body.trigger_id, 'base64').toString().split(':');
  expect([clientId, uid]).toEqual([click.json.trigger_id, userId]);
  const signed = Buffer.from(`${clientId}:${uid}:${millis}:`);
  expect(verify('sha256', signed, { key, dsaEncoding: 'der' }, Buffer.from(sig!, 'base64'))).toBe(true);
});

test('anything but 200 with JSON (or empty) is a 400 to the clicker', async () => {
  const postId = await postWithButton({ k: 'v' }, 'button');
  for (const [status, text] of [
    [201, '{}'],
    [204, ''],
    [500, '{}'],
    [200, 'not json'],
  ] as const) {
    answer = (_req, _body, res) => res.writeHead(status).end(text);
    const click = await api(userToken, 'POST', `/posts/${postId}/actions/approve`, {});
    expect([status, click.status, click.json.id]).toEqual([
      status,
      400,
      'api.post.do_action.action_integration.app_error',
    ]);
  }
  answer = (_req, _body, res) => res.writeHead(200).end('');
  expect((await api(userToken, 'POST', `/posts/${postId}/actions/approve`, {})).status).toBe(200);
});

test('update: no message erases the text, props omitted are kept, {} clears them; ephemeral goes to the clicker', async () => {
  const postId = await postWithButton({ k: 'v' });
  answer = (_req, _body, res) =>
    res.writeHead(200).end(JSON.stringify({ update: {}, ephemeral_text: 'done' }));
  await api(userToken, 'POST', `/posts/${postId}/actions/approve`, {});
  let post = mm.store.posts.get(postId)!;
  expect(post.message).toBe('');
  expect(post.props.attachments).toBeDefined();
  expect(mm.ephemeralsFor(userId).at(-1)).toMatchObject({ message: 'done', rootId: postId, channelId });
  answer = (_req, _body, res) =>
    res.writeHead(200).end(JSON.stringify({ update: { message: 'x', props: {} } }));
  await api(userToken, 'POST', `/posts/${postId}/actions/approve`, {});
  post = mm.store.posts.get(postId)!;
  expect([post.message, post.props]).toEqual(['x', {}]);
  expect((await api(userToken, 'POST', `/posts/${postId}/actions/approve`, {})).status).toBe(404);
});

test('route and permission answers; internal hosts need AllowedUntrustedInternalConnections; timeout', async () => {
  const postId = await postWithButton({ k: 'v' });
  expect((await api(userToken, 'POST', `/posts/${postId}/actions/app-rove`, {})).json.id).toBe(
    'api.context.404.app_error',
  );
  expect((await api(userToken, 'POST', `/posts/${postId}/actions/deny`, {})).json.id).toBe(
    'api.post.do_action.action_id.app_error',
  );
  const outsider = mm.addUser({ email: 'eve@example.com' });
  expect((await api(mm.addToken(outsider.id), 'POST', `/posts/${postId}/actions/approve`, {})).status).toBe(
    403,
  );
  mm.setActionSettings({ allowedUntrustedInternalConnections: 'localhost' });
  expect((await api(userToken, 'POST', `/posts/${postId}/actions/approve`, {})).status).toBe(400);
  mm.setActionSettings({ allowedUntrustedInternalConnections: '127.0.0.0/8' });
  answer = (_req, _body, res) => res.writeHead(200).end('{}');
  expect((await api(userToken, 'POST', `/posts/${postId}/actions/approve`, {})).status).toBe(200);
  mm.setActionSettings({
    allowedUntrustedInternalConnections: '127.0.0.1',
    outgoingIntegrationRequestsTimeout: 0.2,
  });
  answer = (_req, _body, res) => setTimeout(() => res.writeHead(200).end('{}'), 600);
  expect((await api(userToken, 'POST', `/posts/${postId}/actions/approve`, {})).status).toBe(400);
  expect(mm.callbacks().at(-1)!.error).toBe('timeout');
  mm.setActionSettings({ outgoingIntegrationRequestsTimeout: 30 });
});
