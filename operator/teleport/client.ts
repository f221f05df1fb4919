// The Teleport API client: TeleportApi over our own gRPC client (grpc.ts, channel.ts), with TLS dialed by
// dial.ts to Auth, either directly (:3025) or through a TLS-routing Proxy (:443). Like api/client.New it
// tries both paths at once and keeps the first that answers Ping. Watches reconnect forever with decorrelated
// jitter and yield INIT after every gap; identity renewals move open streams to a new connection without a
// gap.
import { crypto } from '../node-builtins.js';
import { toBinary } from '@bufbuild/protobuf';
import type { TeleportConfig } from '../config/types.js';
import type { Logger } from '../observability/logger.js';
import { TeleportError, isTeleportError } from './api.js';
import type {
  AccessMonitoringRule,
  AccessRequest,
  ListAccessRequestsFilter,
  PingInfo,
  ReviewSubmission,
  TeleportApi,
  TeleportReviewApi,
  TeleportUser,
  WatchEvent,
  WatchKindName,
} from './api.js';
import { GrpcChannel } from './channel.js';
import { API_DOMAIN, splitHostPort, TeleportDialer } from './dial.js';
import type { ConnectionPath } from './dial.js';
import {
  accessRequestFilterToProto,
  accessRequestFromProto,
  pingFromProto,
  ruleFromProto,
  stateToProto,
  userFromProto,
  watchEventFromProto,
} from './convert.js';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { UsersService } from './gen/teleport/users/v1/users_service_pb.js';
import { AccessMonitoringRulesService } from './gen/teleport/accessmonitoringrules/v1/access_monitoring_rules_pb.js';
import { AuthService, EventSchema, Operation } from './gen/teleport/legacy/client/proto/authservice_pb.js';
import type { Event } from './gen/teleport/legacy/client/proto/authservice_pb.js';
import { collectStream, serverStreamCall, toTeleportError, unaryCall } from './grpc.js';
import type { CallOptions, ServerStream } from './grpc.js';
import { proxyFromEnv } from './httpproxy.js';
import type { HttpProxy } from './httpproxy.js';
import { loadCredentials } from './identity.js';
import type { Identity } from './identity.js';
import { IdentityRefresher } from './refresh.js';

const { createHash } = crypto;

export type { ConnectionPath } from './dial.js';

export interface ConnectOptions {
  /** Give up on start-up after this long (upstream's initTimeout is 10 s). */
  connectTimeoutMs?: number;
  /** Use only one path instead of racing both. */
  path?: ConnectionPath;
  /** Deadline of unary calls. */
  callTimeoutMs?: number;
  /** Watch reconnect backoff bounds (decorrelated jitter, upstream 20 ms – 5 s). */
  backoffMinMs?: number;
  backoffMaxMs?: number;
  /** A watch whose first event is not INIT within this time is restarted (upstream 15 s). */
  initTimeoutMs?: number;
  /** How long old and new streams overlap when a renewed identity moves a watch. */
  recycleOverlapMs?: number;
  /** Page size of ListAccessRequests. */
  pageSize?: number;
  /** Debounce of identity directory events. */
  refreshDebounceMs?: number;
  /** Environment for HTTPS_PROXY / NO_PROXY (default process.env). */
  env?: NodeJS.ProcessEnv;
}

export interface TeleportClient extends TeleportApi, TeleportReviewApi {
  /** NotAfter of the identity in use (for logs, metrics and status). */
  identityExpiry(): Date;
  identity(): Identity;
  connectionPath(): ConnectionPath;
  clusterName(): string;
  /** Re-reads the identity file now; true when a new identity was taken (refresh_identity only). */
  reloadIdentity(): Promise<boolean>;
}

const KEEPALIVE_MS = 60_000; // defaults.ServerKeepAliveTTL
const KEEPALIVE_COUNT_MAX = 3;
const PATH_LABEL: Record<ConnectionPath, string> = {
  direct: 'direct to Auth',
  proxy: 'through a TLS-routing Proxy',
};

