// One click on an Approve/Deny button, from Mattermost's unsigned callback to a review in Teleport.
// Nothing in the body is trusted until checked, cheapest first, so forgeries cost no Teleport call:
//   1. trigger_id: Mattermost's ECDSA signature binds the clicking user id and a time (who and when);
//   2. the client trigger id is seen once (a repeated or replayed click is refused);
//   3. the context MAC (our key), a known action, an issued-at within the bound, the body's channel;
//   4. the post is one we recorded for that request, in that channel (Mattermost's own channel check
//      was seen to be bypassable with a cookie from another post);
//   5. the request exists, is PENDING and not LONG_TERM (Auth does not stop approving long-term ones);
//   6. the Mattermost user maps to exactly one Teleport user;
//   7. SubmitAccessReview on behalf of that user; Auth applies the user's own review rights.
// Every outcome has its own ephemeral text; the thread reply and the post edit come through the watcher.
import type { Logger } from '../observability/logger.js';
import type { ReviewConfig } from '../config/review.js';
import { PLUGIN_NAME } from '../config/defaults.js';
import { decodePluginData } from '../relay/plugindata.js';
import { isTeleportError, type TeleportApi, type TeleportReviewApi } from '../teleport/api.js';
import { isReviewAction, verifyContext } from './context.js';
import type { ReviewMattermost } from './mattermost.js';
import { verifyTriggerId } from './trigger.js';
import type { UserMapper } from './users.js';

export type ClickOutcome =
  | 'approved'
  | 'denied'
  | 'unverified'
  | 'expired_click'
  | 'repeated'
  | 'forged_context'
  | 'unknown_action'
  | 'stale_button'
  | 'not_our_post'
  | 'resolved'
  | 'long_term'
  | 'no_user'
  | 'ambiguous_user'
  | 'no_permission'
  | 'already_reviewed'
  | 'unsupported'
  | 'unavailable'
  | 'timeout';

export const EPHEMERAL_TEXT: Record<ClickOutcome, string> = {
  approved: 'Your approval was recorded in Teleport.',
  denied: 'Your denial was recorded in Teleport.',
  unverified: 'This click could not be verified, so it was ignored. Please click the button again.',
  expired_click: 'This click arrived too late and was ignored. Please click the button again.',
  repeated: 'This click was already handled.',
  forged_context: 'This button could not be verified, so the click was ignored.',
  unknown_action: 'Unknown action; the click was ignored.',
  stale_button: 'This button is too old. Please review the request in Teleport.',
  not_our_post: 'This button does not belong to this request message; the click was ignored.',
  resolved: 'This request has already been resolved or has expired.',
  long_term: 'Long-term access requests cannot be reviewed from Mattermost. Please review it in Teleport.',
  no_user:
    'Your Mattermost account is not linked to a Teleport user, so you cannot review from Mattermost. Ask your Teleport admin to link it.',
  ambiguous_user:
    'Your Mattermost account is linked to more than one Teleport user, so the click was refused. Ask your Teleport admin to fix the link.',
  no_permission: 'You do not have permission to review this request in Teleport.',
  already_reviewed: 'You have already reviewed this request.',
  unsupported:
    'This Teleport cluster does not accept reviews submitted from Mattermost. Please review the request in Teleport.',
  unavailable:
    'Teleport (or Mattermost) could not be reached; your review was not recorded. Please try again later.',
  timeout:
    'Teleport did not answer in time; your review may or may not be recorded. Check the request before clicking again.',
};

export interface ClickBody {
  user_id?: unknown;
  user_name?: unknown;
  channel_id?: unknown;
  post_id?: unknown;
  trigger_id?: unknown;
  context?: unknown;
}

export interface ClickHandlerDeps {
  review: () => ReviewConfig;
  teleport: Pick<TeleportApi, 'getPluginData'> &
    Pick<TeleportReviewApi, 'getAccessRequest' | 'submitReviewOnBehalf'>;
  mattermost: ReviewMattermost;
  users: UserMapper;
  logger: Logger;
  /** Called once per click with its outcome (metrics). */
  onOutcome?: (outcome: ClickOutcome) => void;
  /** Lifetime of a signed trigger_id (Mattermost's OutgoingIntegrationRequestsTimeout, 30 s by default). */
  triggerMaxAgeMs?: number;
  /** How old a button's signed context may be (buttons are re-signed on every edit). */
  buttonMaxAgeMs?: number;
  now?: () => number;
}

export const DEFAULT_TRIGGER_MAX_AGE_MS = 30_000;
/** Longer than any pending request lives (Teleport caps the pending TTL at a week). */
export const DEFAULT_BUTTON_MAX_AGE_MS = 8 * 24 * 3600_000;
export const REVIEW_REASON = 'via Mattermost';

interface ClickFacts {
  mattermostUser: string;
  teleportUser?: string;
  request?: string;
  decision?: string;
}

export class ClickHandler {
  private readonly seen = new Map<string, number>();

  constructor(private readonly deps: ClickHandlerDeps) {}

  private now(): number {
    return this.deps.now ? this.deps.now() : Date.now();
  }

  /** Handles one click; never throws. One log line per click, never the key. */
  async handle(body: ClickBody): Promise<{ outcome: ClickOutcome; ephemeralText: string }> {
    const facts: ClickFacts = { mattermostUser: typeof body.user_id === 'string' ? body.user_id : '' };
    let outcome: ClickOutcome;
    try {
      outcome = await this.decide(body, facts);
    } catch (err) {
      outcome = lookupFailure(err);
      this.deps.logger.warn('Review click failed', {
        error: (err as Error).message,
        ...(outcome === 'unsupported'
          ? {
              hint: "Teleport refused a read the buttons need: the plugin's role needs list/read on user and access_request (Teleport 18.11+)",
            }
          : {}),
      });
    }
    this.deps.onOutcome?.(outcome);
    this.deps.logger.info('Review click', {
      mattermost_user: facts.mattermostUser,
      teleport_user: facts.teleportUser ?? '',
      request: facts.request ?? '',
      decision: facts.decision ?? '',
      outcome,
    });
    return { outcome, ephemeralText: EPHEMERAL_TEXT[outcome] };
  }

