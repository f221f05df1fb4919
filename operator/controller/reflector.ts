// A Reflector keeps an in-memory cache of one kind of object in sync with the API server: it lists,
// then watches from the list's resourceVersion. When a watch ends (server timeout, network error) it
// resumes from the last resourceVersion it saw, after a capped backoff for errors; only when the server
// says that version is gone (410 Gone / "too old resource version") does it list again, calling
// onDelete for objects that vanished meanwhile. Handlers only enqueue keys, so they never block.
//
// The cache holds only what the operator reads: `transform` trims each object before it is stored (by
// default it drops managedFields and the last-applied annotation), and `keep` can leave objects out of the
// cache altogether (the Secret metadata watch keeps only referenced Secrets); handlers still see every event.
import type { KubernetesObject } from '@kubernetes/client-node'; // types only: erased at build
import type { Logger } from '../observability/logger.js';
import type { KubeApi, WatchHandle } from './kubeapi.js';

export type { KubernetesObject };

export interface ListResult<T> {
  items: T[];
  metadata?: { resourceVersion?: string };
}

export interface ReflectorHandlers<T> {
  onUpsert(obj: T, old: T | undefined): void;
  onDelete(obj: T): void;
}

export interface ReflectorOptions<T> {
  kind: string;
  api: KubeApi;
  /** Collection path to watch, e.g. /apis/apps/v1/namespaces/ns/deployments. */
  path: string;
  labelSelector?: string;
  /** Accept header of the watch (e.g. PartialObjectMetadata); the list function chooses its own. */
  accept?: string;
  /** Trims an object before it is cached and handed to handlers (default: stripBulk). */
  transform?: (obj: T) => T;
  /** Objects for which this returns false are not cached (their events still reach the handlers). */
  keep?: (obj: T) => boolean;
  list: () => Promise<ListResult<T>>;
  handlers: ReflectorHandlers<T>;
  logger: Logger;
  /** Called on watch restarts and relists (for metrics). */
  onRestart?: (reason: 'closed' | 'error' | 'gone') => void;
}

const WATCH_TIMEOUT_S = 25;
const ERROR_BACKOFF_MAX_MS = 30_000;

