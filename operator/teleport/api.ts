// The Teleport API surface the relay and the operator depend on, in plain TypeScript types.
// operator/teleport/client.ts implements TeleportApi over gRPC; tests may implement it in memory.

export type RequestState = 'NONE' | 'PENDING' | 'APPROVED' | 'DENIED' | 'PROMOTED';

export interface ResourceId {
  clusterName: string;
  kind: string;
  name: string;
  subResourceName: string;
}

export interface AccessReview {
  author: string;
  roles: string[];
  proposedState: RequestState;
  reason: string;
  /** undefined when the wire carried Go's zero time (0001-01-01). */
  created: Date | undefined;
  promotedAccessListTitle?: string;
  /** The identity (e.g. a plugin) that submitted the review on the author's behalf (set by Auth). */
  submittedBy?: string;
  /** Submitted by a plugin on behalf of `author` (field 12). */
  onBehalfOfAuthor?: boolean;
}

/** AccessRequestSpecV3.RequestKind: only the Web UI sets SHORT_TERM / LONG_TERM; tsh and tctl leave it UNDEFINED. */
export type AccessRequestKind = 'UNDEFINED' | 'SHORT_TERM' | 'LONG_TERM';

export interface AccessRequest {
  /** metadata.Name: the request UUID. */
  id: string;
  user: string;
  roles: string[];
  state: RequestState;
  created: Date | undefined;
  /** spec.Expires: the max lifetime of access granted by the request. */
  expires: Date | undefined;
  /** metadata.Expires: when the pending request itself expires (then Teleport deletes it). */
  resourceExpires: Date | undefined;
  requestReason: string;
  resolveReason: string;
  reviews: AccessReview[];
  suggestedReviewers: string[];
  requestedResources: ResourceId[];
  systemAnnotations: Record<string, string[]>;
  loginHint: string;
  promotedAccessList?: { name: string; title: string };
  /** Absent means UNDEFINED. A LONG_TERM request is never reviewed from Mattermost. */
  requestKind?: AccessRequestKind;
}

export interface AccessMonitoringRule {
  name: string;
  subjects: string[];
  states: string[];
  condition: string;
  notification: { name: string; recipients: string[] };
}

export type WatchEvent =
  | { type: 'INIT' }
  /** The stream failed; the client is reconnecting (INIT follows when it is back). */
  | { type: 'DOWN'; reason: string }
  | { type: 'PUT'; request: AccessRequest }
  | { type: 'DELETE'; requestId: string }
  | { type: 'RULE_PUT'; rule: AccessMonitoringRule }
  | { type: 'RULE_DELETE'; name: string };

export interface PingInfo {
  clusterName: string;
  serverVersion: string;
  proxyPublicAddr: string;
  advancedAccessWorkflows: boolean;
  accessMonitoringConfigured: boolean;
}

export interface ListAccessRequestsFilter {
  id?: string;
  user?: string;
  state?: RequestState;
}

export type WatchKindName = 'access_request' | 'access_monitoring_rule';

export interface TeleportApi {
  ping(): Promise<PingInfo>;
  /**
   * Watches events forever: the first event is INIT; after any disconnect the client reconnects with
   * backoff and yields INIT again, so the caller resyncs (lists) on every INIT. Ends only when `signal` aborts.
   */
  watch(kinds: WatchKindName[], signal: AbortSignal): AsyncIterable<WatchEvent>;
  /** All requests matching the filter (pagination handled inside). */
  listAccessRequests(filter?: ListAccessRequestsFilter): Promise<AccessRequest[]>;
  /** The plugin's data for one request, or undefined when there is none. */
  getPluginData(requestId: string, plugin: string): Promise<Record<string, string> | undefined>;
  /**
   * Compare-and-swap: `expect` (when given) must match current data; keys mapped to '' mean "must be absent".
   * Throws TeleportError kind 'CompareFailed' on mismatch, 'NotFound' when the request does not exist.
   */
  updatePluginData(
    requestId: string,
    plugin: string,
    set: Record<string, string>,
    expect?: Record<string, string>,
  ): Promise<void>;
  listAccessMonitoringRules(notificationName: string): Promise<AccessMonitoringRule[]>;
  close(): void;
}

export interface TeleportUser {
  name: string;
  roles: string[];
  traits: Record<string, string[]>;
}

export interface ReviewSubmission {
  requestId: string;
  /** The human Teleport user the review is submitted for. */
  author: string;
  proposedState: 'APPROVED' | 'DENIED';
  reason: string;
}

/** What native reviews (operator/review) need from Teleport, on top of TeleportApi. */
export interface TeleportReviewApi {
  /** One request by ID, or undefined when Teleport has none (deleted, expired). */
  getAccessRequest(id: string): Promise<AccessRequest | undefined>;
  /** SubmitAccessReview with submitted_on_behalf_of_author = true; returns the updated request. */
  submitReviewOnBehalf(submission: ReviewSubmission): Promise<AccessRequest>;
  /** One page of users (teleport.users.v1 ListUsers, no filter). */
  listUsers(pageToken: string, pageSize: number): Promise<{ users: TeleportUser[]; nextPageToken: string }>;
  /** A user by exact name, or undefined when there is none. */
  getUser(name: string): Promise<TeleportUser | undefined>;
}

export type TeleportErrorKind =
  | 'NotFound'
  | 'AlreadyExists'
  | 'CompareFailed'
  | 'AccessDenied'
  | 'BadParameter'
  | 'LimitExceeded'
  | 'Unavailable'
  | 'NotImplemented'
  | 'Unknown';

export class TeleportError extends Error {
  constructor(
    readonly kind: TeleportErrorKind,
    message: string,
    readonly grpcCode?: number,
  ) {
    super(message);
    this.name = `TeleportError(${kind})`;
  }
}

export function isTeleportError(err: unknown, kind?: TeleportErrorKind): err is TeleportError {
  return err instanceof TeleportError && (kind === undefined || err.kind === kind);
}
