// The in-memory state of the fake Teleport Auth server with Teleport's semantics: access requests,
// plugin data with compare-and-swap (lib/services/local/dynamic_access.go, api/types/plugin_data.go),
// access monitoring rules, and watchers (INIT first, filters on PUT only, DELETE with a ResourceHeader).
import { randomUUID } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import { status } from '@grpc/grpc-js';
import type {
  AccessMonitoringRule,
  AccessRequest,
  AccessReview,
  RequestState,
} from '../../operator/teleport/api.js';
import { accessRequestToProto, ruleToProto } from '../../operator/teleport/convert.js';
import {
  EventSchema,
  Operation,
} from '../../operator/teleport/gen/teleport/legacy/client/proto/authservice_pb.js';
import type { Event } from '../../operator/teleport/gen/teleport/legacy/client/proto/authservice_pb.js';
import type { WatchKind } from '../../operator/teleport/gen/teleport/legacy/types/types_pb.js';

/** An error that the gRPC layer sends as a status, like trace errors through trail.go. */
export class StatusError extends Error {
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
  }
}

export const notFound = (m: string): StatusError => new StatusError(status.NOT_FOUND, m);
export const badParameter = (m: string): StatusError => new StatusError(status.INVALID_ARGUMENT, m);
export const compareFailed = (m: string): StatusError => new StatusError(status.FAILED_PRECONDITION, m);
export const accessDenied = (m: string): StatusError => new StatusError(status.PERMISSION_DENIED, m);

export const KIND_ACCESS_REQUEST = 'access_request';
export const KIND_AMR = 'access_monitoring_rule';
const ACCESS_REQUEST_FILTER_KEYS = new Set(['id', 'user', 'state']);

export interface Watcher {
  /** kind → filter (access_request only) */
  kinds: Map<string, Record<string, string>>;
  send(event: Event): void;
}

export interface PluginDataRecord {
  /** plugin name → data */
  entries: Map<string, Record<string, string>>;
  expires: Date | undefined;
}

export interface BackendOptions {
  approveThreshold?: number;
  denyThreshold?: number;
}

export class FakeBackend {
  readonly requests = new Map<string, AccessRequest>();
  readonly pluginData = new Map<string, PluginDataRecord>();
  readonly rules = new Map<string, AccessMonitoringRule>();
  readonly watchers = new Set<Watcher>();
  approveThreshold: number;
  denyThreshold: number;

  constructor(opts: BackendOptions = {}) {
    this.approveThreshold = opts.approveThreshold ?? 1;
    this.denyThreshold = opts.denyThreshold ?? 1;
  }

  // ---- access requests ----

  createRequest(partial: Partial<AccessRequest> = {}): AccessRequest {
    const now = new Date();
    const req: AccessRequest = {
      id: partial.id ?? randomUUID(),
      user: partial.user ?? 'alice@example.com',
      roles: partial.roles ?? ['editor'],
      state: partial.state ?? 'PENDING',
      created: partial.created ?? now,
      expires: partial.expires ?? new Date(now.getTime() + 8 * 3600_000),
      resourceExpires: partial.resourceExpires ?? new Date(now.getTime() + 3600_000),
      requestReason: partial.requestReason ?? '',
      resolveReason: partial.resolveReason ?? '',
      reviews: partial.reviews ?? [],
      suggestedReviewers: partial.suggestedReviewers ?? [],
      requestedResources: partial.requestedResources ?? [],
      systemAnnotations: partial.systemAnnotations ?? {},
      loginHint: partial.loginHint ?? '',
      ...(partial.promotedAccessList ? { promotedAccessList: partial.promotedAccessList } : {}),
      ...(partial.requestKind ? { requestKind: partial.requestKind } : {}),
    };
    this.requests.set(req.id, req);
    this.emitRequestPut(req);
    return structuredClone(req);
  }

  private mustGet(id: string): AccessRequest {
    const req = this.requests.get(id);
    if (!req) throw notFound(`access_request "${id}" doesn't exist`);
    return req;
  }