export function objectKey(obj: KubernetesObject): string {
  return `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
}

const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

/**
 * Drops metadata.managedFields and kubectl's last-applied annotation before caching: the operator never
 * reads them, and they are often the largest part of an object (controller-runtime's
 * TransformStripManagedFields does the same for the first).
 */
export function stripBulk<T extends KubernetesObject>(obj: T): T {
  const md = obj.metadata;
  if (md?.managedFields) delete md.managedFields;
  if (md?.annotations?.[LAST_APPLIED] !== undefined) delete md.annotations[LAST_APPLIED];
  return obj;
}

function newerOrEqual(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b) return true;
  if (/^\d+$/.test(a) && /^\d+$/.test(b)) return BigInt(a) >= BigInt(b);
  return true;
}

function isGone(err: unknown): boolean {
  const e = err as { statusCode?: number; code?: number } | undefined;
  return e?.statusCode === 410 || e?.code === 410;
}

export class Reflector<T extends KubernetesObject> {
  private readonly cache = new Map<string, T>();
  private resourceVersion: string | undefined;
  private abort: WatchHandle | undefined;
  private stopped = false;
  private synced = false;
  private errorDelayMs = 0;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: ReflectorOptions<T>) {}

  /**
   * Lists and starts watching; resolves after the first successful list (the cache is then synced).
   * A failing list (API server starting, CRD not installed yet, missing RBAC) is retried with backoff
   * and logged, so the operator comes up by itself once the cause is fixed. Rejects only if stopped.
   */
  async start(): Promise<void> {
    let delay = 250;
    for (;;) {
      if (this.stopped) throw new Error(`${this.opts.kind} reflector stopped before its cache synced`);
      try {
        await this.relist();
        break;
      } catch (err) {
        const code = (err as { code?: number }).code;
        this.opts.logger.warn(`Failed to list ${this.opts.kind}, retrying`, {
          path: this.opts.path,
          error: typeof code === 'number' ? `HTTP ${code}` : (err as Error).message,
          hint:
            code === 404
              ? 'is the MattermostAccessPlugin CRD installed?'
              : code === 403
                ? 'the operator lacks RBAC to list this resource'
                : undefined,
          retry_in_ms: delay,
        });
        // Not unref()d: until the caches sync nothing else keeps the process alive.
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(ERROR_BACKOFF_MAX_MS, delay * 2);
      }
    }
    this.synced = true;
    void this.watch();
  }

  hasSynced(): boolean {
    return this.synced;
  }

  get(namespace: string, name: string): T | undefined {
    return this.cache.get(`${namespace}/${name}`);
  }

  list(): T[] {
    return [...this.cache.values()];
  }

  /** Objects in the cache (the cache_objects metric). */
  size(): number {
    return this.cache.size;
  }

  /** Stores an object the operator itself just wrote, unless the watch already delivered a newer one. */
  observe(obj: T): void {
    obj = this.trim(obj);
    const key = objectKey(obj);
    const cur = this.cache.get(key);
    if (!cur || newerOrEqual(obj.metadata?.resourceVersion, cur.metadata?.resourceVersion)) {
      this.store(key, obj);
    }
  }

  private trim(obj: T): T {
    return (this.opts.transform ?? stripBulk)(obj);
  }

  private store(key: string, obj: T): void {
    if (!this.opts.keep || this.opts.keep(obj)) this.cache.set(key, obj);
    else this.cache.delete(key);
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.abort?.abort();
  }

  private async relist(): Promise<void> {
    const result = await this.opts.list();
    const seen = new Set<string>();
    for (const raw of result.items ?? []) {
      // (an empty PartialObjectMetadataList comes with "items": null)
      const item = this.trim(raw);
      const key = objectKey(item);
      seen.add(key);
      const old = this.cache.get(key);
      this.store(key, item);
      if (old?.metadata?.resourceVersion !== item.metadata?.resourceVersion)
        this.opts.handlers.onUpsert(item, old);
    }
    for (const [key, old] of this.cache) {
      if (!seen.has(key)) {
        this.cache.delete(key);
        this.opts.handlers.onDelete(old);
      }
    }
    this.resourceVersion = result.metadata?.resourceVersion;
  }

  private schedule(delayMs: number, fn: () => Promise<void>): void {
    if (this.stopped) return;
    this.retryTimer = setTimeout(() => void fn(), delayMs);
    this.retryTimer.unref();
  }

  private async watch(): Promise<void> {
    if (this.stopped) return;
    let gone = false;
    const onEvent = (type: string, raw: unknown) => {
      const obj = raw as T;
      if (type === 'BOOKMARK') {
        this.resourceVersion = obj.metadata?.resourceVersion ?? this.resourceVersion;
        return;
      }
      if (type === 'ERROR') {
        const status = obj as unknown as { code?: number; message?: string };
        if (status.code === 410) gone = true;
        else
          this.opts.logger.warn('Watch returned an error', { kind: this.opts.kind, error: status.message });
        return;
      }
      this.errorDelayMs = 0;
      const item = this.trim(obj);
      this.resourceVersion = item.metadata?.resourceVersion ?? this.resourceVersion;
      const key = objectKey(item);
      if (type === 'DELETED') {
        this.cache.delete(key);
        this.opts.handlers.onDelete(item);
      } else {
        const old = this.cache.get(key);
        this.store(key, item);
        this.opts.handlers.onUpsert(item, old);
      }
    };
    const onDone = (err: unknown) => {
      this.abort = undefined;
      if (this.stopped) return;
      if (gone || isGone(err)) {
        this.opts.onRestart?.('gone');
        this.opts.logger.info('Watch resource version expired, listing again', { kind: this.opts.kind });
        this.schedule(0, () => this.relistAndWatch());
      } else if (err && (err as { name?: string }).name !== 'TimeoutError') {
        this.opts.onRestart?.('error');
        this.errorDelayMs = Math.min(ERROR_BACKOFF_MAX_MS, Math.max(500, this.errorDelayMs * 2));
        this.opts.logger.warn('Watch failed, resuming', {
          kind: this.opts.kind,
          error: (err as Error).message ?? String(err),
          retry_in_ms: this.errorDelayMs,
        });
        this.schedule(this.errorDelayMs, () => this.watch());
      } else {
        this.opts.onRestart?.('closed');
        this.schedule(0, () => this.watch());
      }
    };
    try {
      this.abort = this.opts.api.watch(
        this.opts.path,
        {
          resourceVersion: this.resourceVersion,
          allowWatchBookmarks: true,
          timeoutSeconds: WATCH_TIMEOUT_S,
          labelSelector: this.opts.labelSelector,
        },
        onEvent,
        onDone,
        this.opts.accept,
      );
      if (this.stopped) this.abort.abort();
    } catch (err) {
      onDone(err);
    }
  }

  private async relistAndWatch(): Promise<void> {
    try {
      await this.relist();
      this.errorDelayMs = 0;
      await this.watch();
    } catch (err) {
      this.errorDelayMs = Math.min(ERROR_BACKOFF_MAX_MS, Math.max(500, this.errorDelayMs * 2));
      this.opts.logger.warn('List failed, retrying', { kind: this.opts.kind, error: (err as Error).message });
      this.schedule(this.errorDelayMs, () => this.relistAndWatch());
    }
  }
}
