// Plugin data: what the relay stores in Teleport per access request (kind access_request, plugin
// "mattermost"). The upstream keys and encodings are kept exactly, so a deployment of the upstream
// plugin can be replaced by ours (and back) without re-posting; our own keys start with `mm_` and are
// ignored by upstream's decoder.

/** Resolution tags as upstream writes them in `resolution` ('' = unresolved). */
export type ResolutionTag = '' | 'APPROVED' | 'DENIED' | 'EXPIRED' | 'PROMOTED';

export interface SentMessage {
  channelId: string;
  postId: string;
}

export interface RequestPluginData {
  user: string;
  roles: string[];
  /** Upstream stores friendly resource names as a JSON array. */
  resources: string[];
  requestReason: string;
  reviewsCount: number;
  resolution: ResolutionTag;
  resolveReason: string;
  /** spec.Expires of the request, RFC3339. */
  maxDuration?: string;
  systemAnnotations?: Record<string, string[]>;
  suggestedReviewers?: string[];
  loginsByRole?: Record<string, string[]>;
  messages: SentMessage[];
  // --- ours (`mm_*`) ---
  /** Channel ids decided for this request (undefined: not decided yet; upstream data has none). */
  recipients?: string[];
  /** When we began creating root posts (ms): on recovery, search the channels from then on. */
  postIntentAt?: number;
  /** Review index whose replies are being posted, and since when (ms). */
  replyIntent?: { index: number; at: number };
  /** Hash of the text the root posts show, so we edit only when it changes (unset: unknown, edit). */
  renderedHash?: string;
  /** Channels whose root post was recorded after reviews were replied: they still owe those replies. */
  replyBackfill?: string[];
  /** Resolution the requester was told about by direct message ('' = none). */
  requesterNotified?: ResolutionTag;
  /** When we began the requester notice (ms). */
  noticeIntentAt?: number;
}

export const PLUGIN_DATA_KEYS = {
  user: 'user',
  roles: 'roles',
  resources: 'resources',
  requestReason: 'request_reason',
  reviewsCount: 'reviews_count',
  resolution: 'resolution',
  resolveReason: 'resolve_reason',
  maxDuration: 'max_duration',
  systemAnnotations: 'system_annotations',
  suggestedReviewers: 'suggested_reviewers',
  loginsByRole: 'logins_by_role',
  messages: 'messages',
  recipients: 'mm_recipients',
  postIntentAt: 'mm_post_intent_at',
  replyIntent: 'mm_reply_intent',
  renderedHash: 'mm_rendered',
  replyBackfill: 'mm_reply_backfill',
  requesterNotified: 'mm_requester_notified',
  noticeIntentAt: 'mm_notice_intent_at',
} as const;

const K = PLUGIN_DATA_KEYS;
const RESOLUTIONS: ResolutionTag[] = ['', 'APPROVED', 'DENIED', 'EXPIRED', 'PROMOTED'];

export function emptyPluginData(): RequestPluginData {
  return {
    user: '',
    roles: [],
    resources: [],
    requestReason: '',
    reviewsCount: 0,
    resolution: '',
    resolveReason: '',
    messages: [],
  };
}

export function encodeMessages(messages: SentMessage[]): string {
  return messages.map((m) => `${m.channelId}/${m.postId}`).join(',');
}

export function decodeMessages(text: string): SentMessage[] {
  const out: SentMessage[] = [];
  for (const part of text.split(',')) {
    const slash = part.indexOf('/');
    if (slash <= 0 || slash === part.length - 1) continue;
    out.push({ channelId: part.slice(0, slash), postId: part.slice(slash + 1) });
  }
  return out;
}

