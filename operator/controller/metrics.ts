// Prometheus metrics of the operator (served on /metrics by operator/observability/http.ts).
import { Counter, Gauge, Histogram, Registry } from '../observability/metrics.js';
import { registerProcessMetrics } from '../observability/process-metrics.js';

export interface OperatorMetrics {
  registry: Registry;
  reconciles: Counter<'result'>;
  reconcileErrors: Counter;
  reconcileDuration: Histogram;
  queueDepth: Gauge;
  apiWrites: Counter<'resource' | 'verb'>;
  watchRestarts: Counter<'kind' | 'reason'>;
  leader: Gauge;
  cacheObjects: Gauge<'kind'>;
  cachedSecretBytes: Gauge;
}

/** What the cache metrics read when scraped (set by run.ts once the caches exist). */
export interface CacheStats {
  /** Objects per cache: MattermostAccessPlugin, Deployment, ConfigMap, SecretMetadata, Secret. */
  objects(): Record<string, number>;
  secretDataBytes(): number;
}

const PREFIX = 'teleport_mattermost_operator_';

export function createMetrics(
  queueDepth: () => number,
  caches?: () => CacheStats | undefined,
): OperatorMetrics {
  const registry = new Registry();
  registerProcessMetrics(registry, PREFIX);
  return {
    registry,
    reconciles: new Counter({
      name: `${PREFIX}reconcile_total`,
      help: 'Reconciles by result: success, requeue_after, error.',
      labelNames: ['result'],
      registers: [registry],
    }),
    reconcileErrors: new Counter({
      name: `${PREFIX}reconcile_errors_total`,
      help: 'Reconciles that failed and were requeued with backoff.',
      registers: [registry],
    }),
    reconcileDuration: new Histogram({
      name: `${PREFIX}reconcile_duration_seconds`,
      help: 'Time spent in one reconcile.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    queueDepth: new Gauge({
      name: `${PREFIX}workqueue_depth`,
      help: 'Keys waiting in the work queue.',
      registers: [registry],
      collect() {
        this.set(queueDepth());
      },
    }),
    apiWrites: new Counter({
      name: `${PREFIX}api_writes_total`,
      help: 'Write requests sent to the Kubernetes API, by resource and verb.',
      labelNames: ['resource', 'verb'],
      registers: [registry],
    }),
    watchRestarts: new Counter({
      name: `${PREFIX}watch_restarts_total`,
      help: 'Watch restarts by kind and reason (closed, error, gone = relist).',
      labelNames: ['kind', 'reason'],
      registers: [registry],
    }),
    cacheObjects: new Gauge({
      name: `${PREFIX}cache_objects`,
      help: 'Objects held in the informer caches, by kind (Secret = Secrets whose data is cached, only referenced ones; SecretMetadata = referenced Secrets seen by the metadata-only watch).',
      labelNames: ['kind'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [kind, n] of Object.entries(caches?.()?.objects() ?? {})) this.set({ kind }, n);
      },
    }),
    cachedSecretBytes: new Gauge({
      name: `${PREFIX}cache_secret_data_bytes`,
      help: 'Bytes of Secret data held in the cache (base64, referenced Secrets only).',
      registers: [registry],
      collect() {
        this.set(caches?.()?.secretDataBytes() ?? 0);
      },
    }),
    leader: new Gauge({
      name: `${PREFIX}leader`,
      help: '1 when this replica holds the leader Lease (or leader election is off).',
      registers: [registry],
    }),
  };
}
