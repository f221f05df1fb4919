// The signed context of an Approve/Deny button. Mattermost hands the stored context back on every click,
// re-encoded (keys sorted, <>& escaped, numbers may lose precision), so the MAC is computed over the
// string values in a fixed order, never over raw JSON. The values are only strings.
import { crypto } from '../node-builtins.js';

const { createHmac, timingSafeEqual } = crypto;

export const REVIEW_ACTIONS = ['approve', 'deny'] as const;
export type ReviewAction = (typeof REVIEW_ACTIONS)[number];

export interface ButtonContext {
  request_id: string;
  action: string;
  channel_id: string;
  /** Unix milliseconds, as a decimal string. */
  issued_at: string;
  mac: string;
}

const DOMAIN = 'teleport-plugin-mattermost/review-button/v1';

function macOf(key: Buffer, c: Omit<ButtonContext, 'mac'>): Buffer {
  // JSON of an array of strings is unambiguous (no separator injection), and we build it ourselves.
  const payload = JSON.stringify([DOMAIN, c.request_id, c.action, c.channel_id, c.issued_at]);
  return createHmac('sha256', key).update(payload).digest();
}

export function signContext(
  key: Buffer,
  requestId: string,
  action: ReviewAction,
  channelId: string,
  issuedAtMs: number,
): ButtonContext {
  const c = { request_id: requestId, action, channel_id: channelId, issued_at: String(issuedAtMs) };
  return { ...c, mac: macOf(key, c).toString('base64url') };
}

/** The context if it is well-formed and its MAC verifies (constant-time); otherwise undefined. */
export function verifyContext(key: Buffer, raw: unknown): ButtonContext | undefined {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return undefined;
  const r = raw as Record<string, unknown>;
  const fields = ['request_id', 'action', 'channel_id', 'issued_at', 'mac'] as const;
  if (!fields.every((f) => typeof r[f] === 'string' && (r[f] as string).length <= 256)) return undefined;
  const c = Object.fromEntries(fields.map((f) => [f, r[f]])) as unknown as ButtonContext;
  const expected = macOf(key, c);
  const given = Buffer.from(c.mac, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  return c;
}

export function isReviewAction(a: string): a is ReviewAction {
  return (REVIEW_ACTIONS as readonly string[]).includes(a);
}
