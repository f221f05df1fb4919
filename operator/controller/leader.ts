// Leader election on a coordination.k8s.io/v1 Lease, the client-go way: a candidate takes the Lease when
// it is free or when its holder has not renewed it for leaseDurationSeconds (measured on this replica's
// own clock, from when it last saw the record change), and every write uses the Lease's resourceVersion,
// so two candidates can never both succeed. The leader renews every renewMs; any failed renewal gives up
// leadership at once (a stale leader must stop writing before another may start).
import type { Logger } from '../observability/logger.js';
import { KubeApiError, type KubeApi } from './kubeapi.js';

/** The Lease as JSON (renewTime and acquireTime are MicroTime: RFC 3339 with microseconds). */
interface LeaseJson {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec?: {
    holderIdentity?: string | null;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

const leasesPath = (namespace: string) => `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`;
const isCode = (err: unknown, code: number) => err instanceof KubeApiError && err.code === code;

/** RFC 3339 with microseconds, as metav1.MicroTime requires. */
export function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export interface LeaderElectionOptions {
  name: string;
  namespace: string;
  identity: string;
  leaseDurationS: number;
  renewMs: number;
}

export interface LeaderCallbacks {
  onStartedLeading(): void;
  onStoppedLeading(): void;
  /** Counts Lease writes. */
  onWrite?(verb: string): void;
}

export class LeaderElector {
  private leader = false;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private observedRecord = '';
  private observedAt = 0;

  constructor(
    private readonly api: KubeApi,
    private readonly opts: LeaderElectionOptions,
    private readonly callbacks: LeaderCallbacks,
    private readonly logger: Logger,
  ) {}

  isLeader(): boolean {
    return this.leader;
  }

  start(): void {
    void this.loop();
  }

  /** Stops campaigning; a leader releases the Lease so a standby takes over without waiting. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.leader) {
      this.setLeader(false);
      try {
        const url = `${leasesPath(this.opts.namespace)}/${this.opts.name}`;
        const lease = await this.api.request<LeaseJson>('GET', url);
        if (lease.spec?.holderIdentity === this.opts.identity) {
          lease.spec.holderIdentity = null;
          lease.spec.leaseDurationSeconds = 1;
          this.callbacks.onWrite?.('update');
          await this.api.request('PUT', url, { body: lease });
        }
      } catch (err) {
        this.logger.debug('Failed to release the leader Lease', { error: (err as Error).message });
      }
    }
  }

  private async loop(): Promise<void> {
    if (this.stopped) return;
    let ok = false;
    try {
      ok = await this.tryAcquireOrRenew();
    } catch (err) {
      this.logger.warn('Failed to acquire or renew the leader Lease', {
        lease: `${this.opts.namespace}/${this.opts.name}`,
        error: (err as Error).message,
      });
    }
    if (this.stopped) return;
    this.setLeader(ok);
    this.timer = setTimeout(() => void this.loop(), this.opts.renewMs);
    this.timer.unref();
  }

  private setLeader(value: boolean): void {
    if (value === this.leader) return;
    this.leader = value;
    if (value) {
      this.logger.info('Became the leader', {
        lease: `${this.opts.namespace}/${this.opts.name}`,
        identity: this.opts.identity,
      });
      this.callbacks.onStartedLeading();
    } else {
      this.logger.info('Lost leadership', {
        lease: `${this.opts.namespace}/${this.opts.name}`,
        identity: this.opts.identity,
      });
      this.callbacks.onStoppedLeading();
    }
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { name, namespace, identity, leaseDurationS } = this.opts;
    const now = microTime(new Date());
    const url = `${leasesPath(namespace)}/${name}`;
    let lease: LeaseJson;
    try {
      lease = await this.api.request<LeaseJson>('GET', url);
    } catch (err) {
      if (!isCode(err, 404)) throw err;
      this.callbacks.onWrite?.('create');
      try {
        await this.api.request('POST', leasesPath(namespace), {
          body: {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: { name, namespace },
            spec: {
              holderIdentity: identity,
              leaseDurationSeconds: leaseDurationS,
              acquireTime: now,
              renewTime: now,
              leaseTransitions: 0,
            },
          },
        });
        return true;
      } catch (e) {
        if (isCode(e, 409)) return false;
        throw e;
      }
    }
    const spec = lease.spec ?? {};
    const record = `${spec.holderIdentity ?? ''}|${String(spec.renewTime ?? '')}|${spec.leaseDurationSeconds ?? ''}`;
    if (record !== this.observedRecord) {
      this.observedRecord = record;
      this.observedAt = Date.now();
    }
    const heldByMe = spec.holderIdentity === identity;
    const duration = (spec.leaseDurationSeconds ?? leaseDurationS) * 1000;
    const expired = !spec.holderIdentity || this.observedAt + duration < Date.now();
    if (!heldByMe && !expired) return false;
    lease.spec = {
      ...spec,
      holderIdentity: identity,
      leaseDurationSeconds: leaseDurationS,
      renewTime: now,
      ...(heldByMe ? {} : { acquireTime: now, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 }),
    };
    this.callbacks.onWrite?.('update');
    try {
      await this.api.request('PUT', url, { body: lease });
    } catch (err) {
      if (isCode(err, 409)) return false;
      throw err;
    }
    return true;
  }
}
