// The watcher (`teleport-mattermost start`): wires Teleport's watch to the reconciler through the
// keyed queue, runs catch-up on every INIT, serves /healthz, /readyz and /metrics, and handles reload
// and graceful stop. The per-request logic and the crash-safety design are in reconcile.ts.
import { PLUGIN_NAME } from '../config/defaults.js';
import type { PluginConfig } from '../config/types.js';
import { MattermostError, type MattermostApi } from '../mattermost/api.js';
import { maskUrl } from '../mattermost/connection.js';
import { startHealthServer, type HealthServer } from '../observability/http.js';
import type { Logger } from '../observability/logger.js';
import {
  isTeleportError,
  type AccessMonitoringRule,
  type AccessRequest,
  type TeleportApi,
  type WatchEvent,
} from '../teleport/api.js';
import { checkRuleCondition } from './amr.js';
import { createRelayMetrics, type RelayMetrics } from './metrics.js';
import { KeyedQueue } from './queue.js';
import {
  Reconciler,
  RetryLaterError,
  errorText,
  mergeTuning,
  mergeWork,
  POST_PROPS,
  type RelayTuning,
  type WorkItem,
} from './reconcile.js';
import { configuredRecipients, ruleAppliesToPlugin } from './recipients.js';
import { RefusalRegistry } from './refusals.js';
import { RecipientResolver } from './resolver.js';
import { AbortedError, backoffDelay, sleep, withRetry } from './retry.js';
import { clusterInfoFromPing, type ClusterInfo } from './view.js';
import { startReview, type ReviewListener, type ReviewOverrides } from '../review/index.js';

export interface WatcherHandle {
  /** undefined when ready, otherwise why not (the /readyz body). */
  ready(): string | undefined;
  /** SIGHUP: new recipients and log level; the watch keeps running. */
  reload(config: PluginConfig): Promise<void>;
  /** SIGTERM: stop taking events, finish in-flight work within the bound. */
  stop(timeoutMs?: number): Promise<void>;
  /** Settles when the watcher has stopped (rejects on a fatal error). */
  done: Promise<void>;
}

/** What tests and the demo can reach beyond the CLI's contract. */
export interface WatcherInternals extends WatcherHandle {
  metrics: RelayMetrics;
  /** The health listener's port (useful when listen_addr used port 0). */
  httpPort: number;
  /** The review click listener's port, when [review] is enabled. */
  reviewPort?: number;
  /** Resolves when the watch is initialised and no request has work left. */
  idle(): Promise<void>;
  /** Stops at once without finishing anything, like a crash (tests). */
  abandon(): void;
}

export interface WatcherDeps {
  teleport?: TeleportApi;
  mattermost?: MattermostApi;
  /** Test seams of native reviews (operator/review). */
  review?: ReviewOverrides;
  tuning?: Partial<RelayTuning>;
}

const DEFAULT_STOP_TIMEOUT_MS = 15_000;

/** A Teleport client that may know when its identity expires (operator/teleport/client.ts does). */
interface MaybeIdentityExpiry {
  identityExpiry?: () => Date | undefined;
}

// The real clients are loaded lazily: tests inject fakes and need neither the gRPC nor the HTTP stack.
// Teleport may be restarting while we start (or not reachable yet from a new pod): keep trying, with
// /readyz false meanwhile, rather than crash-looping. Bad credentials (IdentityError) stay fatal.
const CONNECT_RETRY = { baseDelayMs: 1_000, maxDelayMs: 30_000 };