function jsonOrUndefined<T>(text: string | undefined): T | undefined {
  if (!text) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

function intOrUndefined(text: string | undefined): number | undefined {
  if (!text) return undefined;
  const n = Number(text);
  return Number.isFinite(n) ? n : undefined;
}

/**
 * Encodes every upstream key (empty string when empty, as upstream does) plus our `mm_*` keys.
 * An `mm_*` key that is unset encodes as '' so an update deletes it (Set[k] = '' deletes k).
 */
export function encodePluginData(d: RequestPluginData): Record<string, string> {
  const out: Record<string, string> = {
    [K.user]: d.user,
    [K.roles]: d.roles.join(','),
    [K.resources]: d.resources.length > 0 ? JSON.stringify(d.resources) : '',
    [K.requestReason]: d.requestReason,
    [K.reviewsCount]: d.reviewsCount > 0 ? String(d.reviewsCount) : '',
    [K.resolution]: d.resolution,
    [K.resolveReason]: d.resolveReason,
    [K.messages]: encodeMessages(d.messages),
    [K.maxDuration]: d.maxDuration ?? '',
    [K.systemAnnotations]:
      d.systemAnnotations && Object.keys(d.systemAnnotations).length > 0
        ? JSON.stringify(d.systemAnnotations)
        : '',
    [K.suggestedReviewers]:
      d.suggestedReviewers && d.suggestedReviewers.length > 0 ? JSON.stringify(d.suggestedReviewers) : '',
    [K.loginsByRole]:
      d.loginsByRole && Object.keys(d.loginsByRole).length > 0 ? JSON.stringify(d.loginsByRole) : '',
    // A decided-but-empty recipient list is stored as '-' so it survives (''= deleted key).
    [K.recipients]: d.recipients === undefined ? '' : d.recipients.length ? d.recipients.join(',') : '-',
    [K.postIntentAt]: d.postIntentAt !== undefined ? String(d.postIntentAt) : '',
    [K.replyIntent]: d.replyIntent ? `${d.replyIntent.index}@${d.replyIntent.at}` : '',
    [K.renderedHash]: d.renderedHash ?? '',
    [K.replyBackfill]: d.replyBackfill?.length ? d.replyBackfill.join(',') : '',
    [K.requesterNotified]: d.requesterNotified ?? '',
    [K.noticeIntentAt]: d.noticeIntentAt !== undefined ? String(d.noticeIntentAt) : '',
  };
  return out;
}

/** Decodes our keys, upstream's keys, and the legacy Mattermost keys (`channel_id` + `postID`). */
export function decodePluginData(map: Record<string, string>): RequestPluginData {
  const d = emptyPluginData();
  d.user = map[K.user] ?? '';
  d.roles = (map[K.roles] ?? '').split(',').filter((r) => r !== '');
  d.resources = jsonOrUndefined<string[]>(map[K.resources]) ?? [];
  d.requestReason = map[K.requestReason] ?? '';
  d.reviewsCount = intOrUndefined(map[K.reviewsCount]) ?? 0;
  const resolution = (map[K.resolution] ?? '') as ResolutionTag;
  d.resolution = RESOLUTIONS.includes(resolution) ? resolution : '';
  d.resolveReason = map[K.resolveReason] ?? '';
  if (map[K.maxDuration]) d.maxDuration = map[K.maxDuration];
  const annotations = jsonOrUndefined<Record<string, string[]>>(map[K.systemAnnotations]);
  if (annotations) d.systemAnnotations = annotations;
  const suggested = jsonOrUndefined<string[]>(map[K.suggestedReviewers]);
  if (suggested) d.suggestedReviewers = suggested;
  const logins = jsonOrUndefined<Record<string, string[]>>(map[K.loginsByRole]);
  if (logins) d.loginsByRole = logins;
  d.messages = decodeMessages(map[K.messages] ?? '');
  if (d.messages.length === 0 && map.channel_id) {
    // Legacy layouts: Mattermost's own (channel_id + postID) and the generic one (channel_id + timestamp).
    const postId = map.postID ?? map.timestamp;
    if (postId) d.messages = [{ channelId: map.channel_id, postId }];
  }
  const recipients = map[K.recipients];
  if (recipients) d.recipients = recipients === '-' ? [] : recipients.split(',').filter(Boolean);
  const postIntentAt = intOrUndefined(map[K.postIntentAt]);
  if (postIntentAt !== undefined) d.postIntentAt = postIntentAt;
  const replyIntent = /^(\d+)@(\d+)$/.exec(map[K.replyIntent] ?? '');
  if (replyIntent) d.replyIntent = { index: Number(replyIntent[1]), at: Number(replyIntent[2]) };
  if (map[K.renderedHash]) d.renderedHash = map[K.renderedHash];
  const backfill = (map[K.replyBackfill] ?? '').split(',').filter(Boolean);
  if (backfill.length > 0) d.replyBackfill = backfill;
  const notified = (map[K.requesterNotified] ?? '') as ResolutionTag;
  if (notified && RESOLUTIONS.includes(notified)) d.requesterNotified = notified;
  const noticeAt = intOrUndefined(map[K.noticeIntentAt]);
  if (noticeAt !== undefined) d.noticeIntentAt = noticeAt;
  return d;
}

/** The CAS expectation for "no plugin data yet": every key we write mapped to '' (must be absent). */
export function expectAbsent(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of Object.keys(encodePluginData(emptyPluginData()))) out[key] = '';
  return out;
}

/** Channels we still owe a root post: decided recipients without a recorded message. */
export function pendingChannels(d: RequestPluginData): string[] {
  const done = new Set(d.messages.map((m) => m.channelId));
  return (d.recipients ?? []).filter((c) => !done.has(c));
}
