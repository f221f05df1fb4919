// The operator process: informers (reflectors) feed keys into the work queue, N workers run the
// level-triggered Reconciler, a Lease elects the single writer, and /healthz /readyz /metrics are served.
//
// Event sources only enqueue keys:
// - a MattermostAccessPlugin: its own key, on create/delete and on changes to generation, labels,
//   annotations or deletionTimestamp (status-only updates, including our own, are ignored);
// - an owned Deployment or ConfigMap: the key of its controller owner reference;
// - a Secret: every CR that references it (an in-memory index Secret -> CRs, kept from the CR cache);
// - a resync timer: every CR, so missed events and wiped status heal.
import { hostname } from 'node:os';
import {
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesObject,
  type V1ConfigMap,
  type V1Deployment,
  type V1Secret,
  type V1Service,
} from '@kubernetes/client-node';
import { startHealthServer, type HealthServer } from '../observability/http.js';
import type { Logger } from '../observability/logger.js';
import {
  BACKOFF_BASE_MS,
  BACKOFF_MAX_MS,
  DEFAULT_LEASE_NAME,
  DEFAULT_RESYNC_MS,
  DEFAULT_WORKERS,
  GLOBAL_BURST,
  GLOBAL_QPS,
  GROUP,
  KIND,
  LABEL_MANAGED_BY,
  LEASE_DURATION_S,
  LEASE_RENEW_MS,
  MANAGED_BY,
  PLURAL,
  VERSION,
} from './defaults.js';
import { shareConnections } from './connections.js';
import { NotLeaderError } from './errors.js';
import { KubeClusterWriter } from './kube.js';
import { loadKubeConfig } from './kubeconfig.js';
import { LeaderElector } from './leader.js';
import { createMetrics, type OperatorMetrics } from './metrics.js';
import { Reconciler } from './reconciler.js';
import { reviewKeyRef } from './review.js';
import { objectKey, Reflector, type ListResult } from './reflector.js';
import { WorkQueue } from './queue.js';
import type { MattermostAccessPlugin } from './types.js';
import { packageVersion } from '../version.js';

export interface OperatorOptions {
  kubeConfig?: KubeConfig;
  /** undefined = all namespaces. */
  namespace?: string;
  metricsAddr: string;
  leaderElect: boolean;
  leaseName?: string;
  leaseNamespace?: string;
  /** This replica's identity in the Lease (default: hostname + random suffix). */
  identity?: string;
  watcherImage: string;
  resyncMs?: number;
  workers?: number;
}

export interface OperatorHandle {
  stop(): Promise<void>;
  isLeader(): boolean;
  /** undefined when ready, else why not. */
  ready(): string | undefined;
  /** The port /metrics is served on (useful with metricsAddr ':0'). */
  readonly metricsPort: number;
  readonly metrics: OperatorMetrics;
}

/** The Secrets a CR reads, as "namespace/name" keys. */
export function referencedSecrets(cr: MattermostAccessPlugin): string[] {
  const ns = cr.metadata.namespace;
  const names = [
    cr.spec?.teleport?.identitySecretRef?.name,
    cr.spec?.mattermost?.tokenSecretRef?.name,
    cr.spec?.mattermost?.caSecretRef?.name,
    cr.spec?.review?.enabled ? reviewKeyRef(cr).name : undefined,
  ].filter((n): n is string => !!n);
  return [...new Set(names)].map((n) => `${ns}/${n}`);
}

/** True when an update of a CR should trigger a reconcile (not for status-only changes). */
export function specChanged(old: KubernetesObject | undefined, cur: KubernetesObject): boolean {
  if (!old) return true;
  const a = old.metadata ?? {};
  const b = cur.metadata ?? {};
  return (
    a.generation !== b.generation ||
    JSON.stringify(a.labels ?? {}) !== JSON.stringify(b.labels ?? {}) ||
    JSON.stringify(a.annotations ?? {}) !== JSON.stringify(b.annotations ?? {}) ||
    String(a.deletionTimestamp ?? '') !== String(b.deletionTimestamp ?? '')
  );
}

function ownerKey(obj: KubernetesObject): string | undefined {
  const ref = obj.metadata?.ownerReferences?.find(
    (r) => r.controller && r.kind === KIND && r.apiVersion.startsWith(`${GROUP}/`),
  );
  return ref ? `${obj.metadata?.namespace}/${ref.name}` : undefined;
}

