// The watcher (`teleport-mattermost start`): wires Teleport's watch to the reconciler through the
// keyed queue, runs catch-up on every INIT, serves /healthz, /readyz and /metrics, and handles reload
// and graceful stop. Start-up checks are in startup.ts, readiness in readiness.ts, catch-up in
// catchup.ts; the per-request logic and the crash-safety design are in reconcile.ts.
import type { MattermostConfig, PluginConfig } from '../config/types.js';
import type { MattermostApi } from '../mattermost/api.js';
import { startHealthServer, type HealthServer } from '../observability/http.js';
import type { Logger } from '../observability/logger.js';
import type { TeleportApi } from '../teleport/api.js';
import { CatchUp } from './catchup.js';
import { runEventLoop } from './events.js';
import { createRelayMetrics, type RelayMetrics } from './metrics.js';
import { KeyedQueue } from './queue.js';
import { mattermostStateOf, probeMattermost, Readiness } from './readiness.js';
import {
  Reconciler,
  RetryLaterError,
  errorText,
  mergeTuning,
  mergeWork,
  type RelayTuning,
  type WorkItem,
} from './reconcile.js';
import { configuredRecipients } from './recipients.js';
import { RefusalRegistry } from './refusals.js';
import { RecipientResolver } from './resolver.js';
import { sleep } from './retry.js';
import { RuleStore } from './rules.js';
import { clientSettingsChanged, SwappableMattermost, TokenRotation } from './token.js';
import { checkMattermost, checkTeleport, connectMattermost, connectTeleportWithRetry } from './startup.js';
import type { ClusterInfo } from './view.js';
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
  /** Where the relay's parts report their state; /readyz reads it. */
  readiness: Readiness;
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
  /** Builds a client for new [mattermost] settings (a rotated token); default: the real client. */
  mattermostFactory?: (cfg: MattermostConfig) => MattermostApi | Promise<MattermostApi>;
  tuning?: Partial<RelayTuning>;
  /** Test seams of native reviews (operator/review). */
  review?: ReviewOverrides;
}

const DEFAULT_STOP_TIMEOUT_MS = 15_000;

/** A Teleport client that may know when its identity expires (operator/teleport/client.ts does). */
interface MaybeIdentityExpiry {
  identityExpiry?: () => Date | undefined;
}

interface Clients {
  teleport: TeleportApi;
  mattermost: MattermostApi;
  ownsTeleport: boolean;
}

async function connectClients(config: PluginConfig, logger: Logger, deps: WatcherDeps): Promise<Clients> {
  const teleport = deps.teleport ?? (await connectTeleportWithRetry(config, logger));
  try {
    const mattermost = deps.mattermost ?? (await connectMattermost(config, logger));
    return { teleport, mattermost, ownsTeleport: deps.teleport === undefined };
  } catch (err) {
    if (deps.teleport === undefined) teleport.close();
    throw err;
  }
}

/** The keyed queue of requests: one reconcile at a time per request, re-queued with backoff. */
function requestQueue(
  reconciler: Reconciler,
  tuning: RelayTuning,
  metrics: RelayMetrics,
  logger: Logger,
  readiness: Readiness,
): KeyedQueue<WorkItem> {
  return new KeyedQueue<WorkItem>({
    concurrency: tuning.concurrency,
    requeue: tuning.requeue,
    merge: mergeWork,
    handler: (key, item, signal) => reconciler.reconcile(key, item, signal),
    onRequeue: (key, err, attempt, delayMs) => {
      metrics.requeues.inc();
      // Failures outside the reconciler's own calls (recipient lookups) say as much about Mattermost.
      const state = mattermostStateOf(err);
      if (state && state !== 'ok') readiness.setMattermost(state);
      const fields = { request_id: key, attempt, retry_in_ms: delayMs, error: errorText(err) };
      if (err instanceof RetryLaterError || attempt < 3) logger.info('Request re-queued', fields);
      else logger.warn('Request re-queued', fields);
    },
    onDone: (_key, firstQueuedAt) => metrics.deliveryLatency.observe((Date.now() - firstQueuedAt) / 1000),
    onDepth: (depth) => metrics.queueDepth.set(depth),
  });
}

