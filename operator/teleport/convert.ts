// Pure conversions between the generated protobuf messages and the plain types of api.ts.
// Go's non-nullable stdtime fields carry 0001-01-01T00:00:00Z when unset; that maps to undefined.
import { dict } from '../config/dict.js';
import { create } from '@bufbuild/protobuf';
import { timestampDate, timestampFromDate, TimestampSchema } from '@bufbuild/protobuf/wkt';
import type { Timestamp } from '@bufbuild/protobuf/wkt';
import type {
  AccessMonitoringRule,
  AccessRequest,
  AccessRequestKind,
  AccessReview,
  ListAccessRequestsFilter,
  PingInfo,
  RequestState,
  TeleportUser,
  WatchEvent,
} from './api.js';
import type { AccessMonitoringRule as PbRule } from './gen/teleport/accessmonitoringrules/v1/access_monitoring_rules_pb.js';
import { AccessMonitoringRuleSchema } from './gen/teleport/accessmonitoringrules/v1/access_monitoring_rules_pb.js';
import { Operation } from './gen/teleport/legacy/client/proto/authservice_pb.js';
import type { Event, PingResponse } from './gen/teleport/legacy/client/proto/authservice_pb.js';
import {
  AccessRequestFilterSchema,
  AccessRequestKind as PbKind,
  AccessRequestV3Schema,
  RequestState as PbState,
  UserV2Schema,
} from './gen/teleport/legacy/types/types_pb.js';
import type {
  AccessRequestV3,
  AccessReview as PbReview,
  UserV2,
} from './gen/teleport/legacy/types/types_pb.js';
import type { LabelValues } from './gen/teleport/legacy/types/wrappers/wrappers_pb.js';

/** Seconds of 0001-01-01T00:00:00Z, Go's zero time.Time. */
export const GO_ZERO_TIME_SECONDS = -62135596800n;

export function dateFromTimestamp(ts: Timestamp | undefined): Date | undefined {
  if (!ts || ts.seconds <= GO_ZERO_TIME_SECONDS) return undefined;
  return timestampDate(ts);
}

/** Go emits non-nullable times always; unset ones are the zero time. */
export function timestampOrGoZero(d: Date | undefined): Timestamp {
  return d ? timestampFromDate(d) : create(TimestampSchema, { seconds: GO_ZERO_TIME_SECONDS, nanos: 0 });
}

const STATE_NAMES: Record<number, RequestState> = {
  [PbState.NONE]: 'NONE',
  [PbState.PENDING]: 'PENDING',
  [PbState.APPROVED]: 'APPROVED',
  [PbState.DENIED]: 'DENIED',
  [PbState.PROMOTED]: 'PROMOTED',
};

export function stateFromProto(state: PbState): RequestState {
  return STATE_NAMES[state] ?? 'NONE';
}

export function stateToProto(state: RequestState): PbState {
  return PbState[state];
}

export function labelValuesToRecord(lv: LabelValues | undefined): Record<string, string[]> {
  return dict(Object.entries(lv?.Values ?? {}).map(([k, v]) => [k, [...v.Values]] as const));
}

function reviewFromProto(r: PbReview): AccessReview {
  return {
    author: r.Author,
    roles: [...r.Roles],
    proposedState: stateFromProto(r.ProposedState),
    reason: r.Reason,
    created: dateFromTimestamp(r.Created),
    ...(r.accessList?.Title ? { promotedAccessListTitle: r.accessList.Title } : {}),
    ...(r.SubmittedBy ? { submittedBy: r.SubmittedBy } : {}),
    ...(r.submittedOnBehalfOfAuthor ? { onBehalfOfAuthor: true } : {}),
  };
}

const KIND_NAMES: Record<number, AccessRequestKind> = {
  [PbKind.UNDEFINED]: 'UNDEFINED',
  [PbKind.SHORT_TERM]: 'SHORT_TERM',
  [PbKind.LONG_TERM]: 'LONG_TERM',
};

export function userFromProto(u: UserV2): TeleportUser {
  return {
    name: u.Metadata?.Name ?? '',
    roles: [...(u.Spec?.Roles ?? [])],
    traits: labelValuesToRecord(u.Spec?.Traits),
  };
}

export function userToProto(u: TeleportUser): UserV2 {
  return create(UserV2Schema, {
    Kind: 'user',
    Version: 'v2',
    Metadata: { Name: u.name, Namespace: 'default' },
    Spec: { Roles: u.roles, Traits: labelValues(u.traits) },
  });
}

export function accessRequestFromProto(req: AccessRequestV3): AccessRequest {
  const spec = req.Spec;
  return {
    id: req.Metadata?.Name ?? '',
    user: spec?.User ?? '',
    roles: [...(spec?.Roles ?? [])],
    state: stateFromProto(spec?.State ?? PbState.NONE),
    created: dateFromTimestamp(spec?.Created),
    expires: dateFromTimestamp(spec?.Expires),
    resourceExpires: dateFromTimestamp(req.Metadata?.Expires),
    requestReason: spec?.RequestReason ?? '',
    resolveReason: spec?.ResolveReason ?? '',
    reviews: (spec?.Reviews ?? []).map(reviewFromProto),
    suggestedReviewers: [...(spec?.SuggestedReviewers ?? [])],
    requestedResources: (spec?.RequestedResourceIDs ?? []).map((r) => ({
      clusterName: r.ClusterName,
      kind: r.Kind,
      name: r.Name,
      subResourceName: r.SubResourceName,
    })),
    systemAnnotations: labelValuesToRecord(spec?.SystemAnnotations),
    loginHint: spec?.LoginHint ?? '',
    ...(spec?.accessList && (spec.accessList.Name || spec.accessList.Title)
      ? { promotedAccessList: { name: spec.accessList.Name, title: spec.accessList.Title } }
      : {}),
    ...(spec?.RequestKind ? { requestKind: KIND_NAMES[spec.RequestKind] ?? 'UNDEFINED' } : {}),
  };
}