  /** Adds a review; applies the simple thresholds (N approvals → APPROVED, N denials → DENIED). */
  submitReview(
    id: string,
    review: Partial<AccessReview> & { author: string; proposedState: RequestState },
  ): AccessRequest {
    const req = this.mustGet(id);
    if (req.state !== 'PENDING') throw badParameter(`cannot review a request in state ${req.state}`);
    req.reviews.push({
      author: review.author,
      roles: review.roles ?? [],
      proposedState: review.proposedState,
      reason: review.reason ?? '',
      created: review.created ?? new Date(),
      ...(review.promotedAccessListTitle ? { promotedAccessListTitle: review.promotedAccessListTitle } : {}),
      ...(review.submittedBy ? { submittedBy: review.submittedBy } : {}),
      ...(review.onBehalfOfAuthor ? { onBehalfOfAuthor: true } : {}),
    });
    const count = (s: RequestState): number => req.reviews.filter((r) => r.proposedState === s).length;
    if (count('DENIED') >= this.denyThreshold) {
      req.state = 'DENIED';
      req.resolveReason = review.reason ?? '';
    } else if (count('APPROVED') >= this.approveThreshold) {
      req.state = 'APPROVED';
      req.resolveReason = review.reason ?? '';
    } else if (review.proposedState === 'PROMOTED') {
      req.state = 'PROMOTED';
      req.resolveReason = review.reason ?? '';
      req.promotedAccessList = { name: 'promoted', title: review.promotedAccessListTitle ?? 'Promoted list' };
    }
    this.emitRequestPut(req);
    return structuredClone(req);
  }

  setState(id: string, state: RequestState, reason = ''): AccessRequest {
    const req = this.mustGet(id);
    req.state = state;
    req.resolveReason = reason;
    this.emitRequestPut(req);
    return structuredClone(req);
  }

  /** Deletes the request (expiry or manual delete). Its plugin data survives, as in Teleport. */
  deleteRequest(id: string): void {
    this.mustGet(id);
    this.requests.delete(id);
    this.broadcast(KIND_ACCESS_REQUEST, undefined, deleteEvent(KIND_ACCESS_REQUEST, 'v3', id));
  }

  matchesFilter(req: AccessRequest, f: { id?: string; user?: string; state?: RequestState }): boolean {
    if (f.id && req.id !== f.id) return false;
    if (f.user && req.user !== f.user) return false;
    if (f.state && f.state !== 'NONE' && req.state !== f.state) return false;
    return true;
  }

  /** Sorted by key (the request ID), as the backend range reads. */
  listRequests(f: { id?: string; user?: string; state?: RequestState }): AccessRequest[] {
    return [...this.requests.values()]
      .filter((r) => this.matchesFilter(r, f))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .map((r) => structuredClone(r));
  }

  // ---- plugin data ----

  getPluginData(
    kind: string,
    resource: string,
    plugin: string,
  ): Array<{ resource: string; record: PluginDataRecord }> {
    if (kind !== KIND_ACCESS_REQUEST) throw badParameter(`unsupported resource kind "${kind}"`);
    const items = resource
      ? [...(this.pluginData.has(resource) ? [[resource, this.pluginData.get(resource)!] as const] : [])]
      : [...this.pluginData.entries()];
    return items
      .filter(([, record]) => !plugin || record.entries.has(plugin))
      .map(([res, record]) => ({ resource: res, record }));
  }

  updatePluginData(params: {
    kind: string;
    resource: string;
    plugin: string;
    set: Record<string, string>;
    expect: Record<string, string>;
  }): void {
    if (params.kind !== KIND_ACCESS_REQUEST) throw badParameter(`unsupported resource kind "${params.kind}"`);
    if (!params.resource) throw badParameter('missing resource name');
    if (!params.plugin) throw badParameter('missing plugin name');
    let record = this.pluginData.get(params.resource);
    let created = false;
    if (!record) {
      const req = this.requests.get(params.resource);
      if (!req) throw notFound(`access_request "${params.resource}" doesn't exist`);
      const accessExpiry = req.expires ?? new Date();
      record = { entries: new Map(), expires: new Date(accessExpiry.getTime() + 3600_000) };
      created = true;
    }
    const current = record.entries.get(params.plugin) ?? {};
    // An empty map is indistinguishable from unset on the wire, and is not checked.
    for (const [key, expected] of Object.entries(params.expect)) {
      if ((current[key] ?? '') !== expected) throw compareFailed(`expectations not met for field "${key}"`);
    }
    const next = { ...current };
    for (const [key, value] of Object.entries(params.set)) {
      if (value === '') delete next[key];
      else next[key] = value;
    }
    if (Object.keys(next).length === 0) record.entries.delete(params.plugin);
    else record.entries.set(params.plugin, next);
    if (created) this.pluginData.set(params.resource, record);
  }