interface PipelineDeps {
  teleport: TeleportApi;
  mattermost: MattermostApi;
  logger: Logger;
  metrics: RelayMetrics;
  refusals: RefusalRegistry;
  readiness: Readiness;
  tuning: RelayTuning;
  config: () => PluginConfig;
  cluster: () => ClusterInfo;
}

/** Rules, recipient lookups, the reconciler behind the request queue, and the catch-up that feeds it. */
function buildPipeline(d: PipelineDeps) {
  const { teleport, mattermost, logger, metrics, tuning } = d;
  const rules = new RuleStore(logger);
  const resolver = new RecipientResolver(mattermost, logger, {
    ttlMs: tuning.recipientCacheTtlMs,
    retry: tuning.retry,
    onRetry: () => metrics.retries.inc({ operation: 'resolve_recipient' }),
    refusals: d.refusals,
  });
  const reconciler = new Reconciler({
    teleport,
    mattermost,
    logger,
    metrics,
    resolver,
    rules: () => rules.values(),
    config: d.config,
    cluster: d.cluster,
    tuning,
    reachability: (state) => d.readiness.setMattermost(state),
  });
  /** Requests seen since start: after a reconnect, the ones missing from the list were deleted. */
  const known = new Set<string>();
  const queue = requestQueue(reconciler, tuning, metrics, logger, d.readiness);
  d.readiness.onRecovered = () => queue.retryNow();
  const enqueue = (id: string, item: WorkItem) => {
    if (item.kind === 'put') known.add(id);
    else known.delete(id);
    queue.push(id, item);
  };
  const catchUp = new CatchUp({
    teleport,
    mattermost,
    resolver,
    rules,
    logger,
    metrics,
    tuning,
    config: d.config,
    enqueue,
    known,
  });
  return { rules, resolver, queue, enqueue, catchUp };
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
  const readiness = new Readiness(logger, metrics, tuning.readyGraceMs);
  // Recipients Mattermost refuses for good: shown in /readyz detail, without making the relay unready.
  const refusals = new RefusalRegistry(logger, metrics);
  readiness.addNote(() => refusals.detail());
  const health: HealthServer = await startHealthServer({
    listenAddr: config.http.listenAddr,
    registry: metrics.registry,
    ready: readiness.ready,
    detail: readiness.detail,
  });

  let clients: Clients;
  try {
    clients = await connectClients(config, logger, deps);
  } catch (err) {
    await health.close();
    throw err;
  }
  const { teleport, ownsTeleport } = clients;
  const mattermost = new SwappableMattermost(clients.mattermost);
  const identity = teleport as TeleportApi & MaybeIdentityExpiry;
  const updateIdentityExpiry = () => {
    const expiry = identity.identityExpiry?.();
    if (expiry) metrics.identityExpiry.set(expiry.getTime() / 1000);
  };
  updateIdentityExpiry();

  let review: ReviewListener | undefined;
  try {
    review = await startReview(() => config, teleport, logger, deps.review, metrics.registry);
  } catch (err) {
    if (ownsTeleport) teleport.close();
    await health.close();
    throw err;
  }

  const release = async () => {
    stopController.abort();
    await review?.close();
    if (ownsTeleport) teleport.close();
    await health.close();
  };

  // Start-up checks: Teleport first (cluster features), then Mattermost (token).
  let cluster: ClusterInfo;
  try {
    cluster = await checkTeleport(teleport, tuning, logger);
    readiness.setMattermost(await checkMattermost(mattermost, config, tuning, logger));
  } catch (err) {
    await release();
    throw err;
  }

  const { rules, resolver, queue, enqueue, catchUp } = buildPipeline({
    teleport,
    mattermost,
    logger,
    metrics,
    refusals,
    readiness,
    tuning,
    config: () => config,
    cluster: () => cluster,
  });

  // Warn early about configured recipients that do not resolve (each once).
  void resolver.resolveAll(configuredRecipients(config.roleToRecipients), stopController.signal).catch(() => {
    // Mattermost unreachable: the same warnings come when the first request is posted.
  });
  void probeMattermost(
    mattermost,
    readiness,
    tuning.probeIntervalMs,
    updateIdentityExpiry,
    stopController.signal,
  );
  void refusals.recheckLoop(tuning.refusalRecheckMs, stopController.signal);

  // A new token (SIGHUP or the token file): a new client, swapped in; readiness follows its answer.
  const rotation = new TokenRotation({
    mattermost,
    readiness,
    logger,
    onSwap: () => resolver.clear(),
    factory:
      deps.mattermostFactory ??
      (deps.mattermost === undefined
        ? (cfg) => connectMattermost({ ...config, mattermost: cfg }, logger)
        : undefined),
  });
  rotation.watchFile(config.mattermost, (token) => {
    config = { ...config, mattermost: { ...config.mattermost, token } };
    return config.mattermost;
  });

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
    rotation.close();
    await release();
    if (err) rejectDone(err);
    else resolveDone();
  };

  const loopDeps = { teleport, catchUp, rules, readiness, logger, metrics, enqueue };
  const watchDone = runEventLoop(loopDeps, stopController.signal).then(
    () => undefined,
    async (err: unknown) => {
      logger.error('Watcher event loop failed', { error: errorText(err) });
      queue.abandon();
      await finish(err);
    },
  );

  return watcherHandle({
    readiness,
    metrics,
    httpPort: health.port,
    ...(review ? { reviewPort: review.port } : {}),
    done,
    queue,
    catchUp,
    resolver,
    rotation,
    logger,
    stopController,
    watchDone,
    finish,
    config: () => config,
    setConfig: (next) => (config = next),
  });
}