export async function runOperator(opts: OperatorOptions, logger: Logger): Promise<OperatorHandle> {
  const kc = opts.kubeConfig ?? loadKubeConfig();
  const ns = opts.namespace;
  const connections = shareConnections(kc);
  const core = kc.makeApiClient(CoreV1Api);
  const apps = kc.makeApiClient(AppsV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);

  const queue = new WorkQueue({
    baseMs: BACKOFF_BASE_MS,
    maxMs: BACKOFF_MAX_MS,
    qps: GLOBAL_QPS,
    burst: GLOBAL_BURST,
  });
  const metrics = createMetrics(() => queue.len());
  const secretIndex = new Map<string, Set<string>>();
  const secretsOf = new Map<string, string[]>();
  let leader = !opts.leaderElect;
  metrics.leader.set(leader ? 1 : 0);

  const enqueue = (key: string | undefined) => {
    if (key && leader) queue.add(key);
  };
  const indexPlugin = (cr: MattermostAccessPlugin, present: boolean) => {
    const key = objectKey(cr);
    for (const s of secretsOf.get(key) ?? []) secretIndex.get(s)?.delete(key);
    secretsOf.delete(key);
    if (!present) return;
    const refs = referencedSecrets(cr);
    secretsOf.set(key, refs);
    for (const s of refs) {
      if (!secretIndex.has(s)) secretIndex.set(s, new Set());
      secretIndex.get(s)!.add(key);
    }
  };

  const nsPath = ns ? `/namespaces/${ns}` : '';
  const managedSelector = `${LABEL_MANAGED_BY}=${MANAGED_BY}`;
  const restart = (kind: string) => (reason: string) => metrics.watchRestarts.inc({ kind, reason });

  const plugins = new Reflector<MattermostAccessPlugin>({
    kind: KIND,
    kubeConfig: kc,
    path: `/apis/${GROUP}/${VERSION}${nsPath}/${PLURAL}`,
    list: async () =>
      (ns
        ? await custom.listNamespacedCustomObject({
            group: GROUP,
            version: VERSION,
            namespace: ns,
            plural: PLURAL,
          })
        : await custom.listCustomObjectForAllNamespaces({
            group: GROUP,
            version: VERSION,
            resourcePlural: PLURAL,
          })) as ListResult<MattermostAccessPlugin>,
    handlers: {
      onUpsert: (cr, old) => {
        indexPlugin(cr, true);
        if (specChanged(old, cr)) enqueue(objectKey(cr));
      },
      onDelete: (cr) => {
        indexPlugin(cr, false);
        enqueue(objectKey(cr));
      },
    },
    logger,
    onRestart: restart('MattermostAccessPlugin'),
  });
  const ownedHandlers = {
    onUpsert: (obj: KubernetesObject) => enqueue(ownerKey(obj)),
    onDelete: (obj: KubernetesObject) => enqueue(ownerKey(obj)),
  };
  const deployments = new Reflector<V1Deployment>({
    kind: 'Deployment',
    kubeConfig: kc,
    path: `/apis/apps/v1${nsPath}/deployments`,
    labelSelector: managedSelector,
    list: () =>
      ns
        ? apps.listNamespacedDeployment({ namespace: ns, labelSelector: managedSelector })
        : apps.listDeploymentForAllNamespaces({ labelSelector: managedSelector }),
    handlers: ownedHandlers,
    logger,
    onRestart: restart('Deployment'),
  });
  const configMaps = new Reflector<V1ConfigMap>({
    kind: 'ConfigMap',
    kubeConfig: kc,
    path: `/api/v1${nsPath}/configmaps`,
    labelSelector: managedSelector,
    list: () =>
      ns
        ? core.listNamespacedConfigMap({ namespace: ns, labelSelector: managedSelector })
        : core.listConfigMapForAllNamespaces({ labelSelector: managedSelector }),
    handlers: ownedHandlers,
    logger,
    onRestart: restart('ConfigMap'),
  });
  const services = new Reflector<V1Service>({
    kind: 'Service',
    kubeConfig: kc,
    path: `/api/v1${nsPath}/services`,
    labelSelector: managedSelector,
    list: () =>
      ns
        ? core.listNamespacedService({ namespace: ns, labelSelector: managedSelector })
        : core.listServiceForAllNamespaces({ labelSelector: managedSelector }),
    handlers: ownedHandlers,
    logger,
    onRestart: restart('Service'),
  });
  const secretHandler = (s: V1Secret) => {
    for (const key of secretIndex.get(objectKey(s)) ?? []) enqueue(key);
  };
  const secrets = new Reflector<V1Secret>({
    kind: 'Secret',
    kubeConfig: kc,
    path: `/api/v1${nsPath}/secrets`,
    list: () => (ns ? core.listNamespacedSecret({ namespace: ns }) : core.listSecretForAllNamespaces({})),
    handlers: { onUpsert: secretHandler, onDelete: secretHandler },
    logger,
    onRestart: restart('Secret'),
  });

  const isLeader = () => leader;
  const writer = new KubeClusterWriter(kc, {
    isLeader,
    writes: metrics.apiWrites,
    observeConfigMap: (o) => configMaps.observe(o),
    observeDeployment: (o) => deployments.observe(o),
    observeService: (o) => services.observe(o),
    observeSecret: (o) => secrets.observe(o),
    observePlugin: (o) => plugins.observe(o),
  });
  const reconciler = new Reconciler({
    reader: {
      getPlugin: (n, name) => plugins.get(n, name),
      getSecret: (n, name) => secrets.get(n, name),
      getDeployment: (n, name) => deployments.get(n, name),
      getConfigMap: (n, name) => configMaps.get(n, name),
      getService: (n, name) => services.get(n, name),
    },
    writer,
    defaultImage: opts.watcherImage,
    version: packageVersion(),
    logger,
  });

  const enqueueAll = () => {
    for (const cr of plugins.list()) enqueue(objectKey(cr));
  };

  // Workers: one key at a time each; the queue guarantees a key is never in two workers.
  let stopping = false;
  const worker = async () => {
    for (;;) {
      const key = await queue.get();
      if (key === undefined) return;
      const end = metrics.reconcileDuration.startTimer();
      try {
        const result = await reconciler.reconcile(key);
        queue.forget(key);
        if (result.requeueAfterMs !== undefined) {
          metrics.reconciles.inc({ result: 'requeue_after' });
          queue.addAfter(key, result.requeueAfterMs);
        } else {
          metrics.reconciles.inc({ result: 'success' });
        }
      } catch (err) {
        if (err instanceof NotLeaderError) {
          metrics.reconciles.inc({ result: 'not_leader' });
        } else {
          metrics.reconciles.inc({ result: 'error' });
          metrics.reconcileErrors.inc();
          const delay = queue.nextBackoff(key);
          logger.error('Failed to reconcile MattermostAccessPlugin', {
            key,
            error: (err as Error).message,
            retry_in_ms: delay,
          });
          queue.addAfter(key, delay);
        }
      } finally {
        end();
        queue.done(key);
      }
    }
  };

  await Promise.all([
    plugins.start(),
    deployments.start(),
    configMaps.start(),
    secrets.start(),
    services.start(),
  ]);
  logger.info('Caches synced', {
    namespace: ns ?? '(all)',
    plugins: plugins.list().length,
    deployments: deployments.list().length,
  });

  const workerCount = opts.workers ?? DEFAULT_WORKERS;
  const workers = Array.from({ length: workerCount }, () => worker());
  const resync = setInterval(enqueueAll, opts.resyncMs ?? DEFAULT_RESYNC_MS);
  resync.unref();

  let elector: LeaderElector | undefined;
  if (opts.leaderElect) {
    elector = new LeaderElector(
      custom,
      {
        name: opts.leaseName ?? DEFAULT_LEASE_NAME,
        namespace: opts.leaseNamespace ?? ns ?? process.env.POD_NAMESPACE ?? 'default',
        identity: opts.identity ?? `${hostname()}_${Math.random().toString(36).slice(2, 10)}`,
        leaseDurationS: LEASE_DURATION_S,
        renewMs: LEASE_RENEW_MS,
      },
      {
        onStartedLeading: () => {
          leader = true;
          metrics.leader.set(1);
          enqueueAll();
        },
        onStoppedLeading: () => {
          leader = false;
          metrics.leader.set(0);
        },
        onWrite: (verb) => metrics.apiWrites.inc({ resource: 'leases', verb }),
      },
      logger,
    );
    elector.start();
  } else {
    enqueueAll();
  }

  const ready = (): string | undefined => {
    if (stopping) return 'stopping';
    for (const [name, r] of [
      ['MattermostAccessPlugin', plugins],
      ['Deployment', deployments],
      ['ConfigMap', configMaps],
      ['Secret', secrets],
    ] as const) {
      if (!r.hasSynced()) return `${name} cache not synced`;
    }
    return undefined;
  };
  let health: HealthServer | undefined;
  try {
    health = await startHealthServer({ listenAddr: opts.metricsAddr, registry: metrics.registry, ready });
  } catch (err) {
    for (const r of [plugins, deployments, configMaps, secrets, services]) r.stop();
    queue.shutdown();
    await elector?.stop();
    await connections.release();
    throw new Error(`cannot listen on --metrics-addr ${opts.metricsAddr}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  logger.info('Operator started', {
    metrics_port: health.port,
    leader_election: opts.leaderElect,
    workers: workerCount,
  });

  return {
    isLeader,
    ready,
    metricsPort: health.port,
    metrics,
    async stop() {
      if (stopping) return;
      stopping = true;
      clearInterval(resync);
      await elector?.stop();
      leader = false;
      for (const r of [plugins, deployments, configMaps, secrets, services]) r.stop();
      queue.shutdown();
      await Promise.all(workers);
      await health?.close();
      await connections.release();
      logger.info('Operator stopped');
    },
  };
}