  // ---- access monitoring rules ----

  putRule(rule: AccessMonitoringRule): void {
    this.rules.set(rule.name, structuredClone(rule));
    this.broadcast(
      KIND_AMR,
      undefined,
      create(EventSchema, {
        Type: Operation.PUT,
        Resource: { case: 'AccessMonitoringRule', value: ruleToProto(rule) },
      }),
    );
  }

  deleteRule(name: string): void {
    if (!this.rules.delete(name)) throw notFound(`access_monitoring_rule "${name}" doesn't exist`);
    this.broadcast(KIND_AMR, undefined, deleteEvent(KIND_AMR, 'v1', name));
  }

  listRules(subjects: string[], notificationName: string): AccessMonitoringRule[] {
    return [...this.rules.values()]
      .filter((r) => subjects.length === 0 || subjects.some((s) => r.subjects.includes(s)))
      .filter((r) => !notificationName || r.notification.name === notificationName)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  // ---- watchers ----

  /**
   * Validates the requested kinds like auth_with_roles NewWatcher and returns the accepted ones.
   * `denied` simulates RBAC refusing a kind.
   */
  acceptKinds(
    kinds: WatchKind[],
    allowPartialSuccess: boolean,
    denied: Set<string>,
    serverVersion = '17.0.0',
  ): WatchKind[] {
    if (kinds.length === 0) throw accessDenied("can't setup global watch");
    // Before 16 the cache has no access_monitoring_rule kind. 13-15 drop it under AllowPartialSuccess;
    // 12 and older know no AllowPartialSuccess and refuse the whole watch (observed on a real Teleport 11).
    const major = Number(/^v?(\d+)/.exec(serverVersion)?.[1] ?? 17);
    const accepted: WatchKind[] = [];
    for (const kind of kinds) {
      if (kind.Kind === KIND_AMR && major < 16) {
        if (major >= 13 && allowPartialSuccess) continue;
        throw badParameter(`cache does not support watching resource ${KIND_AMR}`);
      }
      if (kind.Kind !== KIND_ACCESS_REQUEST && kind.Kind !== KIND_AMR) {
        if (allowPartialSuccess) continue;
        throw badParameter(`watching ${kind.Kind} is not supported by this test server`);
      }
      if (kind.Kind === KIND_ACCESS_REQUEST) {
        for (const key of Object.keys(kind.Filter)) {
          if (!ACCESS_REQUEST_FILTER_KEYS.has(key)) throw badParameter(`unknown filter key "${key}"`);
        }
      }
      if (denied.has(kind.Kind)) {
        if (allowPartialSuccess) continue;
        throw accessDenied(`access denied to perform action "read" on "${kind.Kind}"`);
      }
      accepted.push(kind);
    }
    if (accepted.length === 0)
      throw accessDenied('failed to initialize watcher for all the required resources');
    return accepted;
  }

  private emitRequestPut(req: AccessRequest): void {
    const event = create(EventSchema, {
      Type: Operation.PUT,
      Resource: { case: 'AccessRequest', value: accessRequestToProto(req) },
    });
    this.broadcast(KIND_ACCESS_REQUEST, req, event);
  }

  private broadcast(kind: string, req: AccessRequest | undefined, event: Event): void {
    for (const w of this.watchers) {
      const filter = w.kinds.get(kind);
      if (!filter) continue;
      // Filters apply to PUT events only; DELETEs always pass.
      if (req && kind === KIND_ACCESS_REQUEST && !this.matchesWatchFilter(req, filter)) continue;
      w.send(event);
    }
  }

  private matchesWatchFilter(req: AccessRequest, filter: Record<string, string>): boolean {
    return this.matchesFilter(req, {
      ...(filter.id ? { id: filter.id } : {}),
      ...(filter.user ? { user: filter.user } : {}),
      ...(filter.state ? { state: filter.state as RequestState } : {}),
    });
  }
}

function deleteEvent(kind: string, version: string, name: string): Event {
  return create(EventSchema, {
    Type: Operation.DELETE,
    Resource: {
      case: 'ResourceHeader',
      value: { Kind: kind, Version: version, Metadata: { Name: name, Namespace: 'default' } },
    },
  });
}
