// The relay against the real test servers: fake Teleport (gRPC over mutual TLS, identity file) and
// fake Mattermost (REST), with the real clients in between. Shared by the integration tests and the demo.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { PluginConfig } from '../../../operator/config/types.js';
import { silentLogger, type Logger } from '../../../operator/observability/logger.js';
import type { RelayTuning } from '../../../operator/relay/reconcile.js';
import { runWatcher, type WatcherInternals } from '../../../operator/relay/run.js';
import { startFakeMattermost, type FakeMattermost } from '../../mattermost-server/index.js';
import {
  startFakeTeleport,
  type FakeTeleport,
  type FakeTeleportOptions,
} from '../../teleport-server/index.js';
import { relayTestConfig } from './test-config.js';

export const REVIEWER1 = 'reviewer1@example.com';
export const REVIEWER2 = 'reviewer2@example.com';
export const REQUESTER = 'requester1@example.com';
export const TEAM_CHANNEL = 'team-llama/channel-llama';

/** Short retry and requeue delays so outage scenarios take seconds; the logic is the production one. */
export const TEST_TUNING: Partial<RelayTuning> = {
  concurrency: 16,
  retry: { baseDelayMs: 20, maxDelayMs: 250, budgetMs: 1_000 },
  requeue: { baseDelayMs: 50, maxDelayMs: 500 },
  probeIntervalMs: 100,
  // No grace: outage tests watch /readyz turn at once (the grace itself is tested in unit/relay/hostile).
  readyGraceMs: 0,
};

export interface Stack {
  teleport: FakeTeleport;
  mattermost: FakeMattermost;
  botId: string;
  teamChannelId: string;
  config: PluginConfig;
  /** Starts a relay on the stack (several in sequence simulate restarts). */
  startRelay(opts?: { tuning?: Partial<RelayTuning>; logger?: Logger }): Promise<WatcherInternals>;
  /** The DM channel between the bot and a user (after the relay created it). */
  dmOf(email: string): string | undefined;
  stop(): Promise<void>;
}

export async function startStack(
  opts: {
    roleToRecipients?: Record<string, string[]>;
    teleport?: FakeTeleportOptions;
    notifyRequester?: boolean;
  } = {},
): Promise<Stack> {
  const dir = await mkdtemp(path.join(tmpdir(), 'relay-it-'));
  const teleport = await startFakeTeleport(opts.teleport);
  const mattermost = await startFakeMattermost();
  const { user: bot, token } = mattermost.addBot({ username: 'teleport' });
  const users = new Map<string, string>();
  for (const email of [REVIEWER1, REVIEWER2, REQUESTER, 'alice@example.com']) {
    users.set(email, mattermost.addUser({ email }).id);
  }
  mattermost.addTeam({ name: 'team-llama', displayName: 'Team Llama', members: [bot.id] });
  const teamChannel = mattermost.addChannel({
    team: 'team-llama',
    name: 'channel-llama',
    displayName: 'Channel Llama',
    members: [bot.id],
  });
  const identity = await teleport.writeIdentity({ dir, ttlMs: 3600_000 });
  const config = relayTestConfig({
    dir,
    teleportAddr: teleport.authAddr,
    identity,
    mattermostUrl: mattermost.url,
    token,
    roleToRecipients: opts.roleToRecipients ?? { editor: [REVIEWER1], '*': [TEAM_CHANNEL] },
    notifyRequester: opts.notifyRequester,
  });
  const relays: WatcherInternals[] = [];
  return {
    teleport,
    mattermost,
    botId: bot.id,
    teamChannelId: teamChannel.id,
    config,
    async startRelay(o = {}) {
      const relay = await runWatcher(config, o.logger ?? silentLogger(), {
        tuning: { ...TEST_TUNING, ...o.tuning },
      });
      relays.push(relay);
      return relay;
    },
    dmOf(email) {
      const id = users.get(email);
      return id ? mattermost.dmChannelId(bot.id, id) : undefined;
    },
    async stop() {
      for (const r of relays) await r.stop(1000).catch(() => undefined);
      await mattermost.stop();
      await teleport.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function until(check: () => boolean, timeoutMs = 15_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** idle(), but failing clearly when a request keeps being re-queued (a refusal retried for ever). */
export async function settle(relay: WatcherInternals, ms = 10_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    relay.idle(),
    new Promise((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`relay did not settle in ${ms} ms (re-queued for ever?)`)),
        ms,
      );
    }),
  ]).finally(() => clearTimeout(timer));
}
