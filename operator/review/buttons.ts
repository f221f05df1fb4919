// The Approve/Deny buttons of a root post: a Mattermost message attachment with two interactive actions.
// The bot cannot read its own integrations back (Mattermost strips them from every GET) and a props
// update replaces all props, so the buttons are rebuilt from our own state on every edit, per channel.
import type { ReviewConfig } from '../config/review.js';
import type { AccessRequest } from '../teleport/api.js';
import { signContext } from './context.js';

/** Whether a root post should carry buttons: review on, still pending, and not a long-term request. */
export function showsButtons(
  review: ReviewConfig | undefined,
  request: AccessRequest | undefined,
  pending: boolean,
): boolean {
  return !!review?.enabled && !!request && pending && request.requestKind !== 'LONG_TERM';
}

export function reviewAttachments(
  review: ReviewConfig,
  requestId: string,
  channelId: string,
  nowMs: number,
): Array<Record<string, unknown>> {
  const action = (id: 'approve' | 'deny', name: string, style: string) => ({
    id,
    type: 'button',
    name,
    style,
    integration: {
      url: review.callbackUrl,
      context: signContext(review.signingKey, requestId, id, channelId, nowMs),
    },
  });
  return [
    {
      fallback: 'Review this request in Teleport',
      actions: [action('approve', 'Approve', 'primary'), action('deny', 'Deny', 'danger')],
    },
  ];
}
