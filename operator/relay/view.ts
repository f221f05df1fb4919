// What the posts show, as the renderer's view (operator/mattermost/render.ts), built from a live
// request or, once it was deleted, from plugin data (which is why upstream stores those fields). Pure.
import { crypto } from '../node-builtins.js';
import type { AccessRequest, PingInfo, ResourceId } from '../teleport/api.js';
import { formatResource, type RequestView } from '../mattermost/render.js';
import type { RequestPluginData, ResolutionTag } from './plugindata.js';

const { createHash } = crypto;

export interface ClusterInfo {
  /** The proxy's public address; empty when the cluster has no advanced workflows (then no link). */
  webProxyAddr: string;
}

/** Upstream uses the proxy address only with AdvancedAccessWorkflows (Enterprise). */
export function clusterInfoFromPing(
  ping: Pick<PingInfo, 'proxyPublicAddr' | 'advancedAccessWorkflows'>,
): ClusterInfo {
  return { webProxyAddr: ping.advancedAccessWorkflows ? ping.proxyPublicAddr : '' };
}

/** The resolution a request's state asks for ('' = pending); undefined for states we do not handle. */
export function resolutionOf(request: AccessRequest): ResolutionTag | undefined {
  switch (request.state) {
    case 'APPROVED':
    case 'DENIED':
    case 'PROMOTED':
      return request.state;
    case 'PENDING':
      return '';
    default:
      return undefined;
  }
}

export function postView(
  request: AccessRequest,
  resolution: ResolutionTag,
  cluster: ClusterInfo,
): RequestView {
  const tag = resolution === '' ? 'PENDING' : resolution;
  const view: RequestView = { request, resolution: { tag } };
  if (tag === 'APPROVED' || tag === 'DENIED' || tag === 'PROMOTED') {
    view.resolution.reason = request.resolveReason;
  }
  if (tag === 'PROMOTED' && request.promotedAccessList?.title) {
    view.resolution.promotedAccessListTitle = request.promotedAccessList.title;
  }
  if (cluster.webProxyAddr) view.webProxyAddr = cluster.webProxyAddr;
  return view;
}

/** Reads `/cluster/kind/name[/sub]` back into a resource id. */
export function parseResourceName(text: string): ResourceId {
  const [, clusterName = '', kind = '', name = '', ...rest] = text.split('/');
  return { clusterName, kind, name, subResourceName: rest.join('/') };
}

/** A request rebuilt from plugin data, for rendering after Teleport deleted it. */
export function requestFromPluginData(requestId: string, data: RequestPluginData): AccessRequest {
  const expires = data.maxDuration ? new Date(data.maxDuration) : undefined;
  return {
    id: requestId,
    user: data.user,
    roles: data.roles,
    state: 'PENDING',
    created: undefined,
    expires: expires && !Number.isNaN(expires.getTime()) ? expires : undefined,
    resourceExpires: undefined,
    requestReason: data.requestReason,
    resolveReason: data.resolveReason,
    reviews: [],
    suggestedReviewers: data.suggestedReviewers ?? [],
    requestedResources: data.resources.map(parseResourceName),
    systemAnnotations: data.systemAnnotations ?? {},
    loginHint: '',
  };
}

/** The request fields upstream keeps in plugin data. */
export function pluginDataFields(
  request: AccessRequest,
): Pick<
  RequestPluginData,
  | 'user'
  | 'roles'
  | 'resources'
  | 'requestReason'
  | 'maxDuration'
  | 'systemAnnotations'
  | 'suggestedReviewers'
> {
  const fields: ReturnType<typeof pluginDataFields> = {
    user: request.user,
    roles: request.roles,
    resources: request.requestedResources.map(formatResource),
    requestReason: request.requestReason,
  };
  if (request.expires && !Number.isNaN(request.expires.getTime())) {
    fields.maxDuration = request.expires.toISOString().replace(/\.\d{3}Z$/, 'Z');
  }
  if (Object.keys(request.systemAnnotations).length > 0) fields.systemAnnotations = request.systemAnnotations;
  if (request.suggestedReviewers.length > 0) fields.suggestedReviewers = request.suggestedReviewers;
  return fields;
}

export function textHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}
