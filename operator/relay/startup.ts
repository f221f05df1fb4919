// Start-up of the watcher: connecting the real clients, and the checks that must pass before the watch
// starts (Teleport's cluster features, the Mattermost bot token). Tests inject fakes instead of clients.
import type { PluginConfig } from '../config/types.js';
import { MattermostError, type MattermostApi } from '../mattermost/api.js';
import { maskUrl } from '../mattermost/connection.js';
import type { Logger } from '../observability/logger.js';
import { isTeleportError, type TeleportApi } from '../teleport/api.js';
import { errorText, type RelayTuning } from './reconcile.js';
import { backoffDelay, sleep, withRetry } from './retry.js';
import { clusterInfoFromPing, type ClusterInfo } from './view.js';

// The real clients are loaded lazily: tests inject fakes and need neither the gRPC nor the HTTP stack.
// Teleport may be restarting while we start (or not reachable yet from a new pod): keep trying, with
// /readyz false meanwhile, rather than crash-looping. Bad credentials (IdentityError) stay fatal.
const CONNECT_RETRY = { baseDelayMs: 1_000, maxDelayMs: 30_000 };

export async function connectTeleportWithRetry(config: PluginConfig, logger: Logger): Promise<TeleportApi> {
  const { connectTeleport } = await import('../teleport/client.js');
  for (let attempt = 0; ; attempt++) {
    try {
      return await connectTeleport(config.teleport, logger);
    } catch (err) {
      if (!isTeleportError(err, 'Unavailable')) throw err;
      const delay = backoffDelay(attempt, CONNECT_RETRY);
      logger.warn('Cannot reach Teleport yet; retrying', { error: err.message, retry_in_ms: delay });
      await sleep(delay);
    }
  }
}

export async function connectMattermost(config: PluginConfig, logger: Logger): Promise<MattermostApi> {
  const { createMattermostClient } = await import('../mattermost/client.js');
  return createMattermostClient(config.mattermost, logger);
}

/** Pings Teleport (within the start-up budget) for the cluster's name, version and features. */
export async function checkTeleport(
  teleport: TeleportApi,
  tuning: RelayTuning,
  logger: Logger,
): Promise<ClusterInfo> {
  try {
    const ping = await withRetry(() => teleport.ping(), {
      ...tuning.retry,
      budgetMs: tuning.startupBudgetMs,
    });
    logger.info('Connected to Teleport', {
      cluster: ping.clusterName,
      server_version: ping.serverVersion,
      advanced_workflows: ping.advancedAccessWorkflows,
    });
    return clusterInfoFromPing(ping);
  } catch (err) {
    throw new Error(`Unable to get Teleport server version: ${errorText(err)}`, { cause: err });
  }
}

/**
 * Checks the bot token (GET /users/me). Returns whether Mattermost answered; throws when it refused
 * for good (a bad token is a configuration problem). Unreachable is not fatal: requests are kept.
 */
export async function checkMattermost(
  mattermost: MattermostApi,
  config: PluginConfig,
  tuning: RelayTuning,
  logger: Logger,
): Promise<boolean> {
  try {
    const me = await withRetry(() => mattermost.getMe(), {
      ...tuning.retry,
      budgetMs: tuning.startupBudgetMs,
    });
    logger.info('Mattermost bot authenticated', { bot: me.username });
    return true;
  } catch (err) {
    if (err instanceof MattermostError && !err.temporary) {
      throw new Error(
        err.kind === 'Unauthorized'
          ? `Mattermost rejected the bot token (${err.status ?? 'unauthorized'}): check [mattermost] token, and that the bot account is enabled`
          : `Mattermost API health check failed: ${err.message}`,
        { cause: err },
      );
    }
    logger.warn('Mattermost API health check failed; will keep trying', {
      url: maskUrl(config.mattermost.url),
      error: errorText(err),
    });
    return false;
  }
}
