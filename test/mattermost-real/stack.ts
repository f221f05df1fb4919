// The relay between the Teleport-compatible test server and the tier's real Mattermost: like
// test/integration/relay/harness.ts, but Mattermost is the real one (seeded by global-setup.ts) and
// posts are read back through its API as the admin.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { PluginConfig } from '../../operator/config/types.js';
import { silentLogger, type Logger } from '../../operator/observability/logger.js';
import type { RelayTuning } from '../../operator/relay/reconcile.js';
import { runWatcher, type WatcherInternals } from '../../operator/relay/run.js';
import { startFakeTeleport, type FakeTeleport } from '../teleport-server/index.js';
import { TEST_TUNING, until } from '../integration/relay/harness.js';
import { relayTestConfig } from '../integration/relay/test-config.js';
import { realWorld, type World, type WorldPost } from './world.js';

export const CHANNEL = 'team-llama/channel-llama';

export interface RealStack {
  teleport: FakeTeleport;
  world: World;
  config: PluginConfig;
  startRelay(opts?: { tuning?: Partial<RelayTuning>; logger?: Logger }): Promise<WatcherInternals>;
  /** Root posts carrying this request id in a channel (the real server's view, deleted ones left out). */
  rootsOf(requestId: string, channelId: string): Promise<WorldPost[]>;
  repliesTo(rootId: string, channelId: string): Promise<WorldPost[]>;
  /** The bot's DM channel with a user (POST /channels/direct is idempotent). */
  dmOf(email: string): Promise<string>;
  stop(): Promise<void>;
}

export async function startRealStack(opts: {
  roleToRecipients: Record<string, string[]>;
  /** Talk to this Mattermost URL instead (e.g. a rate-limited instance on the same data). */
  mattermostUrl?: string;
  notifyRequester?: boolean;
}): Promise<RealStack> {
  const world = realWorld();
  const dir = await mkdtemp(path.join(tmpdir(), 'relay-real-'));
  const teleport = await startFakeTeleport();
  const identity = await teleport.writeIdentity({ dir, ttlMs: 3600_000 });
  const config = relayTestConfig({
    dir,
    teleportAddr: teleport.authAddr,
    identity,
    mattermostUrl: opts.mattermostUrl ?? world.url,
    token: world.botToken,
    roleToRecipients: opts.roleToRecipients,
    notifyRequester: opts.notifyRequester,
  });
  const relays: WatcherInternals[] = [];
  return {
    teleport,
    world,
    config,
    async startRelay(o = {}) {
      const relay = await runWatcher(config, o.logger ?? silentLogger(), {
        tuning: { ...TEST_TUNING, ...o.tuning },
      });
      relays.push(relay);
      return relay;
    },
    async rootsOf(requestId, channelId) {
      return (await world.posts(channelId)).filter(
        (p) => p.rootId === '' && p.props.teleport_request_id === requestId && !p.deleted,
      );
    },
    async repliesTo(rootId, channelId) {
      return (await world.posts(channelId)).filter((p) => p.rootId === rootId);
    },
    async dmOf(email) {
      const res = await fetch(`${world.url}/api/v4/channels/direct`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${world.botToken}`, 'Content-Type': 'application/json' },
        body: JSON.stringify([world.botId, world.users[email]]),
      });
      return ((await res.json()) as { id: string }).id;
    },
    async stop() {
      for (const r of relays) await r.stop(1000).catch(() => undefined);
      await teleport.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Polls an async check until it holds. */
export async function eventually(
  check: () => Promise<boolean>,
  timeoutMs = 20_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The relay started and ready (the real server answers more slowly than the fake: up to 20 s). */
export async function readyRelay(s: RealStack): Promise<WatcherInternals> {
  const relay = await s.startRelay();
  await until(() => relay.ready() === undefined, 20_000, 'relay ready');
  return relay;
}

/**
 * A new public channel `team-llama/<prefix>-<hex>`: its recipient name and id. The bot is a member unless
 * `botMember` is false; with `everyone`, so are the seeded users (e.g. to count their mentions).
 */
export async function newChannel(
  s: RealStack,
  prefix: string,
  opts: { botMember?: boolean; everyone?: boolean } = {},
): Promise<[string, string]> {
  const name = `${prefix}-${randomBytes(3).toString('hex')}`;
  const id = await s.world.createChannel(name, { type: 'O', botMember: opts.botMember ?? true });
  if (opts.everyone) for (const user of Object.values(s.world.users)) await s.world.addToChannel(id, user);
  return [`team-llama/${name}`, id];
}
