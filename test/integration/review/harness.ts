// Native reviews end to end: fake Teleport (users, roles, submit_for_users) and fake Mattermost (which
// really routes a click to the callback with a signed trigger_id), the real clients, and a relay with
// [review] enabled listening on its own port.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { PluginConfig } from '../../../operator/config/types.js';
import { silentLogger, type Logger } from '../../../operator/observability/logger.js';
import type { ReviewOverrides } from '../../../operator/review/index.js';
import { runWatcher, type WatcherInternals } from '../../../operator/relay/run.js';
import type { AccessRequest } from '../../../operator/teleport/api.js';
import { startFakeMattermost, type FakeMattermost } from '../../mattermost-server/index.js';
import { startFakeTeleport, type FakeTeleport } from '../../teleport-server/index.js';
import { TEST_TUNING, until } from '../relay/harness.js';
import { relayTestConfig, reviewTestConfig } from '../relay/test-config.js';

export { until } from '../relay/harness.js';

export const SIGNING_KEY = 'test-signing-key-0123456789abcdef-0123456789abcdef';
export const CALLBACK_PATH = '/mattermost/action';

export interface MmUser {
  id: string;
  token: string;
}

export interface ReviewStack {
  teleport: FakeTeleport;
  mattermost: FakeMattermost;
  config: PluginConfig;
  channelId: string;
  /** Mattermost users by short name: bob, carol (reviewers), dave (no rights), erin (unlinked), twin (two Teleport users), alice (requester), outsider (not in the channel), frank (email only). */
  mm: Record<string, MmUser>;
  callbackUrl: string;
  relay: WatcherInternals;
  /** Creates a request and waits until its root post is recorded; returns the request and post id. */
  requestWithPost(partial?: Partial<AccessRequest>): Promise<{ request: AccessRequest; postId: string }>;
  /** Clicks like a Mattermost client: POST /api/v4/posts/{post}/actions/{action} with the user's token. */
  click(
    user: string,
    postId: string,
    action: string,
  ): Promise<{ status: number; body: Record<string, unknown> }>;
  /** The last ephemeral text the user was shown. */
  lastEphemeral(user: string): string | undefined;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

export async function startReviewStack(
  opts: { logger?: Logger; review?: ReviewOverrides; allowEmail?: boolean; approveThreshold?: number } = {},
): Promise<ReviewStack> {
  const dir = await mkdtemp(path.join(tmpdir(), 'review-e2e-'));
  const teleport = await startFakeTeleport({
    ...(opts.approveThreshold ? { approveThreshold: opts.approveThreshold } : {}),
  });
  const mattermost = await startFakeMattermost();
  const { user: bot, token } = mattermost.addBot({ username: 'teleport' });
  mattermost.addTeam({ name: 'ops', members: [bot.id] });
  const mm: Record<string, MmUser> = {};
  for (const name of [
    'bob',
    'carol',
    'dave',
    'erin',
    'twin',
    'alice',
    'outsider',
    'frank',
    'r1',
    'r2',
    'r3',
    'r4',
  ]) {
    const u = mattermost.addUser({ email: `${name}@example.com`, username: name });
    mm[name] = { id: u.id, token: mattermost.addToken(u.id) };
    mattermost.addToTeam('ops', u.id);
  }
  const channel = mattermost.addChannel({
    team: 'ops',
    name: 'access',
    members: [
      bot.id,
      ...Object.entries(mm)
        .filter(([n]) => n !== 'outsider')
        .map(([, u]) => u.id),
    ],
  });
  mattermost.addChannel({ team: 'ops', name: 'other', members: [bot.id, mm.bob!.id] });

  const trait = (name: string) => ({ mattermost_user_id: [mm[name]!.id] });
  teleport.putRole({ name: 'mm-plugin', allow: { submitForUsers: ['*'] } });
  teleport.putRole({ name: 'reviewer', allow: { reviewRoles: ['*'] } });
  teleport.putUser({ name: 'access-plugin', roles: ['mm-plugin'], traits: {} });
  for (const name of ['bob', 'carol', 'alice', 'r1', 'r2', 'r3', 'r4']) {
    teleport.putUser({ name, roles: ['reviewer'], traits: trait(name) });
  }
  teleport.putUser({ name: 'dave', roles: [], traits: trait('dave') });
  teleport.putUser({ name: 'twin-a', roles: ['reviewer'], traits: trait('twin') });
  teleport.putUser({ name: 'twin-b', roles: ['reviewer'], traits: trait('twin') });
  teleport.putUser({ name: 'frank@example.com', roles: ['reviewer'], traits: {} });

  const identity = await teleport.writeIdentity({ dir, ttlMs: 3600_000 });
  const keyFile = path.join(dir, 'review-key');
  await writeFile(keyFile, SIGNING_KEY);
  const port = await freePort();
  const callbackUrl = `http://127.0.0.1:${port}${CALLBACK_PATH}`;
  mattermost.setActionSettings({ allowedUntrustedInternalConnections: '127.0.0.1' });
  const config = relayTestConfig({
    dir,
    teleportAddr: teleport.authAddr,
    identity,
    mattermostUrl: mattermost.url,
    token,
    roleToRecipients: { '*': ['ops/access'] },
    review: reviewTestConfig({
      port,
      callbackUrl,
      keyFile,
      key: SIGNING_KEY,
      allowEmailUsernameMatch: opts.allowEmail ?? false,
    }),
  });
  const relay = await runWatcher(config, opts.logger ?? silentLogger(), {
    tuning: TEST_TUNING,
    ...(opts.review ? { review: opts.review } : {}),
  });
  await relay.idle();

  return {
    teleport,
    mattermost,
    config,
    channelId: channel.id,
    mm,
    callbackUrl,
    relay,
    async requestWithPost(partial = {}) {
      const request = teleport.createRequest({ user: 'alice', roles: ['editor'], ...partial });
      let postId = '';
      await until(
        () => {
          const m = /\/([a-z0-9]{26})/.exec(teleport.pluginData(request.id)?.messages ?? '');
          postId = m?.[1] ?? '';
          return postId !== '';
        },
        10_000,
        `the post of ${request.id}`,
      );
      return { request, postId };
    },
    async click(user, postId, action) {
      const res = await fetch(`${mattermost.url}/api/v4/posts/${postId}/actions/${action}`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${mm[user]!.token}`, 'Content-Type': 'application/json' },
        body: '{}',
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    },
    lastEphemeral(user) {
      return mattermost.ephemeralsFor(mm[user]!.id).at(-1)?.message;
    },
    async stop() {
      await relay.stop(1000).catch(() => undefined);
      await mattermost.stop();
      await teleport.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
