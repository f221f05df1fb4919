// Native reviews through the REAL Mattermost's action route: the bot posts buttons, a reviewer clicks with
// their own session, the real server calls our listener with its signed trigger_id, and the review lands in
// the Teleport-compatible test server as that reviewer's, on behalf. Then the watch edits the post.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { silentLogger } from '../../operator/observability/logger.js';
import { runWatcher, type WatcherInternals } from '../../operator/relay/run.js';
import { startFakeTeleport, type FakeTeleport } from '../teleport-server/index.js';
import { TEST_TUNING, until } from '../integration/relay/harness.js';
import { freePort } from '../integration/review/harness.js';
import { relayTestConfig, reviewTestConfig } from '../integration/relay/test-config.js';
import { must, rest } from './bootstrap.js';
import { eventually } from './stack.js';
import { realHandoff } from './world.js';

const h = realHandoff();
const REVIEWER = 'reviewer1@example.com';
let teleport: FakeTeleport;
let relay: WatcherInternals;
let dir: string;
let callbackUrl: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'review-real-'));
  teleport = await startFakeTeleport();
  teleport.putRole({ name: 'mm-plugin', allow: { submitForUsers: ['*'] } });
  teleport.putRole({ name: 'reviewer', allow: { reviewRoles: ['*'] } });
  teleport.putUser({ name: 'access-plugin', roles: ['mm-plugin'], traits: {} });
  teleport.putUser({
    name: 'reviewer1',
    roles: ['reviewer'],
    traits: { mattermost_user_id: [h.users[REVIEWER]!] },
  });
  const identity = await teleport.writeIdentity({ dir, ttlMs: 3600_000 });
  const keyFile = path.join(dir, 'key');
  const key = 'real-mattermost-review-signing-key-0123456789';
  await writeFile(keyFile, key);
  const port = await freePort();
  callbackUrl = `http://127.0.0.1:${port}/mattermost/action`;
  // The real server refuses loopback callbacks unless allowed (takes effect without restart).
  await must(200, h.url, h.adminToken, 'PUT', '/config/patch', {
    ServiceSettings: { AllowedUntrustedInternalConnections: '127.0.0.1' },
  });
  const config = relayTestConfig({
    dir,
    teleportAddr: teleport.authAddr,
    identity,
    mattermostUrl: h.url,
    token: h.botToken,
    roleToRecipients: { '*': ['team-llama/channel-llama'] },
    review: reviewTestConfig({ port, callbackUrl, keyFile, key }),
  });
  relay = await runWatcher(config, silentLogger(), { tuning: TEST_TUNING });
  await until(() => relay.ready() === undefined, 20_000, 'relay ready');
}, 60_000);

afterAll(async () => {
  await relay?.stop(1000).catch(() => undefined);
  await teleport?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** Creates a request and waits until its root post is recorded in the plugin data. */
async function requestWithRootPost() {
  const request = teleport.createRequest({ user: 'requester1@example.com', roles: ['editor'] });
  let postId = '';
  await until(
    () =>
      (postId = /\/([a-z0-9]{26})/.exec(teleport.pluginData(request.id)?.messages ?? '')?.[1] ?? '') !== '',
    20_000,
    'the root post',
  );
  return { request, postId };
}

test("a click on the real server becomes the reviewer's own review; the buttons go", async () => {
  const { request, postId } = await requestWithRootPost();
  const login = await must(200, h.url, undefined, 'POST', '/users/login', {
    login_id: 'reviewer1',
    password: 'User-pass-123!',
  });
  const session = login.headers.get('Token')!;
  // The reviewer sees the buttons, never their integration (url, context).
  const seen = await rest(h.url, session, 'GET', `/posts/${postId}`);
  expect(JSON.stringify(seen.body.props.attachments[0].actions.map((a: { id: string }) => a.id))).toBe(
    '["approve","deny"]',
  );
  expect(seen.text).not.toContain(callbackUrl);

  const click = await rest(h.url, session, 'POST', `/posts/${postId}/actions/approve`, {});
  expect(click.status).toBe(200);
  expect(click.body).toEqual({ status: 'OK', trigger_id: expect.stringMatching(/^[a-z0-9]{26}$/) });
  expect(teleport.getRequest(request.id)!.reviews).toEqual([
    expect.objectContaining({
      author: 'reviewer1',
      proposedState: 'APPROVED',
      reason: 'via Mattermost',
      submittedBy: 'access-plugin',
      onBehalfOfAuthor: true,
    }),
  ]);
  await eventually(
    async () => {
      const post = (await rest(h.url, h.adminToken, 'GET', `/posts/${postId}`)).body;
      return post.message.includes('APPROVED') && !post.props.attachments;
    },
    20_000,
    'APPROVED without buttons',
  );
  // A second click (on the now button-less post) never reaches a review: Mattermost has no such action.
  expect((await rest(h.url, session, 'POST', `/posts/${postId}/actions/approve`, {})).status).toBe(404);
});

test('a reviewer without a linked Teleport user is refused (200 with a message, no review)', async () => {
  const { request, postId } = await requestWithRootPost();
  const login = await must(200, h.url, undefined, 'POST', '/users/login', {
    login_id: 'reviewer2',
    password: 'User-pass-123!',
  });
  const click = await rest(h.url, login.headers.get('Token')!, 'POST', `/posts/${postId}/actions/deny`, {});
  // Our listener answered 200 (an ephemeral message, delivered over the websocket only), so no error banner.
  expect(click.status).toBe(200);
  expect(teleport.getRequest(request.id)!.reviews).toEqual([]);
  expect(teleport.getRequest(request.id)!.state).toBe('PENDING');
});
