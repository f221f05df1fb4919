// Wires native reviews into the watcher: with [review] enabled, the click listener on its own port.
import type { PluginConfig } from '../config/types.js';
import { Counter, type Registry } from '../observability/metrics.js';
import { registerSecret, type Logger } from '../observability/logger.js';
import type { TeleportApi, TeleportReviewApi } from '../teleport/api.js';
import { ClickHandler, type ClickHandlerDeps } from './handler.js';
import { reviewMattermost, type ReviewMattermost } from './mattermost.js';
import { startReviewListener, type ReviewListener } from './server.js';
import { UserMapper } from './users.js';

export type { ReviewListener } from './server.js';

function hasReviewApi(t: TeleportApi): t is TeleportApi & TeleportReviewApi {
  const r = t as Partial<TeleportReviewApi>;
  return typeof r.submitReviewOnBehalf === 'function' && typeof r.listUsers === 'function';
}

export interface ReviewOverrides {
  mattermost?: ReviewMattermost;
  handler?: Partial<Pick<ClickHandlerDeps, 'triggerMaxAgeMs' | 'buttonMaxAgeMs' | 'now'>>;
  userCacheTtlMs?: number;
  /** How long the listener waits for the outcome before answering "may or may not be recorded". */
  answerDeadlineMs?: number;
}

/** Starts the click listener when [review] is enabled; undefined otherwise. */
export async function startReview(
  config: () => PluginConfig,
  teleport: TeleportApi,
  logger: Logger,
  overrides: ReviewOverrides = {},
  registry?: Registry,
): Promise<ReviewListener | undefined> {
  const review = config().review;
  if (!review?.enabled) return undefined;
  if (!hasReviewApi(teleport)) throw new Error('[review] needs a Teleport client with review calls');
  // Never in a log line, whatever a message carries.
  registerSecret(review.signingKey.toString('utf8'));
  const mattermost =
    overrides.mattermost ?? reviewMattermost(config().mattermost.url, config().mattermost.token, logger);
  const users = new UserMapper(teleport, {
    trait: review.userIdTrait,
    allowEmailUsernameMatch: review.allowEmailUsernameMatch,
    emailOf: (id) => mattermost.emailOf(id),
    ...(overrides.userCacheTtlMs !== undefined ? { ttlMs: overrides.userCacheTtlMs } : {}),
  });
  const clicks = new Counter({
    name: 'teleport_mattermost_review_clicks_total',
    help: 'Approve/Deny clicks handled, by outcome (approved, denied, no_permission, unverified, ...).',
    labelNames: ['outcome'],
    registers: registry ? [registry] : [],
  });
  const handler = new ClickHandler({
    onOutcome: (outcome) => clicks.inc({ outcome }),
    review: () => config().review ?? review,
    teleport,
    mattermost,
    users,
    logger,
    ...overrides.handler,
  });
  return startReviewListener(
    review.listenAddr,
    new URL(review.callbackUrl).pathname,
    handler,
    logger,
    overrides.answerDeadlineMs,
  );
}
