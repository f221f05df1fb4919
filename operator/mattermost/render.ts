// Pure rendering of the Mattermost messages: the root post per recipient, the thread reply per review,
// and the optional direct message to the requester.
//
// Safety rules for every user-controlled string (reasons, user, role, resource and access-list names):
// - It never notifies anyone. Mattermost only scans markdown Text nodes for @mentions; code spans and
//   fenced code blocks are not Text (reference mattermost-api.md §6.2), so user text is always inside one.
//   A backslash would not help (`\@channel` still notifies).
// - It never changes the layout. Inside code, markdown is not interpreted; what remains is leaving the
//   code early. Every backtick is followed by an invisible U+200B, so no run of two or more backticks
//   exists (no closing fence, no closing multi-backtick span). Line breaks are removed from one-line
//   values (a newline would let the next line become a heading or a list), control and bidi-override
//   characters are dropped (they can disguise text).
// - It is bounded. Each field has its own budget in code points (Mattermost counts runes, not UTF-16
//   units); the sum of all budgets plus the template stays below MAX_POST_RUNES. Cut text is marked
//   with ` (truncated)` outside the code, so a user cannot forge or hide the marker.
import { dict } from '../config/dict.js';
import type { AccessRequest, AccessReview, RequestState, ResourceId } from '../teleport/api.js';

/**
 * The smallest post limit any Mattermost server applies (PostMessageMaxRunesV1; current servers allow
 * 16383). Staying under it keeps every post valid on old and new servers alike.
 */
export const MAX_POST_RUNES = 4000;
/** Upstream's limit for request, resolution and review reasons (lib.MarkdownEscape(text, 500)). */
export const REASON_LIMIT = 500;
/** One name (user, role, access list title). */
export const NAME_LIMIT = 100;
/** Total budget of the roles line and of the resources line. */
export const ROLES_BUDGET = 600;
export const RESOURCES_BUDGET = 900;
/** The proxy address in a link; anything longer or odd is not linked. */
export const ADDR_LIMIT = 200;

export const TRUNCATED_MARK = ' (truncated)';
export const EMPTY_VALUE = '(empty)';

export type ResolutionTag = 'PENDING' | 'APPROVED' | 'DENIED' | 'PROMOTED' | 'EXPIRED';

export interface Resolution {
  tag: ResolutionTag;
  /** The resolve reason (APPROVED/DENIED/PROMOTED). */
  reason?: string;
  /** For PROMOTED: the title of the access list the request was promoted to. */
  promotedAccessListTitle?: string;
}

export interface RequestView {
  request: AccessRequest;
  resolution: Resolution;
  /**
   * The proxy's public address (host:port), given only when the cluster has advanced access workflows:
   * the post then links to https://<addr>/web/requests/<id>. Without it a pending post shows the
   * `tsh request review --approve/--deny <id>` commands, as upstream does.
   */
  webProxyAddr?: string;
}

export const STATUS_EMOJI: Record<ResolutionTag, string> = {
  PENDING: '⏳',
  APPROVED: '✅',
  DENIED: '❌',
  EXPIRED: '⌛',
  // Upstream shows no emoji for PROMOTED; ours marks the hand-over to an access list.
  PROMOTED: '⏫',
};

const REVIEW_EMOJI: Partial<Record<RequestState, string>> = {
  APPROVED: STATUS_EMOJI.APPROVED,
  DENIED: STATUS_EMOJI.DENIED,
  PROMOTED: STATUS_EMOJI.PROMOTED,
};

const ZWSP = '\u200B';
// C0/C1 controls except tab and newline; bidi embeddings, overrides and isolates; BOM.
const UNSAFE_CHARS =
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069\uFEFF]/g;
const LINE_BREAKS = /\r\n|[\r\n\u0085\u2028\u2029\v\f]/g;