/** What the handle of a running watcher works with. */
interface Running {
  readiness: Readiness;
  metrics: RelayMetrics;
  httpPort: number;
  done: Promise<void>;
  queue: KeyedQueue<WorkItem>;
  catchUp: CatchUp;
  resolver: RecipientResolver;
  rotation: TokenRotation;
  logger: Logger;
  stopController: AbortController;
  watchDone: Promise<void>;
  finish: (err?: unknown) => Promise<void>;
  config: () => PluginConfig;
  setConfig: (next: PluginConfig) => void;
}

/** Reload (SIGHUP), graceful stop (SIGTERM), and the test hooks. */
function watcherHandle(r: Running): WatcherInternals {
  const { readiness, queue, resolver, logger } = r;
  let stopPromise: Promise<void> | undefined;
  return {
    ready: readiness.ready,
    readiness,
    metrics: r.metrics,
    httpPort: r.httpPort,
    done: r.done,
    async reload(next: PluginConfig) {
      const newClient = clientSettingsChanged(r.config().mattermost, next.mattermost);
      r.setConfig(next);
      if (newClient) await r.rotation.swap(next.mattermost);
      resolver.clear();
      logger.level = next.log.severity;
      await resolver
        .resolveAll(configuredRecipients(next.roleToRecipients), r.stopController.signal)
        .catch((err: unknown) =>
          logger.warn('Could not check the new recipients yet', { error: errorText(err) }),
        );
    },
    stop(timeoutMs = DEFAULT_STOP_TIMEOUT_MS) {
      stopPromise ??= (async () => {
        readiness.setStopping();
        r.stopController.abort();
        await r.watchDone;
        const inTime = await queue.stop(timeoutMs);
        if (!inTime) logger.warn('Stopped before in-flight work finished; it is caught up on the next start');
        await r.finish();
      })();
      return stopPromise;
    },
    async idle() {
      // Settled = initialised, no catch-up running, and an empty queue seen twice a little apart
      // (events already emitted may still be on their way through the watch stream).
      for (let quiet = 0; quiet < 2;) {
        await sleep(15);
        if (!readiness.watchUp || r.catchUp.running || queue.depth > 0) {
          quiet = 0;
          await queue.idle();
        } else {
          quiet++;
        }
      }
    },
    abandon() {
      readiness.setStopping();
      queue.abandon();
      void r.finish();
    },
  };
}
