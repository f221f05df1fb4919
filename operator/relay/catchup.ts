// Catch-up on every watch INIT: list rules and requests and queue them all (the queue merges with what
// is pending); the requests known before but missing now were deleted during the gap. On the first pass
// after start, our root posts in the configured channels name requests deleted while we were stopped.
import { PLUGIN_NAME } from '../config/defaults.js';
import type { PluginConfig } from '../config/types.js';
import type { MattermostApi } from '../mattermost/api.js';
import type { Logger } from '../observability/logger.js';
import { isTeleportError, type AccessRequest, type TeleportApi } from '../teleport/api.js';
import type { RelayMetrics } from './metrics.js';
import { errorText, POST_PROPS, type RelayTuning, type WorkItem } from './reconcile.js';
import { configuredRecipients } from './recipients.js';
import type { RecipientResolver } from './resolver.js';
import { AbortedError, sleep, withRetry } from './retry.js';
import type { RuleStore } from './rules.js';

export interface CatchUpDeps {
  teleport: TeleportApi;
  mattermost: MattermostApi;
  resolver: RecipientResolver;
  rules: RuleStore;
  logger: Logger;
  metrics: RelayMetrics;
  tuning: RelayTuning;
  config: () => PluginConfig;
  /** Queues work; the catch-up reads `known` to find deletions. */
  enqueue: (id: string, item: WorkItem) => void;
  known: ReadonlySet<string>;
}

export class CatchUp {
  private first = true;
  private rulesUnsupportedSaid = false;
  running = false;

  constructor(private readonly deps: CatchUpDeps) {}

  async run(signal: AbortSignal): Promise<void> {
    this.running = true;
    try {
      await this.pass(signal);
    } finally {
      this.running = false;
    }
  }

  private async pass(signal: AbortSignal): Promise<void> {
    const { logger, enqueue } = this.deps;
    this.deps.metrics.catchUps.inc();
    await this.listRules(signal);
    const requests = await this.listRequests(signal);
    const present = new Set(requests.map((r) => r.id));
    for (const request of requests) enqueue(request.id, { kind: 'put', request, origin: 'catchup' });
    const deleted = [...this.deps.known].filter((id) => !present.has(id));
    if (this.first) {
      try {
        for (const id of await this.scanChannels(present, signal))
          if (!deleted.includes(id)) deleted.push(id);
        this.first = false;
      } catch (err) {
        if (err instanceof AbortedError) throw err;
        logger.warn(
          'Catch-up could not look for requests deleted while stopped; trying again on the next pass',
          {
            error: errorText(err),
          },
        );
      }
    }
    for (const id of deleted) enqueue(id, { kind: 'delete', origin: 'catchup' });
    logger.info('Catch-up queued', { requests: requests.length, deleted: deleted.length });
  }

  private async listRules(signal: AbortSignal): Promise<void> {
    const { teleport, tuning } = this.deps;
    try {
      const list = await withRetry(() => teleport.listAccessMonitoringRules(PLUGIN_NAME), tuning.retry, {
        signal,
      });
      this.deps.rules.replaceAll(list);
    } catch (err) {
      if (err instanceof AbortedError) throw err;
      if (isTeleportError(err, 'NotImplemented')) {
        // A Teleport without Access Monitoring Rules (before 16): say it once, not on every catch-up.
        if (!this.rulesUnsupportedSaid) {
          this.rulesUnsupportedSaid = true;
          this.deps.logger.info(
            'This Teleport has no Access Monitoring Rules; routing uses role_to_recipients',
          );
        }
        return;
      }
      this.deps.logger.warn('Could not list access monitoring rules; using the ones known so far', {
        error: errorText(err),
      });
    }
  }

  /** Retries until it works: without the list, neither new requests nor deletions can be known. */
  private async listRequests(signal: AbortSignal): Promise<AccessRequest[]> {
    const { teleport, tuning } = this.deps;
    for (;;) {
      try {
        return await withRetry(() => teleport.listAccessRequests(), tuning.retry, { signal });
      } catch (err) {
        if (err instanceof AbortedError) throw err;
        this.deps.logger.warn('Catch-up could not list access requests; retrying', { error: errorText(err) });
        await sleep(tuning.requeue.maxDelayMs, signal);
      }
    }
  }

  /** Finds our root posts in the configured channels: requests deleted while we were down. */
  private async scanChannels(present: Set<string>, signal: AbortSignal): Promise<string[]> {
    const { tuning, logger } = this.deps;
    const since = Date.now() - tuning.catchUpWindowMs;
    const missing = new Set<string>();
    const wanted = configuredRecipients(this.deps.config().roleToRecipients);
    const recipients = await this.deps.resolver.resolveAll(wanted, signal);
    for (const r of recipients) {
      try {
        const mattermost = this.deps.mattermost;
        const posts = await withRetry(() => mattermost.listPostsSince(r.channelId, since), tuning.retry, {
          signal,
        });
        for (const p of posts) {
          const id = p.props[POST_PROPS.requestId];
          if (p.rootId === '' && typeof id === 'string' && p.props[POST_PROPS.kind] === 'request') {
            if (!present.has(id)) missing.add(id);
          }
        }
      } catch (err) {
        if (err instanceof AbortedError) throw err;
        logger.warn('Catch-up could not read a channel; deletions there are noticed on the next pass', {
          channel: r.channelId,
          error: errorText(err),
        });
      }
    }
    return [...missing];
  }
}