const labelValues = (rec: Record<string, string[]>): { Values: Record<string, { Values: string[] }> } => ({
  Values: Object.fromEntries(Object.entries(rec).map(([k, v]) => [k, { Values: v }])),
});

/** The wire form Teleport sends (used by the test server; also round-trip tested). */
export function accessRequestToProto(req: AccessRequest): AccessRequestV3 {
  return create(AccessRequestV3Schema, {
    Kind: 'access_request',
    Version: 'v3',
    Metadata: {
      Name: req.id,
      Namespace: 'default',
      ...(req.resourceExpires ? { Expires: timestampFromDate(req.resourceExpires) } : {}),
    },
    Spec: {
      User: req.user,
      Roles: req.roles,
      State: stateToProto(req.state),
      Created: timestampOrGoZero(req.created),
      Expires: timestampOrGoZero(req.expires),
      RequestReason: req.requestReason,
      ResolveReason: req.resolveReason,
      ResolveAnnotations: { Values: {} },
      SystemAnnotations: labelValues(req.systemAnnotations),
      Reviews: req.reviews.map((r) => ({
        Author: r.author,
        Roles: r.roles,
        ProposedState: stateToProto(r.proposedState),
        Reason: r.reason,
        Created: timestampOrGoZero(r.created),
        ...(r.promotedAccessListTitle ? { accessList: { Title: r.promotedAccessListTitle } } : {}),
        SubmittedBy: r.submittedBy ?? '',
        submittedOnBehalfOfAuthor: r.onBehalfOfAuthor ?? false,
      })),
      SuggestedReviewers: req.suggestedReviewers,
      RequestedResourceIDs: req.requestedResources.map((r) => ({
        ClusterName: r.clusterName,
        Kind: r.kind,
        Name: r.name,
        SubResourceName: r.subResourceName,
      })),
      LoginHint: req.loginHint,
      MaxDuration: timestampOrGoZero(undefined),
      SessionTTL: timestampOrGoZero(undefined),
      ...(req.promotedAccessList
        ? { accessList: { Name: req.promotedAccessList.name, Title: req.promotedAccessList.title } }
        : {}),
      RequestKind: PbKind[req.requestKind ?? 'UNDEFINED'],
    },
  });
}

export function accessRequestFilterToProto(filter: ListAccessRequestsFilter = {}) {
  return create(AccessRequestFilterSchema, {
    ID: filter.id ?? '',
    User: filter.user ?? '',
    State: filter.state ? stateToProto(filter.state) : PbState.NONE,
  });
}

export function ruleFromProto(rule: PbRule): AccessMonitoringRule {
  return {
    name: rule.metadata?.name ?? '',
    subjects: [...(rule.spec?.subjects ?? [])],
    states: [...(rule.spec?.states ?? [])],
    condition: rule.spec?.condition ?? '',
    notification: {
      name: rule.spec?.notification?.name ?? '',
      recipients: [...(rule.spec?.notification?.recipients ?? [])],
    },
  };
}

export function ruleToProto(rule: AccessMonitoringRule): PbRule {
  return create(AccessMonitoringRuleSchema, {
    metadata: { name: rule.name },
    kind: 'access_monitoring_rule',
    version: 'v1',
    spec: {
      subjects: rule.subjects,
      states: rule.states,
      condition: rule.condition,
      notification: { name: rule.notification.name, recipients: rule.notification.recipients },
    },
  });
}

export function pingFromProto(p: PingResponse): PingInfo {
  return {
    clusterName: p.ClusterName,
    serverVersion: p.ServerVersion,
    proxyPublicAddr: p.ProxyPublicAddr,
    advancedAccessWorkflows: p.ServerFeatures?.AdvancedAccessWorkflows ?? false,
    accessMonitoringConfigured: p.ServerFeatures?.AccessMonitoringConfigured ?? false,
  };
}

/**
 * Maps a wire event to the caller's event; undefined for kinds the caller did not ask for
 * (e.g. a DELETE of another kind). INIT is mapped by the watch loop itself.
 */
export function watchEventFromProto(ev: Event): WatchEvent | undefined {
  if (ev.Type === Operation.INIT) return { type: 'INIT' };
  const r = ev.Resource;
  if (ev.Type === Operation.PUT) {
    if (r.case === 'AccessRequest') return { type: 'PUT', request: accessRequestFromProto(r.value) };
    if (r.case === 'AccessMonitoringRule') return { type: 'RULE_PUT', rule: ruleFromProto(r.value) };
    return undefined;
  }
  if (ev.Type === Operation.DELETE && r.case === 'ResourceHeader') {
    const name = r.value.Metadata?.Name ?? '';
    if (r.value.Kind === 'access_request') return { type: 'DELETE', requestId: name };
    if (r.value.Kind === 'access_monitoring_rule') return { type: 'RULE_DELETE', name };
  }
  return undefined;
}
