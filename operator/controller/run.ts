// The operator process: informers (reflectors) feed keys into the work queue, N workers run the
// level-triggered Reconciler, a Lease elects the single writer, and /healthz /readyz /metrics are served.
//
// Event sources only enqueue keys:
// - a MattermostAccessPlugin: its own key, on create/delete and on changes to generation, labels,
//   annotations or deletionTimestamp (status-only updates, including our own, are ignored);
// - an owned Deployment or ConfigMap (the watcher's or tbot's), or tbot's ServiceAccount, Role or
//   RoleBinding: the key of its controller owner reference;
// - a Secret: every CR that references it (an in-memory index Secret -> CRs, kept from the CR cache);
// - a resync timer: every CR, so missed events and wiped status heal.
//
// Memory: every cache is trimmed (reflector.ts), and Secrets are watched as metadata only; the data of the
// Secrets a CR references is fetched just before its reconcile (secrets.ts), so unrelated Secrets, however
// many and large, cost one small watch event each and are never kept.
import { hostname } from 'node:os';
import type {
  V1ConfigMap,
  V1Deployment,
  V1Role,
  V1RoleBinding,
  V1ServiceAccount,
  V1Service,
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
import { NotLeaderError } from './errors.js';
import { KubeClusterWriter } from './kube.js';
import { KubeApi, type KubeConfigLike } from './kubeapi.js';
import { LeaderElector } from './leader.js';
import { createMetrics, type CacheStats, type OperatorMetrics } from './metrics.js';
import { Reconciler } from './reconciler.js';
import { reviewKeyRef } from './review.js';
import { objectKey, Reflector, type KubernetesObject, type ListResult } from './reflector.js';
import { ReferencedSecrets } from './secrets.js';
import { WorkQueue } from './queue.js';
import { withTbotDefaults, type TbotOwnedKind } from './tbot.js';
import type { MattermostAccessPlugin } from './types.js';
import { packageVersion } from '../version.js';

export interface OperatorOptions {
  /** Connection settings (a @kubernetes/client-node KubeConfig fits); default in-cluster / $KUBECONFIG. */
  kubeConfig?: KubeConfigLike;
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
export function referencedSecrets(raw: MattermostAccessPlugin): string[] {
  const cr = raw.spec?.teleport ? withTbotDefaults(raw) : raw;
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

const PARTIAL_METADATA = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1';
const PARTIAL_METADATA_LIST = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1';

function ownerKey(obj: KubernetesObject): string | undefined {
  const ref = obj.metadata?.ownerReferences?.find(
    (r) => r.controller && r.kind === KIND && r.apiVersion.startsWith(`${GROUP}/`),
  );
  return ref ? `${obj.metadata?.namespace}/${ref.name}` : undefined;
}

export async function runOperator(opts: OperatorOptions, logger: Logger): Promise<OperatorHandle> {
  const api = await KubeApi.create(opts.kubeConfig);
  const ns = opts.namespace;

  const queue = new WorkQueue({
    baseMs: BACKOFF_BASE_MS,
    maxMs: BACKOFF_MAX_MS,
    qps: GLOBAL_QPS,
    burst: GLOBAL_BURST,
  });
  const caches: { stats?: CacheStats } = {}; // filled once the caches exist
  const metrics = createMetrics(
    () => queue.len(),
    () => caches.stats,
  );
  const secretIndex = new Map<string, Set<string>>();
  const secretsOf = new Map<string, string[]>();
  let leader = !opts.leaderElect;
  metrics.leader.set(leader ? 1 : 0);

  const enqueue = (key: string | undefined) => {
    if (key && leader) queue.add(key);
  };
  const secretData = new ReferencedSecrets(api, (key) => secretIndex.has(key));
  /** Keeps secretIndex in step with a CR; a Secret's data is dropped once no CR references it. */
  const indexPlugin = (cr: MattermostAccessPlugin, present: boolean) => {
    const key = objectKey(cr);
    const refs = present ? referencedSecrets(cr) : [];
    for (const s of secretsOf.get(key) ?? []) {
      if (refs.includes(s)) continue;
      const users = secretIndex.get(s);
      users?.delete(key);
      if (users?.size === 0) {
        secretIndex.delete(s);
        secretData.release(s);
      }
    }
    if (!present) return void secretsOf.delete(key);
    secretsOf.set(key, refs);
    for (const s of refs) {
      if (!secretIndex.has(s)) secretIndex.set(s, new Set());
      secretIndex.get(s)!.add(key);
    }
  };

  const nsPath = ns ? `/namespaces/${ns}` : '';
  const managedSelector = `${LABEL_MANAGED_BY}=${MANAGED_BY}`;
  const restart = (kind: string) => (reason: string) => metrics.watchRestarts.inc({ kind, reason });

  const list =
    <T>(path: string, labelSelector?: string, accept?: string) =>
    () =>
      api.request<ListResult<T>>('GET', path, { query: { labelSelector }, accept });
  const pluginsPath = `/apis/${GROUP}/${VERSION}${nsPath}/${PLURAL}`;
  const plugins = new Reflector<MattermostAccessPlugin>({
    kind: KIND,
    api,
    path: pluginsPath,
    list: list(pluginsPath),
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
  const deploymentsPath = `/apis/apps/v1${nsPath}/deployments`;
  const deployments = new Reflector<V1Deployment>({
    kind: 'Deployment',
    api,
    path: deploymentsPath,
    labelSelector: managedSelector,
    list: list(deploymentsPath, managedSelector),
    handlers: ownedHandlers,
    logger,
    onRestart: restart('Deployment'),
  });
  const configMapsPath = `/api/v1${nsPath}/configmaps`;
  const configMaps = new Reflector<V1ConfigMap>({
    kind: 'ConfigMap',
    api,
    path: configMapsPath,
    labelSelector: managedSelector,
    list: list(configMapsPath, managedSelector),
    handlers: ownedHandlers,
    logger,
    onRestart: restart('ConfigMap'),
  });
  // tbot's ServiceAccount, Role and RoleBinding (spec.teleport.tbot), label-selected like the others.
  const tbotReflector = <T extends KubernetesObject>(kind: string, path: string) =>
    new Reflector<T>({
      kind,
      api,
      path,
      labelSelector: managedSelector,
      list: list(path, managedSelector),
      handlers: ownedHandlers,
      logger,
      onRestart: restart(kind),
    });
  const serviceAccounts = tbotReflector<V1ServiceAccount>(
    'ServiceAccount',
    `/api/v1${nsPath}/serviceaccounts`,
  );
  const roles = tbotReflector<V1Role>('Role', `/apis/rbac.authorization.k8s.io/v1${nsPath}/roles`);
  const roleBindings = tbotReflector<V1RoleBinding>(
    'RoleBinding',
    `/apis/rbac.authorization.k8s.io/v1${nsPath}/rolebindings`,
  );
  const servicesPath = `/api/v1${nsPath}/services`;
  const services = new Reflector<V1Service>({
    kind: 'Service',
    api,
    path: servicesPath,
    labelSelector: managedSelector,
    list: list(servicesPath, managedSelector),
    handlers: ownedHandlers,
    logger,
    onRestart: restart('Service'),
  });
  // Secrets: metadata only, and only referenced ones kept; a change of a referenced one marks its cached
  // data stale and enqueues the CRs that use it.
  const secretHandler = (s: KubernetesObject, deleted: boolean) => {
    const key = objectKey(s);
    const users = secretIndex.get(key);
    if (!users) return;
    if (secretData.invalidate(key, deleted ? undefined : s.metadata?.resourceVersion))
      for (const cr of users) enqueue(cr);
  };
  const secretsPath = `/api/v1${nsPath}/secrets`;
  const secrets = new Reflector<KubernetesObject>({
    kind: 'Secret',
    api,
    path: secretsPath,
    accept: PARTIAL_METADATA,
    list: list(secretsPath, undefined, PARTIAL_METADATA_LIST),
    transform: (s) => ({
      metadata: {
        name: s.metadata?.name,
        namespace: s.metadata?.namespace,
        resourceVersion: s.metadata?.resourceVersion,
      },
    }),
    keep: (s) => secretIndex.has(objectKey(s)),
    handlers: { onUpsert: (s) => secretHandler(s, false), onDelete: (s) => secretHandler(s, true) },
    logger,
    onRestart: restart('Secret'),
  });
  caches.stats = {
    objects: () => ({
      [KIND]: plugins.size(),
      Deployment: deployments.size(),
      ConfigMap: configMaps.size(),
      SecretMetadata: secrets.size(),
      Service: services.size(),
      Secret: secretData.size(),
    }),
    secretDataBytes: () => secretData.dataBytes(),
  };

  const tbotCaches: Record<TbotOwnedKind, Reflector<KubernetesObject>> = {
    ServiceAccount: serviceAccounts as unknown as Reflector<KubernetesObject>,
    Role: roles as unknown as Reflector<KubernetesObject>,
    RoleBinding: roleBindings as unknown as Reflector<KubernetesObject>,
    Secret: secrets as unknown as Reflector<KubernetesObject>,
  };
  const allReflectors = [
    plugins,
    deployments,
    configMaps,
    secrets,
    services,
    serviceAccounts,
    roles,
    roleBindings,
  ];

  const isLeader = () => leader;
  const writer = new KubeClusterWriter(api, {
    isLeader,
    writes: metrics.apiWrites,
    observeConfigMap: (o) => configMaps.observe(o),
    observeDeployment: (o) => deployments.observe(o),
    observeService: (o) => services.observe(o),
    observeSecret: (o) => secretData.observe(o),
    observePlugin: (o) => plugins.observe(o),
    observeObject: (kind, o) => tbotCaches[kind].observe(o as never),
  });
  const reconciler = new Reconciler({
    reader: {
      getPlugin: (n, name) => plugins.get(n, name),
      getSecret: (n, name) => secretData.get(n, name),
      getDeployment: (n, name) => deployments.get(n, name),
      getConfigMap: (n, name) => configMaps.get(n, name),
      getObject: (kind, n, name) => tbotCaches[kind].get(n, name),
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
        const [crNs, crName] = key.split('/') as [string, string];
        const cr = plugins.get(crNs, crName);
        if (cr) await secretData.ensure(referencedSecrets(cr));
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

  await Promise.all(allReflectors.map((r) => r.start()));
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
      api,
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
      ['Service', services],
      ['ServiceAccount', serviceAccounts],
      ['Role', roles],
      ['RoleBinding', roleBindings],
    ] as const) {
      if (!r.hasSynced()) return `${name} cache not synced`;
    }
    return undefined;
  };
  let health: HealthServer | undefined;
  try {
    health = await startHealthServer({ listenAddr: opts.metricsAddr, registry: metrics.registry, ready });
  } catch (err) {
    for (const r of allReflectors) r.stop();
    queue.shutdown();
    await elector?.stop();
    api.close();
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
      for (const r of allReflectors) r.stop();
      queue.shutdown();
      await Promise.all(workers);
      await health?.close();
      api.close();
      logger.info('Operator stopped');
    },
  };
}