/** One HTTP/2 connection, opened with a given identity (a new Connection dials anew). */
class Connection {
  readonly channel: GrpcChannel;
  streams = 0;
  superseded = false;
  private closeTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly id: number,
    dialer: TeleportDialer,
    readonly identity: Identity,
  ) {
    this.channel = new GrpcChannel({
      dial: () => dialer.dial(),
      onSession: (session) => dialer.observe(session),
      authority: API_DOMAIN,
      keepaliveMs: KEEPALIVE_MS,
      keepaliveTimeoutMs: KEEPALIVE_MS * KEEPALIVE_COUNT_MAX,
      maxReceiveBytes: TELEPORT_MAX_MESSAGE_BYTES,
    });
  }

  /** Closes once no watch streams use it; unary calls get a grace period to finish. */
  retire(graceMs: number): void {
    this.superseded = true;
    clearTimeout(this.closeTimer);
    this.closeTimer = setTimeout(() => this.closeIfIdle(), graceMs);
    this.closeTimer.unref();
  }

  release(): void {
    this.streams--;
    if (this.superseded && this.streams <= 0 && !this.closeTimer) this.channel.close();
  }

  private closeIfIdle(): void {
    this.closeTimer = undefined;
    if (this.streams <= 0) this.channel.close();
  }

  close(): void {
    clearTimeout(this.closeTimer);
    this.channel.close();
  }
}