/** Number of code points, as Mattermost counts a post (utf8.RuneCountInString). */
export function runeLength(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

/** The first `limit` code points (never splits a surrogate pair). */
function takeRunes(text: string, limit: number): string {
  if (text.length <= limit) return text;
  let out = '';
  let n = 0;
  for (const ch of text) {
    if (n++ >= limit) break;
    out += ch;
  }
  return out;
}

interface Bounded {
  text: string;
  truncated: boolean;
}

/** Removes invisible troublemakers and breaks every backtick run; keeps line breaks as `\n`. */
function neutralize(raw: string): string {
  return raw
    .replace(LINE_BREAKS, '\n')
    .replace(UNSAFE_CHARS, '')
    .replace(/`/g, '`' + ZWSP);
}

function bound(text: string, limit: number): Bounded {
  if (runeLength(text) <= limit) return { text, truncated: false };
  return { text: takeRunes(text, limit).replace(/\s+$/u, ''), truncated: true };
}

/** A one-line value, neutralized, whitespace collapsed and bounded. */
function oneLine(raw: string, limit: number): Bounded {
  const flat = neutralize(raw).replace(/\s+/gu, ' ').trim();
  return bound(flat, limit);
}

/** Wraps neutralized one-line text in a code span that nothing inside can close. */
function codeSpan(text: string): string {
  if (text === '') return EMPTY_VALUE;
  // After neutralize() backtick runs have length 1, so a double-backtick span is always safe; the
  // padding spaces (stripped by the renderer) keep a leading/trailing backtick from joining the fence.
  return text.includes('`') ? '`` ' + text + ' ``' : '`' + text + '`';
}

/** A user-controlled name as inline code, bounded, with the truncation mark outside the code. */
export function inlineValue(raw: string, limit = NAME_LIMIT): string {
  const { text, truncated } = oneLine(raw, limit);
  return codeSpan(text) + (truncated ? TRUNCATED_MARK : '');
}

/**
 * A free-text reason as a markdown field: `**Label**: <code span>` when it is one line, otherwise
 * the label line followed by a fenced code block. Empty reasons render as `(empty)` like upstream.
 */
export function reasonField(label: string, raw: string, limit = REASON_LIMIT): string {
  const cleaned = neutralize(raw)
    .split('\n')
    .map((line) => line.replace(/\s+$/u, ''))
    .join('\n')
    .replace(/^\n+|\n+$/g, '')
    .trim();
  if (!cleaned.includes('\n')) {
    const { text, truncated } = bound(cleaned.replace(/\s+/gu, ' '), limit);
    return `**${label}**: ${codeSpan(text)}${truncated ? TRUNCATED_MARK : ''}`;
  }
  const { text, truncated } = bound(cleaned, limit);
  // The fence starts its own line (a fence after "**Reason**: " would be an inline span that block
  // syntax inside the reason could break), and the text cannot contain a backtick run to close it.
  return `**${label}**:\n\`\`\`text\n${text}\n\`\`\`${truncated ? `\n_${TRUNCATED_MARK.trim()}_` : ''}`;
}

/** A bounded, comma-separated list of inline values with "and N more" when the budget runs out. */
function inlineList(values: string[], budget: number, itemLimit = NAME_LIMIT): string {
  if (values.length === 0) return EMPTY_VALUE;
  const parts: string[] = [];
  let used = 0;
  for (const [i, value] of values.entries()) {
    const part = inlineValue(value, itemLimit);
    const remaining = values.length - i - 1;
    // Reserve room for the "and N more" tail whenever something could still follow.
    const reserve = remaining > 0 ? 20 : 0;
    if (parts.length > 0 && used + runeLength(part) + 2 + reserve > budget) {
      parts.push(`and ${values.length - i} more`);
      break;
    }
    parts.push(part);
    used += runeLength(part) + 2;
  }
  return parts.join(', ');
}

/** `/cluster/kind/name[/sub]`, the form `tsh request create --resource` takes. */
export function formatResource(r: ResourceId): string {
  const path = ['', r.clusterName, r.kind, r.name].join('/');
  return r.subResourceName ? `${path}/${r.subResourceName}` : path;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** Go's time.RFC822 layout (`02 Jan 06 15:04 MST`), as upstream's review reply uses, always in UTC. */
export function formatTime(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return (
    `${pad(date.getUTCDate())} ${MONTHS[date.getUTCMonth()]} ${pad(date.getUTCFullYear() % 100)} ` +
    `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())} UTC`
  );
}

function validDate(d: Date | undefined): d is Date {
  return d instanceof Date && !Number.isNaN(d.getTime()) && d.getTime() > 0;
}

/** Request ids are UUIDs; anything else is shown as code so it cannot carry markdown. */
const SAFE_REQUEST_ID = /^[A-Za-z0-9-]{1,64}$/;
function requestIdValue(id: string): string {
  return SAFE_REQUEST_ID.test(id) ? id : inlineValue(id, 64);
}

/** https://<addr>/web/requests/<id>, or undefined when the address is not a plain host[:port]. */
export function requestLink(webProxyAddr: string | undefined, requestId: string): string | undefined {
  if (!webProxyAddr) return undefined;
  const addr = webProxyAddr
    .trim()
    .replace(/^https?:\/\//i, '')
    .replace(/\/+$/, '');
  const hostPort = /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;
  if (addr.length > ADDR_LIMIT || !hostPort.test(addr)) return undefined;
  // Only plain ids are linked: nothing in them can end the markdown link or need encoding.
  if (!SAFE_REQUEST_ID.test(requestId)) return undefined;
  return `https://${addr}/web/requests/${requestId}`;
}

function tshCommand(decision: 'approve' | 'deny', id: string): string {
  return codeSpan(oneLine(`tsh request review --${decision} ${id}`, 120).text);
}

/** The root post: one per recipient, edited on resolution. Always within MAX_POST_RUNES. */
export function renderRequestPost(view: RequestView): string {
  const { request, resolution } = view;
  const lines: string[] = [];
  if (resolution.tag === 'PENDING') lines.push('*You have new pending request to review!*');
  lines.push(`**User**: ${inlineValue(request.user)}`);
  lines.push(`**Roles**: ${inlineList(request.roles, ROLES_BUDGET)}`);
  if (request.requestedResources.length > 0) {
    lines.push(
      `**Resources**: ${inlineList(request.requestedResources.map(formatResource), RESOURCES_BUDGET, 300)}`,
    );
  }
  lines.push(`**Request ID**: ${requestIdValue(request.id)}`);
  if (request.requestReason.trim()) lines.push(reasonField('Reason', request.requestReason));
  if (resolution.tag === 'PENDING' && validDate(request.resourceExpires)) {
    lines.push(`**Request expires**: ${formatTime(request.resourceExpires)}`);
  }
  if (validDate(request.expires)) lines.push(`**Access expires**: ${formatTime(request.expires)}`);
  lines.push(`**Status**: ${STATUS_EMOJI[resolution.tag]} ${resolution.tag}`);
  if (resolution.tag === 'PROMOTED' && resolution.promotedAccessListTitle?.trim()) {
    lines.push(`**Access list**: ${inlineValue(resolution.promotedAccessListTitle)}`);
  }
  if (resolution.reason?.trim()) lines.push(reasonField('Resolution reason', resolution.reason));
  const link = requestLink(view.webProxyAddr, request.id);
  if (link) {
    lines.push(`**Link**: [${link}](${link})`);
  } else if (resolution.tag === 'PENDING') {
    lines.push(`**Approve**: ${tshCommand('approve', request.id)}`);
    lines.push(`**Deny**: ${tshCommand('deny', request.id)}`);
  }
  return fitPost(lines.join('\n'));
}

/** A thread reply under the root post, one per review. */
export function renderReviewReply(review: AccessReview): string {
  const when = validDate(review.created) ? ` at ${formatTime(review.created)}` : '';
  const emoji = REVIEW_EMOJI[review.proposedState];
  const lines = [
    `${inlineValue(review.author)} reviewed the request${when}.`,
    `**Resolution**: ${emoji ? `${emoji} ` : ''}${review.proposedState}`,
  ];
  if (review.promotedAccessListTitle?.trim()) {
    lines.push(`**Access list**: ${inlineValue(review.promotedAccessListTitle)}`);
  }
  if (review.reason.trim()) lines.push(reasonField('Reason', review.reason));
  return fitPost(lines.join('\n'));
}

/**
 * The thread reply that carries the resolution when Mattermost refuses to edit the root post
 * (ServiceSettings.PostEditTimeLimit): otherwise the post would show PENDING for ever.
 */
export function renderResolutionReply(view: RequestView): string {
  const { resolution } = view;
  const lines = [
    `The request was resolved; this post can no longer be edited to show it.`,
    `**Status**: ${STATUS_EMOJI[resolution.tag]} ${resolution.tag}`,
  ];
  if (resolution.tag === 'PROMOTED' && resolution.promotedAccessListTitle?.trim()) {
    lines.push(`**Access list**: ${inlineValue(resolution.promotedAccessListTitle)}`);
  }
  if (resolution.reason?.trim()) lines.push(reasonField('Resolution reason', resolution.reason));
  return fitPost(lines.join('\n'));
}

/** The direct message to the requester when their request is resolved (config `notify_requester`). */
export function renderRequesterNotice(view: RequestView): string {
  const { request, resolution } = view;
  const verb: Record<ResolutionTag, string> = {
    PENDING: 'is pending review',
    APPROVED: 'was approved',
    DENIED: 'was denied',
    PROMOTED: 'was promoted to an access list',
    EXPIRED: 'expired before it was resolved',
  };
  const lines = [
    `${STATUS_EMOJI[resolution.tag]} Your access request ${verb[resolution.tag]}.`,
    `**Roles**: ${inlineList(request.roles, ROLES_BUDGET)}`,
  ];
  if (request.requestedResources.length > 0) {
    lines.push(
      `**Resources**: ${inlineList(request.requestedResources.map(formatResource), RESOURCES_BUDGET, 300)}`,
    );
  }
  lines.push(`**Request ID**: ${requestIdValue(request.id)}`);
  lines.push(`**Status**: ${STATUS_EMOJI[resolution.tag]} ${resolution.tag}`);
  if (resolution.tag === 'PROMOTED' && resolution.promotedAccessListTitle?.trim()) {
    lines.push(`**Access list**: ${inlineValue(resolution.promotedAccessListTitle)}`);
  }
  if (resolution.reason?.trim()) lines.push(reasonField('Resolution reason', resolution.reason));
  if (resolution.tag === 'APPROVED' && validDate(request.expires)) {
    lines.push(`**Access expires**: ${formatTime(request.expires)}`);
  }
  const link = requestLink(view.webProxyAddr, request.id);
  if (link) lines.push(`**Link**: [${link}](${link})`);
  return fitPost(lines.join('\n'));
}

/**
 * Last line of defence: the budgets above already keep every post below the limit (the unit tests
 * check the worst case), but should a template change break that, cut whole lines and say so rather
 * than have Mattermost reject the post with a 400 forever.
 */
function fitPost(message: string): string {
  if (runeLength(message) <= MAX_POST_RUNES) return message;
  const tail = `\n_(message truncated to fit Mattermost's limit)_`;
  const kept: string[] = [];
  let used = runeLength(tail);
  let openFence = false;
  for (const line of message.split('\n')) {
    const cost = runeLength(line) + 1;
    if (used + cost + 4 > MAX_POST_RUNES) break;
    kept.push(line);
    used += cost;
    if (line === '```' || line.startsWith('```text')) openFence = !openFence;
  }
  if (openFence) kept.push('```');
  return kept.join('\n') + tail;
}

/**
 * Reads the `**Label**: value` fields of a rendered message back into plain strings: code delimiters,
 * invisible separators and block fences removed, `(truncated)` kept as a suffix. For tests, the demo
 * transcript and crash recovery (matching a post to its request).
 */
export function parsePostFields(message: string): Record<string, string> {
  const fields = dict<string>();
  const lines = message.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^\*\*([A-Za-z ]+)\*\*:(?: (.*))?$/.exec(lines[i] ?? '');
    if (!m) continue;
    const label = m[1] as string;
    const value = m[2];
    if (value === undefined && lines[i + 1] === '```text') {
      const body: string[] = [];
      let j = i + 2;
      while (j < lines.length && lines[j] !== '```') body.push(lines[j++] as string);
      let text = body.join('\n');
      if (lines[j + 1] === `_${TRUNCATED_MARK.trim()}_`) {
        text += TRUNCATED_MARK;
        j++;
      }
      fields[label] = unescapeCode(text);
      i = j;
    } else if (value !== undefined) {
      fields[label] = unescapeCode(stripCodeSpans(value));
    }
  }
  return fields;
}

function stripCodeSpans(value: string): string {
  return value.replace(/`` (.*?) ``|`([^`]*)`/g, (_all, double: string | undefined, single: string) =>
    double !== undefined ? double : single,
  );
}

function unescapeCode(text: string): string {
  return text.split('`' + ZWSP).join('`');
}
