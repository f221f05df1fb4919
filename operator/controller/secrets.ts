// The Secrets the operator reads, and only those. A namespace can hold hundreds of large Secrets that are
// none of the operator's business (Helm keeps each release in a ~1 MiB Secret); caching them all made the
// operator's memory grow with them and hold secret material it never needed. So Secrets are watched as
// metadata only (PartialObjectMetadata: name, namespace, resourceVersion; see run.ts), and a referenced
// Secret's data is fetched with a GET when a reconcile needs it, kept while some resource references it,
// and read again when the metadata watch reports a newer version (before the next reconcile).
//
// A Secret that does not exist is remembered as absent: its creation arrives as an ADDED event on the
// metadata watch, which invalidates the entry and enqueues the resources that reference it.
import type { V1Secret } from '@kubernetes/client-node';
import { KubeApiError, type KubeApi } from './kubeapi.js';

interface Entry {
  /** null = the API server answered 404. */
  secret: V1Secret | null;
  /** The watch reported a change: read it again before the next reconcile (meanwhile get() still
   * answers the old copy, so a reconcile already running never sees a Secret vanish that did not). */
  stale: boolean;
}

export class ReferencedSecrets {
  private readonly entries = new Map<string, Entry>();
  /** Bumped by invalidate(): a GET that started before an invalidation must not store its answer. */
  private readonly epochs = new Map<string, number>();

  constructor(
    private readonly api: KubeApi,
    /** Whether some resource still references the Secret "namespace/name". */
    private readonly referenced: (key: string) => boolean,
  ) {}

  /** The cached Secret (undefined when absent or not fetched yet). */
  get(namespace: string, name: string): V1Secret | undefined {
    return this.entries.get(`${namespace}/${name}`)?.secret ?? undefined;
  }

  /** Fetches the Secrets ("namespace/name" keys) that are not cached yet. Rejects on API errors. */
  async ensure(keys: readonly string[]): Promise<void> {
    await Promise.all(keys.filter((k) => this.entries.get(k)?.stale ?? true).map((k) => this.fetch(k)));
  }

  private async fetch(key: string): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const epoch = this.epochs.get(key) ?? 0;
      const [namespace, name] = key.split('/') as [string, string];
      let secret: V1Secret | null;
      try {
        secret = await this.api.request<V1Secret>('GET', `/api/v1/namespaces/${namespace}/secrets/${name}`);
        delete secret.metadata?.managedFields;
        if (secret.metadata?.annotations)
          delete secret.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration'];
      } catch (err) {
        if (!(err instanceof KubeApiError && err.code === 404)) throw err;
        secret = null;
      }
      if ((this.epochs.get(key) ?? 0) !== epoch) continue; // changed while we read it: read again
      if (this.referenced(key)) this.entries.set(key, { secret, stale: false });
      return;
    }
  }

  /**
   * A watch event for the Secret: marks the cached copy stale unless it already has this resourceVersion.
   * Returns true when the cached data changed (or was unknown), i.e. its resources need a reconcile.
   */
  invalidate(key: string, resourceVersion?: string): boolean {
    const cur = this.entries.get(key);
    if (cur?.secret && resourceVersion && cur.secret.metadata?.resourceVersion === resourceVersion)
      return false;
    this.epochs.set(key, (this.epochs.get(key) ?? 0) + 1);
    if (cur) cur.stale = true;
    return true;
  }

  /** A Secret the operator itself just created (the review signing key): kept if referenced. */
  observe(secret: V1Secret): void {
    const key = `${secret.metadata?.namespace}/${secret.metadata?.name}`;
    delete secret.metadata?.managedFields;
    if (this.referenced(key)) this.entries.set(key, { secret, stale: false });
  }

  /** Forgets a Secret no resource references any more. */
  release(key: string): void {
    this.entries.delete(key);
    this.epochs.delete(key);
  }

  /** Cached Secrets with data (the cache_objects{kind="Secret"} metric). */
  size(): number {
    let n = 0;
    for (const e of this.entries.values()) if (e.secret) n++;
    return n;
  }

  /** Bytes of cached Secret data (base64 as received; the cache_secret_data_bytes metric). */
  dataBytes(): number {
    let n = 0;
    for (const e of this.entries.values()) for (const v of Object.values(e.secret?.data ?? {})) n += v.length;
    return n;
  }
}