/** Decorrelated jitter (backoff.NewDecorr): next = min(cap, random(base, prev * 3)). */
export class DecorrelatedBackoff {
  private prev: number;
  constructor(
    private readonly base: number,
    private readonly cap: number,
    private readonly random: () => number = Math.random,
  ) {
    this.prev = base;
  }
  next(): number {
    const upper = Math.max(this.base, this.prev * 3);
    this.prev = Math.min(this.cap, this.base + this.random() * (upper - this.base));
    return this.prev;
  }
  reset(): void {
    this.prev = this.base;
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

interface IdentityHolder {
  identity: Identity;
}

/**
 * The largest answer read from Teleport. A page of requests or one event is far smaller; a bigger
 * answer fails with RESOURCE_EXHAUSTED (LimitExceeded: retried) instead of growing the heap unbounded.
 */
export const TELEPORT_MAX_MESSAGE_BYTES = 8 * 1024 * 1024;

class TeleportGrpcClient implements TeleportClient {
  private conn: Connection;
  private connSeq = 1;
  private readonly closed = new AbortController();
  private readonly connListeners = new Set<() => void>();
  private refresher: IdentityRefresher | undefined;
  /** From the first Ping; tells "no such kind on this version" from "the role may not read it". */
  serverVersion = '';

  constructor(
    private readonly cfg: TeleportConfig,
    private readonly logger: Logger,
    private readonly opts: ConnectOptions,
    private readonly dialer: TeleportDialer,
    private readonly path: ConnectionPath,
    private readonly holder: IdentityHolder,
    connection: Connection,
  ) {
    this.conn = connection;
    const currentIdentity = holder.identity;
    if (cfg.refreshIdentity && cfg.identity) {
      this.refresher = new IdentityRefresher({
        path: cfg.identity,
        intervalMs: cfg.refreshIdentityIntervalMs,
        logger,
        initial: currentIdentity,
        onChange: (id) => this.useIdentity(id),
        ...(opts.refreshDebounceMs !== undefined ? { debounceMs: opts.refreshDebounceMs } : {}),
      });
      this.refresher.start();
    }
  }

  identityExpiry(): Date {
    return this.holder.identity.notAfter;
  }
  identity(): Identity {
    return this.holder.identity;
  }
  connectionPath(): ConnectionPath {
    return this.path;
  }
  clusterName(): string {
    return this.holder.identity.clusterName;
  }

  async reloadIdentity(): Promise<boolean> {
    return this.refresher ? this.refresher.reload('manual') : false;
  }

  /** A renewed identity: new connections use it; watches move over (see watch()). */
  private useIdentity(identity: Identity): void {
    this.holder.identity = identity;
    const old = this.conn;
    this.conn = new Connection(++this.connSeq, this.dialer, identity);
    old.retire((this.opts.callTimeoutMs ?? 30_000) + 1000);
    for (const l of this.connListeners) l();
  }

  private callOpts(): CallOptions {
    return { deadlineMs: this.opts.callTimeoutMs ?? 30_000, signal: this.closed.signal };
  }

  private fail(err: unknown, context: string): TeleportError {
    return toTeleportError(err, context, this.dialer.lastError);
  }

  async ping(): Promise<PingInfo> {
    try {
      return pingFromProto(await unaryCall(this.conn.channel, AuthService.method.ping, {}, this.callOpts()));
    } catch (err) {
      throw this.fail(err, 'Teleport Ping');
    }
  }

  async listAccessRequests(filter: ListAccessRequestsFilter = {}): Promise<AccessRequest[]> {
    const Filter = accessRequestFilterToProto(filter);
    const out: AccessRequest[] = [];
    let startKey = '';
    try {
      do {
        const page = await unaryCall(
          this.conn.channel,
          AuthService.method.listAccessRequests,
          { Filter, Limit: this.opts.pageSize ?? 500, StartKey: startKey },
          this.callOpts(),
        );
        out.push(...page.AccessRequests.map(accessRequestFromProto));
        startKey = page.NextKey;
      } while (startKey);
      return out;
    } catch (err) {
      const e = this.fail(err, 'Teleport ListAccessRequests');
      if (!isTeleportError(e, 'NotImplemented')) throw e;
    }
    // Older Auth servers: the streaming GetAccessRequestsV2 returns everything at once.
    try {
      const stream = serverStreamCall(
        this.conn.channel,
        AuthService.method.getAccessRequestsV2,
        Filter,
        this.callOpts(),
      );
      return (await collectStream(stream)).map(accessRequestFromProto);
    } catch (err) {
      throw this.fail(err, 'Teleport GetAccessRequestsV2');
    }
  }

  async getPluginData(requestId: string, plugin: string): Promise<Record<string, string> | undefined> {
    try {
      const seq = await unaryCall(
        this.conn.channel,
        AuthService.method.getPluginData,
        { Kind: 'access_request', Resource: requestId, Plugin: plugin },
        this.callOpts(),
      );
      const entry = seq.PluginData.find((d) => d.Metadata?.Name === requestId)?.Spec?.Entries[plugin];
      return entry ? { ...entry.Data } : undefined;
    } catch (err) {
      throw this.fail(err, `Teleport GetPluginData for request ${requestId}`);
    }
  }

  async updatePluginData(
    requestId: string,
    plugin: string,
    set: Record<string, string>,
    expect?: Record<string, string>,
  ): Promise<void> {
    try {
      await unaryCall(
        this.conn.channel,
        AuthService.method.updatePluginData,
        { Kind: 'access_request', Resource: requestId, Plugin: plugin, Set: set, Expect: expect ?? {} },
        this.callOpts(),
      );
    } catch (err) {
      throw this.fail(err, `Teleport UpdatePluginData for request ${requestId}`);
    }
  }

  async listAccessMonitoringRules(notificationName: string): Promise<AccessMonitoringRule[]> {
    const out: AccessMonitoringRule[] = [];
    let pageToken = '';
    try {
      do {
        const page = await unaryCall(
          this.conn.channel,
          AccessMonitoringRulesService.method.listAccessMonitoringRulesWithFilter,
          { pageSize: 1000n, pageToken, subjects: ['access_request'], notificationName },
          this.callOpts(),
        );
        out.push(...page.rules.map(ruleFromProto));
        pageToken = page.nextPageToken;
      } while (pageToken);
      return out;
    } catch (err) {
      throw this.fail(err, 'Teleport ListAccessMonitoringRulesWithFilter');
    }
  }

  async getAccessRequest(id: string): Promise<AccessRequest | undefined> {
    const found = await this.listAccessRequests({ id });
    return found.find((r) => r.id === id);
  }

  async submitReviewOnBehalf(s: ReviewSubmission): Promise<AccessRequest> {
    try {
      const updated = await unaryCall(
        this.conn.channel,
        AuthService.method.submitAccessReview,
        {
          RequestID: s.requestId,
          Review: {
            Author: s.author,
            ProposedState: stateToProto(s.proposedState),
            Reason: s.reason,
            Created: timestampFromDate(new Date()),
            submittedOnBehalfOfAuthor: true,
          },
        },
        this.callOpts(),
      );
      return accessRequestFromProto(updated);
    } catch (err) {
      throw this.fail(err, `Teleport SubmitAccessReview for request ${s.requestId}`);
    }
  }

  async listUsers(
    pageToken: string,
    pageSize: number,
  ): Promise<{ users: TeleportUser[]; nextPageToken: string }> {
    try {
      const page = await unaryCall(
        this.conn.channel,
        UsersService.method.listUsers,
        { pageSize, pageToken, filter: { SkipSystemUsers: true } },
        this.callOpts(),
      );
      return { users: page.users.map(userFromProto), nextPageToken: page.nextPageToken };
    } catch (err) {
      throw this.fail(err, 'Teleport ListUsers');
    }
  }

  async getUser(name: string): Promise<TeleportUser | undefined> {
    try {
      const res = await unaryCall(this.conn.channel, UsersService.method.getUser, { name }, this.callOpts());
      return res.user ? userFromProto(res.user) : undefined;
    } catch (err) {
      const e = this.fail(err, `Teleport GetUser ${JSON.stringify(name)}`);
      if (isTeleportError(e, 'NotFound')) return undefined;
      throw e;
    }
  }

  watch(kinds: WatchKindName[], signal: AbortSignal): AsyncIterable<WatchEvent> {
    return this.watchLoop(kinds, AbortSignal.any([signal, this.closed.signal]));
  }

  private async *watchLoop(wanted: WatchKindName[], signal: AbortSignal): AsyncGenerator<WatchEvent> {
    let kinds = wanted;
    const inbox = new Inbox<InboxItem>();
    const onAbort = (): void => inbox.push({ type: 'abort' });
    signal.addEventListener('abort', onAbort, { once: true });
    const onConnChange = (): void => inbox.push({ type: 'rotate' });
    this.connListeners.add(onConnChange);
    const backoff = new DecorrelatedBackoff(this.opts.backoffMinMs ?? 20, this.opts.backoffMaxMs ?? 5000);
    const initTimeoutMs = this.opts.initTimeoutMs ?? 15_000;
    const overlapMs = this.opts.recycleOverlapMs ?? 1000;
    let seq = 0;
    let cur: WatchStream | undefined;
    let next: WatchStream | undefined;
    let needInit = true; // the caller must get INIT (and resync) on the next stream that starts
    let pending: Event[] = [];
    let overlapKeys: Map<string, number> | undefined;
    let overlapTimer: NodeJS.Timeout | undefined;
    let retryRecycle: NodeJS.Timeout | undefined;
    let lastFailure: string | undefined;

    const open = (): WatchStream => {
      const conn = this.conn;
      const ws = new WatchStream(++seq, conn, kinds, inbox, initTimeoutMs);
      return ws;
    };
    const finishRecycle = function* (this: TeleportGrpcClient): Generator<WatchEvent> {
      clearTimeout(overlapTimer);
      overlapTimer = undefined;
      cur?.cancel();
      cur = next;
      next = undefined;
      const keys = overlapKeys ?? new Map<string, number>();
      overlapKeys = undefined;
      if (needInit) {
        needInit = false;
        yield { type: 'INIT' };
      }
      for (const ev of pending) {
        const k = eventKey(ev);
        const n = keys.get(k) ?? 0;
        if (n > 0) {
          keys.set(k, n - 1); // already delivered by the old stream
          continue;
        }
        const mapped = watchEventFromProto(ev);
        if (mapped) yield mapped;
      }
      pending = [];
      // Renewed again while moving: move once more.
      if (cur && cur.conn !== this.conn) inbox.push({ type: 'rotate' });
    };

    try {
      while (!signal.aborted) {
        if (!cur && !next) {
          cur = open();
        }
        const item = await inbox.take();
        if (item.type === 'abort') break;
        if (item.type === 'rotate') {
          if (cur && cur.initialized && !next && cur.conn !== this.conn) {
            next = open();
            this.logger.debug('Moving the Teleport watch to a connection with the renewed identity');
          }
          continue;
        }
        if (item.type === 'overlap-done') {
          if (next) yield* finishRecycle.call(this);
          continue;
        }
        const ws = item.stream;
        if (ws !== cur && ws !== next) continue; // a stream we already left
        if (item.type === 'event') {
          const ev = item.event;
          if (ev.Type === Operation.INIT) {
            if (ws.initialized) continue;
            ws.markInitialized();
            this.reportAcceptedKinds(ev, kinds);
            if (ws === cur) {
              backoff.reset();
              if (lastFailure) {
                this.logger.info('Teleport watch re-established', { path: this.path });
                lastFailure = undefined;
              }
              // Opened just before a renewal: move it to the new connection too.
              if (cur.conn !== this.conn && !next) inbox.push({ type: 'rotate' });
              if (needInit) {
                needInit = false;
                yield { type: 'INIT' };
              }
            } else if (!cur) {
              yield* finishRecycle.call(this); // the old stream is already gone
            } else {
              overlapKeys = new Map();
              overlapTimer = setTimeout(() => inbox.push({ type: 'overlap-done' }), overlapMs);
            }
            continue;
          }
          if (!ws.initialized) {
            ws.cancel();
            inbox.push({
              type: 'failed',
              stream: ws,
              error: new Error(`first watch event was ${Operation[ev.Type]}, not INIT`),
            });
            continue;
          }
          if (ws === next) {
            pending.push(ev);
            continue;
          }
          if (overlapKeys) {
            const k = eventKey(ev);
            overlapKeys.set(k, (overlapKeys.get(k) ?? 0) + 1);
          }
          const mapped = watchEventFromProto(ev);
          if (mapped) yield mapped;
          continue;
        }
        // The stream failed or ended.
        const reason = item.type === 'failed' ? item.error : new Error('stream closed by the server');
        const err = this.fail(reason, 'Teleport watch');
        ws.cancel();
        if (ws === next) {
          next = undefined;
          pending = [];
          overlapKeys = undefined;
          clearTimeout(overlapTimer);
          if (cur) {
            this.logger.warn('Could not move the Teleport watch to the renewed identity; retrying', {
              error: err.message,
            });
            clearTimeout(retryRecycle);
            retryRecycle = setTimeout(() => inbox.push({ type: 'rotate' }), backoff.next());
            continue;
          }
          // Neither stream is left: reconnect below.
        } else {
          cur = undefined;
          // The caller had the stream up: tell it (readiness), then reconnect; INIT follows.
          if (!needInit) yield { type: 'DOWN', reason: err.message };
          needInit = true;
          if (next?.initialized) {
            yield* finishRecycle.call(this);
            continue;
          }
          if (next) continue; // wait for the new stream's INIT
        }
        if (kinds.includes('access_monitoring_rule') && unsupportedRuleWatch(err.message)) {
          // Teleport <= 12 rejects the whole watch (no such kind, no AllowPartialSuccess): go on without it.
          kinds = kinds.filter((k) => k !== 'access_monitoring_rule');
          this.logger.warn(
            'Access Monitoring Rules routing is unavailable on this Teleport version; watching access requests only (role_to_recipients routes every request)',
            { server_version: this.serverVersion || 'unknown' },
          );
          continue;
        }
        const delay = backoff.next();
        lastFailure = err.message;
        if (err.kind === 'AccessDenied' || err.kind === 'BadParameter') {
          // Retrying cannot fix this by itself, but a role change can: keep trying, loudly.
          this.logger.error('Teleport refused the watch; check the plugin role. Retrying.', {
            error: err.message,
            retry_in_ms: Math.round(delay),
            hint: 'the role needs list and read on access_request (and access_monitoring_rule if used)',
          });
        } else {
          this.logger.warn(
            item.type === 'ended'
              ? 'Watcher stream closed. Attempting to reconnect.'
              : 'Connection problem detected. Attempting to reconnect.',
            { error: err.message, retry_in_ms: Math.round(delay), path: this.path },
          );
        }
        await sleep(delay, signal);
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.connListeners.delete(onConnChange);
      clearTimeout(overlapTimer);
      clearTimeout(retryRecycle);
      cur?.cancel();
      next?.cancel();
    }
  }

  private warnedKinds = new Set<string>();
  private reportAcceptedKinds(init: Event, wanted: WatchKindName[]): void {
    if (init.Resource.case !== 'WatchStatus') return;
    const accepted = new Set(init.Resource.value.Spec?.Kinds.map((k) => k.Kind) ?? []);
    for (const kind of wanted) {
      if (!accepted.has(kind) && !this.warnedKinds.has(kind)) {
        this.warnedKinds.add(kind);
        if (kind === 'access_monitoring_rule' && lacksRuleKind(this.serverVersion)) {
          this.logger.warn(
            'This Teleport version has no Access Monitoring Rules; routing uses role_to_recipients',
            { server_version: this.serverVersion },
          );
          continue;
        }
        this.logger.warn('Teleport refused to watch a resource kind; events of this kind will not arrive', {
          kind,
          hint: `give the plugin's role list/read on ${kind}`,
        });
      }
    }
  }

  close(): void {
    this.closed.abort();
    this.refresher?.stop();
    this.conn.close();
    this.dialer.dropConnections();
  }
}

type InboxItem =
  | { type: 'event'; stream: WatchStream; event: Event }
  | { type: 'failed'; stream: WatchStream; error: unknown }
  | { type: 'ended'; stream: WatchStream }
  | { type: 'rotate' }
  | { type: 'overlap-done' }
  | { type: 'abort' };

/** A single-consumer async queue. */
class Inbox<T> {
  private items: T[] = [];
  private waiter: ((item: T) => void) | undefined;
  push(item: T): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w(item);
    } else this.items.push(item);
  }
  take(): Promise<T> {
    const item = this.items.shift();
    if (item !== undefined) return Promise.resolve(item);
    return new Promise((resolve) => (this.waiter = resolve));
  }
}

class WatchStream {
  initialized = false;
  private readonly call: ServerStream<Event>;
  private done = false;
  private initTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly id: number,
    readonly conn: Connection,
    kinds: WatchKindName[],
    inbox: Inbox<InboxItem>,
    initTimeoutMs: number,
  ) {
    conn.streams++;
    this.call = serverStreamCall(conn.channel, AuthService.method.watchEvents, {
      Kinds: kinds.map((Kind) => ({ Kind })),
      AllowPartialSuccess: true,
    });
    this.call.on('data', (event: Event) => {
      if (!this.done) inbox.push({ type: 'event', stream: this, event });
    });
    this.call.on('error', (error) => {
      if (this.finish()) inbox.push({ type: 'failed', stream: this, error });
    });
    this.call.on('end', () => {
      if (this.finish()) inbox.push({ type: 'ended', stream: this });
    });
    this.initTimer = setTimeout(() => {
      if (this.initialized || this.done) return;
      this.cancel();
      inbox.push({
        type: 'failed',
        stream: this,
        error: new TeleportError(
          'Unavailable',
          `watcher initialization timed out after ${initTimeoutMs / 1000}s`,
        ),
      });
    }, initTimeoutMs);
  }