async function defaultTeleport(config: PluginConfig, logger: Logger): Promise<TeleportApi> {
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

async function defaultMattermost(config: PluginConfig, logger: Logger): Promise<MattermostApi> {
  const { createMattermostClient } = await import('../mattermost/client.js');
  return createMattermostClient(config.mattermost, logger);
}

export async function runWatcher(
  initialConfig: PluginConfig,
  logger: Logger,
  deps: WatcherDeps = {},
): Promise<WatcherInternals> {
  let config = initialConfig;
  const tuning = mergeTuning(deps.tuning);
  const metrics = createRelayMetrics({ defaultMetrics: deps.teleport === undefined });
  const stopController = new AbortController();

  let watchInitialized = false;
  let mattermostReachable = false;
  let stopping = false;
  const ready = (): string | undefined => {
    if (stopping) return 'shutting down';
    if (!watchInitialized) return 'the Teleport watch is not initialised yet';
    if (!mattermostReachable) return 'Mattermost is not reachable';
    return undefined;
  };
  const refusals = new RefusalRegistry(logger, metrics);
  const health: HealthServer = await startHealthServer({
    listenAddr: config.http.listenAddr,
    registry: metrics.registry,
    ready,
    detail: () => refusals.detail(),
  });

  let teleport: TeleportApi;
  let mattermost: MattermostApi;
  try {
    teleport = deps.teleport ?? (await defaultTeleport(config, logger));
    mattermost = deps.mattermost ?? (await defaultMattermost(config, logger));
  } catch (err) {
    await health.close();
    throw err;
  }
  const ownsTeleport = deps.teleport === undefined;
  const identity = teleport as TeleportApi & MaybeIdentityExpiry;
  const updateIdentityExpiry = () => {
    const expiry = identity.identityExpiry?.();
    if (expiry) metrics.identityExpiry.set(expiry.getTime() / 1000);
  };
  updateIdentityExpiry();

  let review: ReviewListener | undefined;
  try {
    review = await startReview(() => config, teleport, logger, deps.review);
  } catch (err) {
    if (ownsTeleport) teleport.close();
    await health.close();
    throw err;
  }

  /** Set once the queue exists: when Mattermost answers again, waiting requests go at once. */
  let onRecovered: () => void = () => undefined;
  const setReachable = (ok: boolean) => {
    const changed = ok !== mattermostReachable;
    mattermostReachable = ok;
    metrics.mattermostReachable.set(ok ? 1 : 0);
    if (!changed) return;
    // The client logs the outage itself (one warning, one info line when back: mattermost/transport.ts).
    if (ok) {
      logger.debug('Mattermost is reachable');
      onRecovered();
    } else {
      logger.debug('Mattermost is not reachable; requests are kept and retried');
    }
  };

  const fail = async (err: unknown): Promise<never> => {
    stopController.abort();
    await review?.close();
    if (ownsTeleport) teleport.close();
    await health.close();
    throw err;
  };

  // Start-up checks: Teleport first (cluster features), then Mattermost (token).
  let cluster: ClusterInfo;
  try {
    const ping = await withRetry(() => teleport.ping(), {
      ...tuning.retry,
      budgetMs: tuning.startupBudgetMs,
    });
    cluster = clusterInfoFromPing(ping);
    logger.info('Connected to Teleport', {
      cluster: ping.clusterName,
      server_version: ping.serverVersion,
      advanced_workflows: ping.advancedAccessWorkflows,
    });
  } catch (err) {
    return fail(new Error(`Unable to get Teleport server version: ${errorText(err)}`, { cause: err }));
  }
  try {
    const me = await withRetry(() => mattermost.getMe(), {
      ...tuning.retry,
      budgetMs: tuning.startupBudgetMs,
    });
    setReachable(true);
    logger.info('Mattermost bot authenticated', { bot: me.username });
  } catch (err) {
    if (err instanceof MattermostError && !err.temporary) {
      return fail(
        new Error(
          err.kind === 'Unauthorized'
            ? `Mattermost rejected the bot token (${err.status ?? 'unauthorized'}): check [mattermost] token, and that the bot account is enabled`
            : `Mattermost API health check failed: ${err.message}`,
          { cause: err },
        ),
      );
    }
    // Unreachable: start anyway (not ready); requests are queued and delivered once it answers.
    setReachable(false);
    logger.warn('Mattermost API health check failed; will keep trying', {
      url: maskUrl(config.mattermost.url),
      error: errorText(err),
    });
  }

  const rules = new Map<string, AccessMonitoringRule>();
  const warnedRules = new Set<string>();
  const putRule = (rule: AccessMonitoringRule) => {
    if (!ruleAppliesToPlugin(rule, PLUGIN_NAME)) {
      rules.delete(rule.name);
      return;
    }
    const problem = checkRuleCondition(rule.condition);
    const key = `${rule.name}\u0000${rule.condition}`;
    if (problem && !warnedRules.has(key)) {
      warnedRules.add(key);
      logger.warn('Failed to parse access monitoring notification rule; it will be skipped', {
        rule: rule.name,
        condition: rule.condition,
        error: problem,
      });
    }
    rules.set(rule.name, rule);
  };

  const resolver = new RecipientResolver(mattermost, logger, {
    ttlMs: tuning.recipientCacheTtlMs,
    retry: tuning.retry,
    onRetry: () => metrics.retries.inc({ operation: 'resolve_recipient' }),
    refusals,
  });
  const reconciler = new Reconciler({
    teleport,
    mattermost,
    logger,
    metrics,
    resolver,
    rules: () => rules.values(),
    config: () => config,
    cluster: () => cluster,
    tuning,
    reachability: setReachable,
  });

  /** Requests seen since start: after a reconnect, the ones missing from the list were deleted. */
  const known = new Set<string>();
  const queue = new KeyedQueue<WorkItem>({
    concurrency: tuning.concurrency,
    requeue: tuning.requeue,
    merge: mergeWork,
    handler: (key, item, signal) => reconciler.reconcile(key, item, signal),
    onRequeue: (key, err, attempt, delayMs) => {
      metrics.requeues.inc();
      const fields = { request_id: key, attempt, retry_in_ms: delayMs, error: errorText(err) };
      if (err instanceof RetryLaterError || attempt < 3) logger.info('Request re-queued', fields);
      else logger.warn('Request re-queued', fields);
    },
    onDone: (_key, firstQueuedAt) => metrics.deliveryLatency.observe((Date.now() - firstQueuedAt) / 1000),
    onDepth: (depth) => metrics.queueDepth.set(depth),
  });
  onRecovered = () => queue.retryNow();
  const enqueue = (id: string, item: WorkItem) => {
    if (item.kind === 'put') known.add(id);
    else known.delete(id);
    queue.push(id, item);
  };

  /** Finds our root posts in the configured channels: requests deleted while we were down. */
  const scanChannels = async (present: Set<string>, signal: AbortSignal): Promise<string[]> => {
    const since = Date.now() - tuning.catchUpWindowMs;
    const missing = new Set<string>();
    const recipients = await resolver.resolveAll(configuredRecipients(config.roleToRecipients), signal);
    for (const r of recipients) {
      try {
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
  };

  let firstCatchUp = true;
  let catchUpRunning = false;
  const catchUp = async (signal: AbortSignal): Promise<void> => {
    catchUpRunning = true;
    try {
      await catchUpPass(signal);
    } finally {
      catchUpRunning = false;
    }
  };
  const catchUpPass = async (signal: AbortSignal): Promise<void> => {
    metrics.catchUps.inc();
    try {
      const list = await withRetry(() => teleport.listAccessMonitoringRules(PLUGIN_NAME), tuning.retry, {
        signal,
      });
      rules.clear();
      for (const rule of list) putRule(rule);
    } catch (err) {
      if (err instanceof AbortedError) throw err;
      logger.warn('Could not list access monitoring rules; using the ones known so far', {
        error: errorText(err),
      });
    }
    let requests: AccessRequest[];
    for (;;) {
      try {
        requests = await withRetry(() => teleport.listAccessRequests(), tuning.retry, { signal });
        break;
      } catch (err) {
        if (err instanceof AbortedError) throw err;
        logger.warn('Catch-up could not list access requests; retrying', { error: errorText(err) });
        await sleep(tuning.requeue.maxDelayMs, signal);
      }
    }
    const present = new Set(requests.map((r) => r.id));
    for (const request of requests) enqueue(request.id, { kind: 'put', request, origin: 'catchup' });
    const deleted = [...known].filter((id) => !present.has(id));
    if (firstCatchUp) {
      try {
        for (const id of await scanChannels(present, signal)) if (!deleted.includes(id)) deleted.push(id);
        firstCatchUp = false;
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
  };

  // Probe Mattermost while it is unreachable, so /readyz recovers even when there is nothing to post.
  const probe = async (signal: AbortSignal) => {
    while (!signal.aborted) {
      await sleep(tuning.probeIntervalMs, signal).catch(() => undefined);
      if (signal.aborted) return;
      updateIdentityExpiry();
      if (mattermostReachable) continue;
      try {
        await mattermost.getMe();
        setReachable(true);
      } catch (err) {
        if (err instanceof MattermostError && !err.temporary) setReachable(true);
      }
    }
  };

  const handleEvent = async (event: WatchEvent, signal: AbortSignal) => {
    metrics.events.inc({ type: event.type });
    switch (event.type) {
      case 'INIT':
        if (!watchInitialized) logger.info('Plugin is ready');
        else logger.info('Watch re-initialised; catching up');
        watchInitialized = true;
        metrics.watchInitialized.set(1);
        try {
          await catchUp(signal);
        } catch (err) {
          if (err instanceof AbortedError || signal.aborted) throw err;
          // Never fatal: events keep flowing, and the next INIT (or restart) catches up again.
          logger.error('Catch-up failed', { error: errorText(err) });
        }
        break;
      case 'PUT':
        logger.debug('Access request event', { request_id: event.request.id, state: event.request.state });
        enqueue(event.request.id, { kind: 'put', request: event.request, origin: 'event' });
        break;
      case 'DELETE':
        logger.debug('Access request deleted', { request_id: event.requestId });
        enqueue(event.requestId, { kind: 'delete', origin: 'event' });
        break;
      case 'RULE_PUT':
        putRule(event.rule);
        break;
      case 'RULE_DELETE':
        rules.delete(event.name);
        break;
    }
  };

  const watchLoop = async (): Promise<void> => {
    const signal = stopController.signal;
    try {
      for await (const event of teleport.watch(['access_request', 'access_monitoring_rule'], signal)) {
        if (signal.aborted) break;
        await handleEvent(event, signal);
      }
    } catch (err) {
      if (!signal.aborted && !(err instanceof AbortedError)) throw err;
    }
  };

  // Warn early about configured recipients that do not resolve (each once).
  void resolver.resolveAll(configuredRecipients(config.roleToRecipients), stopController.signal).catch(() => {
    // Mattermost unreachable: the same warnings come when the first request is posted.
  });
  void probe(stopController.signal);

  let resolveDone!: () => void;
  let rejectDone!: (err: unknown) => void;
  const done = new Promise<void>((resolve, reject) => {
    resolveDone = resolve;
    rejectDone = reject;
  });
  let finished = false;
  const finish = async (err?: unknown) => {
    if (finished) return;
    finished = true;
    stopController.abort();
    await review?.close();
    if (ownsTeleport) teleport.close();
    await health.close();
    if (err) rejectDone(err);
    else resolveDone();
  };

  const watchDone = watchLoop().then(
    () => undefined,
    async (err: unknown) => {
      logger.error('Watcher event loop failed', { error: errorText(err) });
      queue.abandon();
      await finish(err);
    },
  );

  let stopPromise: Promise<void> | undefined;
  const handle: WatcherInternals = {
    ready,
    metrics,
    httpPort: health.port,
    ...(review ? { reviewPort: review.port } : {}),
    done,
    async reload(next: PluginConfig) {
      config = next;
      resolver.clear();
      logger.level = next.log.severity;
      await resolver
        .resolveAll(configuredRecipients(next.roleToRecipients), stopController.signal)
        .catch((err: unknown) =>
          logger.warn('Could not check the new recipients yet', { error: errorText(err) }),
        );
    },
    stop(timeoutMs = DEFAULT_STOP_TIMEOUT_MS) {
      stopPromise ??= (async () => {
        stopping = true;
        stopController.abort();
        await watchDone;
        const inTime = await queue.stop(timeoutMs);
        if (!inTime) logger.warn('Stopped before in-flight work finished; it is caught up on the next start');
        await finish();
      })();
      return stopPromise;
    },
    async idle() {
      // Settled = initialised, no catch-up running, and an empty queue seen twice a little apart
      // (events already emitted may still be on their way through the watch stream).
      for (let quiet = 0; quiet < 2;) {
        await sleep(15);
        if (!watchInitialized || catchUpRunning || queue.depth > 0) {
          quiet = 0;
          await queue.idle();
        } else {
          quiet++;
        }
      }
    },
    abandon() {
      stopping = true;
      queue.abandon();
      void finish();
    },
  };
  return handle;
}