  /** The clicker's client trigger id when Mattermost's signature holds, else the refusal. */
  private async verifyClicker(
    body: ClickBody,
    userId: string,
  ): Promise<{ clientTriggerId: string } | { refused: ClickOutcome }> {
    const maxAge = this.deps.triggerMaxAgeMs ?? DEFAULT_TRIGGER_MAX_AGE_MS;
    const key = await this.deps.mattermost.signingKey();
    let check = verifyTriggerId(body.trigger_id, userId, key, maxAge, this.now());
    if (!check.ok && check.reason === 'signature') {
      // Mattermost may have a new key (its Systems table was reset): look once more, rate-limited.
      const fresh = await this.deps.mattermost.signingKey(true);
      check = verifyTriggerId(body.trigger_id, userId, fresh, maxAge, this.now());
    }
    if (check.ok) return { clientTriggerId: check.clientTriggerId };
    return { refused: check.reason === 'expired' ? 'expired_click' : 'unverified' };
  }

  /** Remembers a client trigger id for as long as its trigger_id is valid; false when seen before. */
  private firstTime(clientTriggerId: string): boolean {
    const now = this.now();
    if (this.seen.size > 10_000) {
      for (const [id, until] of this.seen) if (until < now) this.seen.delete(id);
    }
    const until = this.seen.get(clientTriggerId);
    if (until !== undefined && until >= now) return false;
    this.seen.set(
      clientTriggerId,
      now + 2 * (this.deps.triggerMaxAgeMs ?? DEFAULT_TRIGGER_MAX_AGE_MS) + 60_000,
    );
    return true;
  }

  private async decide(body: ClickBody, facts: ClickFacts): Promise<ClickOutcome> {
    const userId = facts.mattermostUser;
    if (!userId || typeof body.post_id !== 'string' || typeof body.channel_id !== 'string')
      return 'unverified';
    const clicker = await this.verifyClicker(body, userId);
    if ('refused' in clicker) return clicker.refused;
    if (!this.firstTime(clicker.clientTriggerId)) return 'repeated';

    const ctx = verifyContext(this.deps.review().signingKey, body.context);
    if (!ctx) return 'forged_context';
    facts.request = ctx.request_id;
    facts.decision = ctx.action;
    if (!isReviewAction(ctx.action)) return 'unknown_action';
    const issuedAt = Number(ctx.issued_at);
    const maxButtonAge = this.deps.buttonMaxAgeMs ?? DEFAULT_BUTTON_MAX_AGE_MS;
    if (!Number.isFinite(issuedAt) || this.now() - issuedAt > maxButtonAge) return 'stale_button';
    if (ctx.channel_id !== body.channel_id) return 'not_our_post';

    const data = await this.deps.teleport.getPluginData(ctx.request_id, PLUGIN_NAME);
    const messages = data ? decodePluginData(data).messages : [];
    if (!messages.some((m) => m.postId === body.post_id && m.channelId === ctx.channel_id)) {
      return 'not_our_post';
    }

    const request = await this.deps.teleport.getAccessRequest(ctx.request_id);
    if (!request || request.state !== 'PENDING') return 'resolved';
    if (request.requestKind === 'LONG_TERM') return 'long_term';

    const match = await this.deps.users.resolve(userId);
    if (match.kind === 'none') return 'no_user';
    if (match.kind === 'ambiguous') return 'ambiguous_user';
    facts.teleportUser = match.name;
    return this.submit(ctx.request_id, match.name, ctx.action);
  }

  private async submit(requestId: string, author: string, action: 'approve' | 'deny'): Promise<ClickOutcome> {
    try {
      await this.deps.teleport.submitReviewOnBehalf({
        requestId,
        author,
        proposedState: action === 'approve' ? 'APPROVED' : 'DENIED',
        reason: REVIEW_REASON,
      });
      return action === 'approve' ? 'approved' : 'denied';
    } catch (err) {
      return classifySubmitError(err);
    }
  }
}

/**
 * A read before the review failed (plugin data, the request, the users, Mattermost's key). A Teleport that
 * lacks the call or refuses it will not change by retrying: say the cluster does not support it.
 */
export function lookupFailure(err: unknown): ClickOutcome {
  if (isTeleportError(err, 'NotImplemented') || isTeleportError(err, 'AccessDenied')) return 'unsupported';
  return 'unavailable';
}

/** Teleport says "already reviewed", "already resolved" and "no rights" all as AccessDenied: read the text. */
export function classifySubmitError(err: unknown): ClickOutcome {
  const message = err instanceof Error ? err.message : String(err);
  if (isTeleportError(err, 'NotFound')) return 'resolved';
  if (isTeleportError(err, 'AccessDenied')) {
    if (/has already reviewed this request/.test(message)) return 'already_reviewed';
    if (/has been already (approved|denied|promoted)/.test(message)) return 'resolved';
    if (/cannot submit reviews on behalf of/.test(message)) return 'unsupported';
    return 'no_permission';
  }
  if (
    isTeleportError(err, 'BadParameter') &&
    /already|uninitialized|does not support reviews/.test(message)
  ) {
    return 'resolved';
  }
  return 'unavailable';
}