  markInitialized(): void {
    this.initialized = true;
    clearTimeout(this.initTimer);
  }

  private finish(): boolean {
    if (this.done) return false;
    this.done = true;
    clearTimeout(this.initTimer);
    this.conn.release();
    return true;
  }

  cancel(): void {
    if (this.finish()) this.call.cancel();
  }
}

/** The refusal of a watch that names access_monitoring_rule as an unknown kind (Teleport <= 12). */
function unsupportedRuleWatch(message: string): boolean {
  return /access_monitoring_rule/.test(message) && /not support|unsupported|unknown/i.test(message);
}

/** Teleport before 16 has no access_monitoring_rule kind (the watch drops it with AllowPartialSuccess). */
function lacksRuleKind(serverVersion: string): boolean {
  const major = Number(/^v?(\d+)\./.exec(serverVersion)?.[1]);
  return Number.isFinite(major) && major > 0 && major < 16;
}

function eventKey(ev: Event): string {
  return createHash('sha256').update(toBinary(EventSchema, ev)).digest('base64');
}

/**
 * Connects to Teleport: loads the credentials (failing on expired ones), then tries the direct and the
 * TLS-routing path at `cfg.addr` at once and keeps the first that answers Ping.
 */
export async function connectTeleport(
  cfg: TeleportConfig,
  logger: Logger,
  opts: ConnectOptions = {},
): Promise<TeleportClient> {
  let httpProxy: HttpProxy | undefined;
  try {
    httpProxy = proxyFromEnv(splitHostPort(cfg.addr).host, opts.env ?? process.env);
  } catch (err) {
    throw new TeleportError('BadParameter', (err as Error).message);
  }
  if (httpProxy) logger.info('Connecting to Teleport through an HTTPS proxy', { proxy: httpProxy.display });
  const identity = await loadCredentials(cfg);
  logger.info('Loaded Teleport credentials', {
    source: identity.source,
    cluster: identity.clusterName,
    user: identity.username,
    key_type: identity.keyType,
    expires: identity.notAfter.toISOString(),
  });
  // Shared with the dialers: a renewed identity applies to every new TLS connection.
  const holder: IdentityHolder = { identity };
  const paths: ConnectionPath[] = opts.path ? [opts.path] : ['direct', 'proxy'];
  const timeoutMs = opts.connectTimeoutMs ?? 10_000;
  const attempts = paths.map((path) => {
    const dialer = new TeleportDialer({
      addr: cfg.addr,
      path,
      identity: () => holder.identity,
      ...(httpProxy ? { httpProxy } : {}),
    });
    return { path, dialer, conn: new Connection(1, dialer, identity) };
  });
  const errors: string[] = [];
  let winner: (typeof attempts)[number] | undefined;
  let pong: PingInfo | undefined;
  try {
    await new Promise<void>((resolve) => {
      let left = attempts.length;
      for (const a of attempts) {
        unaryCall(a.conn.channel, AuthService.method.ping, {}, { deadlineMs: timeoutMs })
          .then((p) => {
            if (!winner) {
              winner = a;
              pong = pingFromProto(p);
              resolve();
            }
          })
          .catch((err: unknown) => {
            errors.push(`${PATH_LABEL[a.path]}: ${toTeleportError(err, 'Ping', a.dialer.lastError).message}`);
          })
          .finally(() => {
            if (--left === 0) resolve();
          });
      }
    });
  } finally {
    for (const a of attempts) {
      if (a !== winner) {
        a.conn.close();
        a.dialer.dropConnections();
      }
    }
  }
  if (!winner || !pong) {
    throw new TeleportError(
      'Unavailable',
      `cannot connect to Teleport at ${cfg.addr} as "${identity.username}" of cluster "${identity.clusterName}": ${errors.join('; ')}`,
    );
  }
  logger.info('Connected to Teleport', {
    addr: cfg.addr,
    path: winner.path,
    cluster: pong.clusterName,
    server_version: pong.serverVersion,
  });
  const client = new TeleportGrpcClient(cfg, logger, opts, winner.dialer, winner.path, holder, winner.conn);
  client.serverVersion = pong.serverVersion;
  return client;
}
