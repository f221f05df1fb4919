/*
 * Reconciling one access request with Mattermost: the lifecycle state machine.
 *
 * The relay is level-based: for a request it knows the newest snapshot (or that it was deleted) and
 * the plugin data stored in Teleport, and it does whatever brings Mattermost in line, in this order:
 *
 *   1. decide   — choose recipients (Access Monitoring Rules, else role_to_recipients + suggested
 *                 reviewers), resolve them to channel ids, and record them (`mm_recipients`) together
 *                 with the post intent time (`mm_post_intent_at`) in ONE CAS write, before any post.
 *   2. post     — one root post per recorded channel that has no message yet; record `messages`
 *                 (upstream's `channel/post,…`) after the posts.
 *   3. reply    — for each review past `reviews_count`: record the reply intent (`mm_reply_intent`),
 *                 reply in every thread, then bump `reviews_count` and clear the intent.
 *   4. edit     — when the text the root posts should show changed (status, resolution reason, review
 *                 count), edit every post, then record `resolution`/`resolve_reason` and the text hash.
 *   5. notify   — optionally a direct message to the requester once per resolution (same intent scheme).
 *
 * Crash safety. Every post carries props `teleport_request_id` (+ kind, review index), and every post is
 * preceded by a recorded intent with a timestamp. If the process dies between "post created" and "post
 * recorded", the next attempt finds the intent, lists the channel's posts since the intent time
 * (minus a clock-skew margin) and adopts our post instead of posting again. The same search runs after
 * any ambiguous failure (timeout, 5xx, reset: the post may have been created), once: a search that finds
 * nothing is owed again only after another ambiguous failure, never after a 429 or a refused connection
 * (nothing was saved) — searches spend the rate limit like posts, and searching before every retry
 * starved the posts. A process remembers the posts it knows are absent, so a later pass of the same
 * request does not search either; after a restart it searches. A crash before the intent is recorded
 * has posted nothing. Edits are idempotent, so they need no intent: a crash before the record just edits
 * again. Upstream's window (data created but messages never recorded → never posted) cannot happen:
 * recipients without messages are posted on the next pass.
 *
 * Round trips. A new request (an event for a pending, unreviewed request) costs one Teleport write before
 * its posts (the intent, against "no data" without reading first) and one after (their record, against the
 * state just written); when either CAS fails, update() reads and goes on from what is really stored, and
 * another writer's intent found that way is searched behind before posting.
 *
 * Late and adopted root posts. An adopted post shows the text it was made with (possibly PENDING), so
 * adopting one clears `mm_rendered` and every post is edited. A root recorded after reviews were replied
 * in the other threads (its post failed for a while) is listed in `mm_reply_backfill` in the same write,
 * and gets those replies (after one search of its channel) before it leaves the list.
 *
 * Compatibility. Upstream's keys are written exactly as upstream does; data written by the upstream
 * plugin (messages but no `mm_recipients`) is taken as "already posted", and its resolution is honoured
 * (a resolved request keeps its tag; a later deletion does not turn APPROVED into EXPIRED).
 *
 * Failures. Temporary failures are retried per call with a budget per recipient; when one is still
 * failing, what succeeded is recorded and RetryLaterError re-queues the request (after the replies and
 * edits of the recipients that were posted, and a thread whose reply is still failing does not hold back
 * the edits of the others: one recipient's outage never delays the others). A refusal
 * that will not heal by itself (mattermost/refusal.ts: 403 on a post, reply or edit, a deleted root post,
 * an archived channel, hidden emails) is permanent for that recipient or post only: it is skipped,
 * reported once with its fix (refusals.ts), and the others go on. An edit refused by the server's edit
 * time limit is replaced by a thread reply carrying the resolution. Edits send the message alone: the
 * server replaces the whole props map when props are sent, which would drop `from_bot`.
 */
import type { PluginConfig } from '../config/types.js';
import { MattermostError, type MattermostApi, type MattermostPost, type NewPost } from '../mattermost/api.js';
import { refusalOf, type Refusal, type RefusalAction } from '../mattermost/refusal.js';
import type { Logger } from '../observability/logger.js';
import {
  isTeleportError,
  type AccessMonitoringRule,
  type AccessRequest,
  type TeleportApi,
} from '../teleport/api.js';
import { PLUGIN_NAME } from '../config/defaults.js';
import type { RelayMetrics } from './metrics.js';
import { mattermostStateOf, type MattermostState } from './readiness.js';
import {
  decodePluginData,
  emptyPluginData,
  encodePluginData,
  expectAbsent,
  pendingChannels,
  type RequestPluginData,
  type ResolutionTag,
  type SentMessage,
} from './plugindata.js';
import { chooseRecipients, dedupe, isEmail } from './recipients.js';
import type { RecipientResolver } from './resolver.js';
import { backoffDelay, sleep, withRetry, type RetryPolicy } from './retry.js';
import {
  renderRequestPost,
  renderRequesterNotice,
  renderResolutionReply,
  renderReviewReply,
} from '../mattermost/render.js';
import { reviewAttachments, showsButtons } from '../review/buttons.js';
import {
  pluginDataFields,
  postView,
  requestFromPluginData,
  resolutionOf,
  textHash,
  type ClusterInfo,
} from './view.js';

/** Props on every post we make, so we can recognise our own posts after a crash. */
export const POST_PROPS = {
  requestId: 'teleport_request_id',
  kind: 'teleport_post',
  reviewIndex: 'teleport_review_index',
  resolution: 'teleport_resolution',
} as const;

/** `teleport_post` of the thread reply that carries the resolution when the root post may not be edited. */
const RESOLUTION_REPLY = 'resolution';

export type WorkOrigin = 'event' | 'catchup';
export type WorkItem =
  { kind: 'put'; request: AccessRequest; origin: WorkOrigin } | { kind: 'delete'; origin: WorkOrigin };

/** How far along a snapshot is, so an older snapshot (e.g. from a catch-up list) never replaces a newer one. */
function progress(request: AccessRequest): number {
  return (request.state === 'PENDING' ? 0 : 1_000_000) + request.reviews.length;
}

/** Combines queued work for one request: deletion wins; otherwise the most advanced snapshot. */
export function mergeWork(pending: WorkItem, next: WorkItem): WorkItem {
  if (pending.kind === 'delete') return pending;
  if (next.kind === 'delete') return next;
  const origin: WorkOrigin = pending.origin === 'event' || next.origin === 'event' ? 'event' : 'catchup';
  const request = progress(next.request) >= progress(pending.request) ? next.request : pending.request;
  return { kind: 'put', request, origin };
}

export interface RelayTuning {
  /** Requests reconciled at once. */
  concurrency: number;
  /** Per call, per recipient. */
  retry: RetryPolicy;
  /** Delay before a request whose budget ran out is tried again. */
  requeue: { baseDelayMs: number; maxDelayMs: number };
  /** Plugin-data CAS conflicts: backoff (upstream: 1 ms to 1 s) and how long to keep trying. */
  cas: RetryPolicy;
  recipientCacheTtlMs: number;
  /** Resolved requests without plugin data are posted by catch-up only when created this recently. */
  catchUpWindowMs: number;
  /** How far before an intent to search a channel (clock skew between us and Mattermost). */
  searchMarginMs: number;
  /** How often to probe Mattermost (GET /users/me) while it is unreachable. */
  probeIntervalMs: number;
  /** How long start-up checks (Teleport ping, Mattermost /users/me) retry; upstream's initTimeout is 10 s. */
  startupBudgetMs: number;
  /** How long the watch or Mattermost may be down before /readyz says so (a reconnect blip must not flap). */
  readyGraceMs: number;
  /** How often recipients Mattermost refuses are looked up again (refusals.ts). */
  refusalRecheckMs: number;
}

export const DEFAULT_TUNING: RelayTuning = {
  concurrency: 16,
  retry: { baseDelayMs: 250, maxDelayMs: 10_000, budgetMs: 30_000 },
  requeue: { baseDelayMs: 1_000, maxDelayMs: 60_000 },
  cas: { baseDelayMs: 1, maxDelayMs: 1_000, budgetMs: 30_000 },
  recipientCacheTtlMs: 5 * 60_000,
  catchUpWindowMs: 24 * 3_600_000,
  searchMarginMs: 5 * 60_000,
  probeIntervalMs: 5_000,
  startupBudgetMs: 10_000,
  readyGraceMs: 10_000,
  refusalRecheckMs: 10 * 60_000,
};

export function mergeTuning(partial: Partial<RelayTuning> | undefined): RelayTuning {
  return {
    ...DEFAULT_TUNING,
    ...partial,
    retry: { ...DEFAULT_TUNING.retry, ...partial?.retry },
    requeue: { ...DEFAULT_TUNING.requeue, ...partial?.requeue },
    cas: { ...DEFAULT_TUNING.cas, ...partial?.cas },
  };
}

export interface ReconcileDeps {
  teleport: TeleportApi;
  mattermost: MattermostApi;
  logger: Logger;
  metrics: RelayMetrics;
  resolver: RecipientResolver;
  rules: () => Iterable<AccessMonitoringRule>;
  config: () => PluginConfig;
  cluster: () => ClusterInfo;
  tuning: RelayTuning;
  /** Mattermost answered (true) or is unreachable after retries (false). */
  reachability: (state: MattermostState | boolean) => void;
  now?: () => number;
}

/** Thrown to put the request back on the queue after what succeeded was recorded. */
export class RetryLaterError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'RetryLaterError';
  }
}

interface DataState {
  raw: Record<string, string> | undefined;
  data: RequestPluginData | undefined;
}

type EditOutcome =
  { m: SentMessage; ok: true } | { m: SentMessage; ok: false; refusal: Refusal | undefined; err: unknown };

type PostOutcome =
  | { ok: true; post: MattermostPost; adopted: boolean }
  | { ok: false; permanent: boolean; refusal?: Refusal; error: unknown };

/** The resolution the posts should show, given what the request says and what was recorded. */
export function targetResolution(
  request: AccessRequest | undefined,
  recorded: ResolutionTag,
): { target: ResolutionTag; conflict?: ResolutionTag } {
  const wanted: ResolutionTag | undefined = request ? resolutionOf(request) : 'EXPIRED';
  if (wanted === undefined) return { target: recorded };
  if (recorded === '') return { target: wanted };
  // Resolved once: keep it (as upstream). Deletion after approval is normal (access expired).
  if (wanted !== recorded && wanted !== '' && wanted !== 'EXPIRED')
    return { target: recorded, conflict: wanted };
  return { target: recorded };
}

const ABSENT: DataState = { raw: undefined, data: undefined };

/** No recipients decided and nothing posted (no data at all, or data without either). */
function isUndecided(data: RequestPluginData | undefined): boolean {
  return !data || (data.recipients === undefined && data.messages.length === 0);
}

/** An event for a pending request without reviews: in all but rare cases one never recorded before. */
function isNewRequest(item: WorkItem): boolean {
  return (
    item.kind === 'put' &&
    item.origin === 'event' &&
    item.request.state === 'PENDING' &&
    item.request.reviews.length === 0
  );
}

export class Reconciler {
  private readonly now: () => number;
  /**
   * Idempotency keys of posts this process knows do not exist: it recorded their intent itself, or looked
   * and did not find them, and no create since may have had an effect (only 429s and refused
   * connections). A later pass need not search for them again; a restart starts empty (and searches).
   */
  private readonly knownAbsent = new Set<string>();

  constructor(private readonly deps: ReconcileDeps) {
    this.now = deps.now ?? Date.now;
  }

  // ---------- calls with retries ----------

  private async mm<T>(operation: string, fn: () => Promise<T>, signal: AbortSignal): Promise<T> {
    try {
      const result = await withRetry(fn, this.deps.tuning.retry, {
        signal,
        onRetry: () => this.deps.metrics.retries.inc({ operation }),
      });
      this.deps.reachability('ok');
      return result;
    } catch (err) {
      const state = mattermostStateOf(err);
      if (state) this.deps.reachability(state);
      throw err;
    }
  }

  /** Reports a refusal for the recipient of `channelId` (once per recipient and reason). */
  private refused(
    channelId: string,
    action: RefusalAction,
    refusal: Refusal,
    fields: Record<string, unknown>,
  ) {
    this.deps.resolver.refusals.report(this.deps.resolver.nameOf(channelId), action, refusal, {
      channel: channelId,
      ...fields,
    });
  }

  private acceptedIn(channelId: string): void {
    this.deps.resolver.refusals.accepted(this.deps.resolver.nameOf(channelId));
  }

  private tp<T>(operation: string, fn: () => Promise<T>, signal: AbortSignal): Promise<T> {
    return withRetry(fn, this.deps.tuning.retry, {
      signal,
      onRetry: () => this.deps.metrics.retries.inc({ operation }),
    });
  }

  private async read(requestId: string, signal: AbortSignal): Promise<DataState> {
    const raw = await this.tp(
      'get_plugin_data',
      () => this.deps.teleport.getPluginData(requestId, PLUGIN_NAME),
      signal,
    );
    return { raw, data: raw ? decodePluginData(raw) : undefined };
  }

  /**
   * Read-modify-write with compare-and-swap; `mutate` returns undefined for "nothing to write".
   * Retries on CompareFailed with upstream's backoff (1 ms to 1 s). `known` is state the caller has just
   * read: the first attempt writes against it instead of reading again (the CAS catches a stale one).
   */
  async update(
    requestId: string,
    mutate: (current: RequestPluginData | undefined) => RequestPluginData | undefined,
    signal: AbortSignal,
    known?: DataState,
  ): Promise<DataState> {
    const started = this.now();
    for (let attempt = 0; ; attempt++) {
      const state = attempt === 0 && known ? known : await this.read(requestId, signal);
      const next = mutate(state.data ? structuredClone(state.data) : undefined);
      if (!next) return state;
      const set = encodePluginData(next);
      const expect = state.raw ? { ...state.raw } : expectAbsent();
      try {
        await this.tp(
          'update_plugin_data',
          () => this.deps.teleport.updatePluginData(requestId, PLUGIN_NAME, set, expect),
          signal,
        );
        const raw = { ...(state.raw ?? {}) };
        for (const [k, v] of Object.entries(set)) {
          if (v === '') delete raw[k];
          else raw[k] = v;
        }
        return { raw, data: next };
      } catch (err) {
        if (!isTeleportError(err, 'CompareFailed')) throw err;
        if (this.now() - started > this.deps.tuning.cas.budgetMs) {
          throw new RetryLaterError('plugin data kept changing under us', err);
        }
        await sleep(backoffDelay(attempt, this.deps.tuning.cas), signal);
      }
    }
  }

  /**
   * Creates a post once: when `searchSince` is set (an intent existed) or after an ambiguous failure,
   * first looks in the channel for a post of ours matching `isOurs`.
   */
  private async postOnce(
    post: NewPost,
    isOurs: (p: MattermostPost) => boolean,
    intentAt: number,
    searchFirst: boolean,
    signal: AbortSignal,
    operation: string,
    action: RefusalAction = 'post',
  ): Promise<PostOutcome> {
    const key = post.idempotencyKey ?? `${post.channelId}/${post.rootId ?? ''}/${post.message}`;
    if (!searchFirst) this.knownAbsent.add(key);
    let search = searchFirst && !this.knownAbsent.has(key);
    const since = Math.max(0, intentAt - this.deps.tuning.searchMarginMs);
    try {
      const result = await this.mm(
        operation,
        async () => {
          if (search) {
            const found = (await this.deps.mattermost.listPostsSince(post.channelId, since)).find(isOurs);
            if (found) return { post: found, adopted: true };
            // Not there: until a create may have had an effect, retries (in this pass and later ones) post
            // without searching again: each search spends as much of the rate limit as a post.
            search = false;
            this.knownAbsent.add(key);
          }
          try {
            return { post: await this.deps.mattermost.createPost(post), adopted: false };
          } catch (err) {
            // The post may exist even though the call failed (timeout after the server saved it). Not after
            // a 429 or a refused connection: those are answered before anything is saved, and a search
            // would only spend more of the rate limit.
            const nothingSaved = err instanceof MattermostError && (err.notProcessed || !err.temporary);
            if (!nothingSaved) {
              search = true;
              this.knownAbsent.delete(key);
            }
            throw err;
          }
        },
        signal,
      );
      this.knownAbsent.delete(key);
      return { ok: true, ...result };
    } catch (err) {
      const refusal = refusalOf(err, action);
      if (refusal) this.knownAbsent.delete(key);
      return refusal
        ? { ok: false, permanent: true, refusal, error: err }
        : { ok: false, permanent: false, error: err };
    }
  }

  private async decideChannels(request: AccessRequest, log: Logger, signal: AbortSignal): Promise<string[]> {
    const config = this.deps.config();
    const choice = chooseRecipients(request, config.roleToRecipients, this.deps.rules());
    for (const skipped of choice.skippedRules) {
      log.warn('Failed to parse access monitoring notification rule; skipping it', {
        rule: skipped.name,
        error: skipped.reason,
      });
    }
    for (const reviewer of choice.invalidSuggestedReviewers) {
      log.warn('Failed to notify a suggested reviewer with an invalid email address', { reviewer });
    }
    const resolved = await this.deps.resolver.resolveAll(choice.recipients, signal);
    log.debug('Recipients chosen', {
      source: choice.source,
      recipients: choice.recipients,
      channels: resolved.map((r) => r.channelId),
    });
    return resolved.map((r) => r.channelId);
  }

  // ---------- the state machine ----------

  async reconcile(requestId: string, item: WorkItem, signal: AbortSignal): Promise<void> {
    const request = item.kind === 'put' ? item.request : undefined;
    let log = this.deps.logger.child({ request_id: requestId, ...(request ? { user: request.user } : {}) });
    if (request && resolutionOf(request) === undefined) {
      log.warn('Unknown request state; ignoring the event', { state: request.state });
      return;
    }
    // A request first seen in an event, pending and unreviewed, has no plugin data yet in all but rare
    // cases: its intent is written against "absent" without a read first, which takes one Teleport round
    // trip off every new request's post (bench P1). The CAS still catches data that exists (update()
    // then reads and goes on from there), so the post is never made without its intent recorded first.
    const assumedAbsent = isNewRequest(item);
    let st: DataState = assumedAbsent ? ABSENT : await this.read(requestId, signal);
    if (!request && !st.data) {
      log.debug('Deleted request has no plugin data: it was never posted; nothing to update');
      return;
    }
    if (!request && st.data) log = log.child({ user: st.data.user });

    // 1. decide recipients (before any post, together with the post intent).
    let intentAtStart = st.data?.postIntentAt;
    if (request && isUndecided(st.data)) {
      if (
        !st.data &&
        item.origin === 'catchup' &&
        request.state !== 'PENDING' &&
        (request.created?.getTime() ?? 0) < this.now() - this.deps.tuning.catchUpWindowMs
      ) {
        log.debug('Catch-up: resolved request older than the catch-up window was never posted; leaving it');
        return;
      }
      const channels = await this.decideChannels(request, log, signal);
      if (channels.length > 0) {
        const recorded = await this.recordRecipients(requestId, request, channels, st, log, signal);
        if (!recorded) return;
        st = recorded.state;
        // Data another writer recorded first may have posts behind its intent: look before posting.
        intentAtStart = recorded.ours ? undefined : st.data?.postIntentAt;
      } else {
        if (assumedAbsent) st = await this.read(requestId, signal);
        if (isUndecided(st.data)) {
          log.warn('No channel to post');
          return;
        }
        intentAtStart = st.data?.postIntentAt;
      }
    }
    let data = st.data;
    if (!data) return;

    // 2. root posts for recorded recipients without a message.
    const pending = pendingChannels(data);
    if (pending.length > 0) {
      st =
        (await this.postRoots(requestId, request, st, pending, intentAtStart !== undefined, log, signal)) ??
        st;
      data = st.data as RequestPluginData;
    }
    const stillToPost = pendingChannels(data).length;
    // Nothing posted yet: no thread to reply in, no post to edit.
    if (stillToPost > 0 && data.messages.length === 0) {
      throw new RetryLaterError(`${stillToPost} recipient(s) still to post`);
    }

    // 3. thread replies: the reviews a late root post missed, then reviews past reviews_count.
    let stillToBackfill = 0;
    if (request && data.replyBackfill?.length) {
      ({ data, owed: stillToBackfill } = await this.backfillReplies(requestId, request, data, log, signal));
    }
    let repliesOwed = 0;
    if (request && data.messages.length > 0 && request.reviews.length > data.reviewsCount) {
      ({ data, owed: repliesOwed } = await this.postReplies(requestId, request, data, log, signal));
    }

    // 4. edit the root posts when what they should show changed.
    data = await this.editRoots(requestId, request, data, log, signal);

    // The recipients whose post failed for now are retried; the others were not held back for them.
    if (stillToPost > 0) throw new RetryLaterError(`${stillToPost} recipient(s) still to post`);
    if (stillToBackfill > 0)
      throw new RetryLaterError(`${stillToBackfill} thread(s) still owe review replies`);
    if (repliesOwed > 0) throw new RetryLaterError(`${repliesOwed} review reply(ies) still to post`);

    // 5. tell the requester (optional).
    if (this.deps.config().mattermost.notifyRequester) {
      await this.notifyRequester(requestId, request, data, log, signal);
    }
  }

  /**
   * Records the recipients and the post intent in one CAS write, unless another writer recorded some
   * first. Returns the stored state and whether the intent is ours, or undefined when the request is gone.
   */
  private async recordRecipients(
    requestId: string,
    request: AccessRequest,
    channels: string[],
    known: DataState,
    log: Logger,
    signal: AbortSignal,
  ): Promise<{ state: DataState; ours: boolean } | undefined> {
    let ours = false;
    try {
      const state = await this.update(
        requestId,
        (cur) => {
          ours = isUndecided(cur);
          if (!ours) return undefined;
          return {
            ...(cur ?? emptyPluginData()),
            ...pluginDataFields(request),
            recipients: channels,
            postIntentAt: this.now(),
          };
        },
        signal,
        known,
      );
      return { state, ours };
    } catch (err) {
      if (isTeleportError(err, 'NotFound')) {
        log.debug('Request disappeared before it could be recorded');
        return undefined;
      }
      throw err;
    }
  }

  private render(
    requestId: string,
    request: AccessRequest | undefined,
    data: RequestPluginData,
    resolution: ResolutionTag,
  ): string {
    const current = request ?? requestFromPluginData(requestId, data);
    return renderRequestPost(postView(current, resolution, this.deps.cluster()));
  }

  /** Props of a root post: our markers, plus Approve/Deny buttons while it is pending ([review] on). */
  private rootProps(
    requestId: string,
    request: AccessRequest | undefined,
    target: ResolutionTag,
    channelId: string,
  ): Record<string, unknown> {
    const props: Record<string, unknown> = {
      [POST_PROPS.requestId]: requestId,
      [POST_PROPS.kind]: 'request',
    };
    const review = this.deps.config().review;
    if (review && showsButtons(review, request, target === '')) {
      props.attachments = reviewAttachments(review, requestId, channelId, this.now());
    }
    return props;
  }

  /** What the root posts show: the text, and whether they carry buttons (unchanged hash with [review] off). */
  private rootHash(text: string, request: AccessRequest | undefined, target: ResolutionTag): string {
    const buttons = showsButtons(this.deps.config().review, request, target === '');
    return textHash(buttons ? `${text}\u0000buttons` : text);
  }

  private async postRoots(
    requestId: string,
    request: AccessRequest | undefined,
    known: DataState,
    channels: string[],
    searchFirst: boolean,
    log: Logger,
    signal: AbortSignal,
  ): Promise<DataState | undefined> {
    const data = known.data as RequestPluginData;
    const { target } = targetResolution(request, data.resolution);
    const text = this.render(requestId, request, data, target);
    const intentAt = data.postIntentAt ?? this.now();
    const outcomes = await Promise.all(
      channels.map(async (channelId) => {
        const props = this.rootProps(requestId, request, target, channelId);
        const outcome = await this.postOnce(
          { channelId, message: text, props, idempotencyKey: `${requestId}/${channelId}` },
          (p) => p.rootId === '' && p.props[POST_PROPS.requestId] === requestId,
          intentAt,
          searchFirst,
          signal,
          'create_post',
        );
        return { channelId, outcome };
      }),
    );
    const created: SentMessage[] = [];
    const adopted: string[] = [];
    const dropped: string[] = [];
    for (const { channelId, outcome } of outcomes) {
      if (outcome.ok) {
        created.push({ channelId, postId: outcome.post.id });
        if (outcome.adopted) adopted.push(channelId);
        this.deps.metrics.posts.inc({ result: outcome.adopted ? 'adopted' : 'created' });
        this.acceptedIn(channelId);
        log.info(outcome.adopted ? 'Found our earlier post; not posting again' : 'Posted the request', {
          channel: channelId,
          post_id: outcome.post.id,
        });
      } else if (outcome.refusal) {
        dropped.push(channelId);
        this.deps.metrics.posts.inc({ result: 'skipped' });
        this.refused(channelId, 'post', outcome.refusal, {
          request_id: requestId,
          error: errorText(outcome.error),
        });
      } else {
        this.deps.metrics.posts.inc({ result: 'failed' });
        log.warn('Could not post yet; will retry', { channel: channelId, error: errorText(outcome.error) });
      }
    }
    if (created.length === 0 && dropped.length === 0) return undefined;
    const hash = this.rootHash(text, request, target);
    return this.update(
      requestId,
      (cur) => {
        if (!cur) return undefined;
        const first = cur.messages.length === 0;
        const joining = created.filter((m) => !cur.messages.some((c) => c.channelId === m.channelId));
        const next: RequestPluginData = {
          ...cur,
          messages: dedupe([...cur.messages, ...created], (m) => m.channelId),
          recipients: (cur.recipients ?? []).filter((c) => !dropped.includes(c)),
        };
        if (first && created.length > 0 && adopted.length === 0) {
          // The posts were written in their current form: record what they show.
          next.renderedHash = hash;
          next.resolution = target;
          if (target !== '' && target !== 'EXPIRED' && request) next.resolveReason = request.resolveReason;
        } else if (adopted.length > 0) {
          // An adopted post shows what it said when it was made (maybe an older state): edit them all.
          delete next.renderedHash;
        }
        if (cur.reviewsCount > 0 && joining.length > 0) {
          // Root posts recorded after reviews were replied in the others' threads owe those replies.
          next.replyBackfill = dedupe(
            [...(cur.replyBackfill ?? []), ...joining.map((m) => m.channelId)],
            (c) => c,
          );
        }
        return next;
      },
      signal,
      known,
    );
  }

  private async postReplies(
    requestId: string,
    request: AccessRequest,
    start: RequestPluginData,
    log: Logger,
    signal: AbortSignal,
  ): Promise<{ data: RequestPluginData; owed: number }> {
    let data = start;
    for (let index = data.reviewsCount; index < request.reviews.length; index++) {
      const review = request.reviews[index];
      if (!review) break;
      const searchFirst = data.replyIntent?.index === index;
      let intentAt = data.replyIntent?.at ?? this.now();
      if (!searchFirst) {
        intentAt = this.now();
        const st = await this.update(
          requestId,
          (cur) =>
            cur && cur.reviewsCount === index ? { ...cur, replyIntent: { index, at: intentAt } } : undefined,
          signal,
        );
        data = st.data as RequestPluginData;
        if (data.reviewsCount !== index) continue; // someone else replied meanwhile
      }
      const outcomes = await Promise.all(
        data.messages.map(async (m) => ({
          m,
          outcome: await this.postOnce(
            reviewReply(requestId, m, index, review),
            (p) => isReplyTo(p, m, index),
            intentAt,
            searchFirst,
            signal,
            'create_reply',
            'reply',
          ),
        })),
      );
      let temporary = 0;
      for (const { m, outcome } of outcomes) {
        const fields = { channel: m.channelId, root_id: m.postId, review_author: review.author };
        if (outcome.ok) {
          this.deps.metrics.replies.inc({ result: outcome.adopted ? 'adopted' : 'created' });
          this.acceptedIn(m.channelId);
          log.info(outcome.adopted ? 'Found our earlier review reply' : 'Replied with a review', fields);
        } else if (outcome.refusal) {
          this.deps.metrics.replies.inc({ result: 'skipped' });
          this.refused(m.channelId, 'reply', outcome.refusal, {
            request_id: requestId,
            root_id: m.postId,
            error: errorText(outcome.error),
          });
        } else {
          temporary++;
          this.deps.metrics.replies.inc({ result: 'failed' });
          log.warn('Could not reply yet; will retry', { ...fields, error: errorText(outcome.error) });
        }
      }
      // Retried later from this review on (its intent stays recorded); the edits are not held back.
      if (temporary > 0) return { data, owed: temporary };
      const st = await this.update(
        requestId,
        (cur) =>
          cur
            ? { ...cur, reviewsCount: Math.max(cur.reviewsCount, index + 1), replyIntent: undefined }
            : undefined,
        signal,
      );
      data = st.data as RequestPluginData;
    }
    return { data, owed: 0 };
  }

  /**
   * Root posts recorded after reviews were replied in the other threads (their post failed for a while)
   * get those replies now. Their channel is searched once first (a crash may have left some posted).
   * Returns how many threads still owe replies (retried later; the others are not held back).
   */
  private async backfillReplies(
    requestId: string,
    request: AccessRequest,
    data: RequestPluginData,
    log: Logger,
    signal: AbortSignal,
  ): Promise<{ data: RequestPluginData; owed: number }> {
    const owing = data.messages.filter((m) => data.replyBackfill?.includes(m.channelId));
    const count = Math.min(data.reviewsCount, request.reviews.length);
    const since = Math.max(0, (data.postIntentAt ?? 0) - this.deps.tuning.searchMarginMs);
    const settled = await Promise.all(
      owing.map(async (m): Promise<boolean> => {
        let existing: MattermostPost[];
        try {
          existing = await this.mm(
            'list_posts',
            () => this.deps.mattermost.listPostsSince(m.channelId, since),
            signal,
          );
        } catch (err) {
          log.warn('Could not look for earlier review replies yet; will retry', {
            channel: m.channelId,
            error: errorText(err),
          });
          return false;
        }
        for (let index = 0; index < count; index++) {
          if (existing.some((p) => isReplyTo(p, m, index))) continue;
          const review = request.reviews[index];
          if (!review) break;
          const outcome = await this.postOnce(
            reviewReply(requestId, m, index, review),
            (p) => isReplyTo(p, m, index),
            since,
            false,
            signal,
            'create_reply',
            'reply',
          );
          if (outcome.ok) {
            this.deps.metrics.replies.inc({ result: outcome.adopted ? 'adopted' : 'created' });
            continue;
          }
          if (outcome.refusal) {
            this.deps.metrics.replies.inc({ result: 'skipped' });
            this.refused(m.channelId, 'reply', outcome.refusal, { request_id: requestId, root_id: m.postId });
            return true;
          }
          this.deps.metrics.replies.inc({ result: 'failed' });
          log.warn('Could not reply yet; will retry', {
            channel: m.channelId,
            root_id: m.postId,
            error: errorText(outcome.error),
          });
          return false;
        }
        log.info('Replied with the reviews a late root post missed', {
          channel: m.channelId,
          root_id: m.postId,
          reviews: count,
        });
        return true;
      }),
    );
    const done = owing.filter((_, i) => settled[i]).map((m) => m.channelId);
    const owed = owing.length - done.length;
    const recorded = new Set(data.messages.map((m) => m.channelId));
    const st = await this.update(
      requestId,
      (cur) => {
        if (!cur?.replyBackfill) return undefined;
        const left = cur.replyBackfill.filter((c) => recorded.has(c) && !done.includes(c));
        if (left.length === cur.replyBackfill.length) return undefined;
        const next: RequestPluginData = { ...cur, replyBackfill: left };
        if (left.length === 0) delete next.replyBackfill;
        return next;
      },
      signal,
    );
    return { data: st.data ?? data, owed };
  }

  private async editRoots(
    requestId: string,
    request: AccessRequest | undefined,
    data: RequestPluginData,
    log: Logger,
    signal: AbortSignal,
  ): Promise<RequestPluginData> {
    if (data.messages.length === 0) return data;
    const { target, conflict } = targetResolution(request, data.resolution);
    if (conflict) {
      log.warn('Request is already resolved; keeping the recorded resolution', {
        existing: data.resolution,
        event: conflict,
      });
    } else if (!request && data.resolution !== '') {
      log.debug('Resolved request was deleted (access expired); the posts keep showing the resolution', {
        resolution: data.resolution,
      });
    }
    const text = this.render(requestId, request, data, target);
    const hash = this.rootHash(text, request, target);
    if (hash === data.renderedHash && target === data.resolution) return data;
    const outcomes = await Promise.all(
      data.messages.map(async (m): Promise<EditOutcome> => {
        // The message alone: sent props would replace every prop of the post. With [review] on, the props
        // are rebuilt and sent on every edit (buttons added, re-signed or removed): Mattermost never shows
        // us our own buttons' integrations back (the client sends from_bot back with them).
        const props = this.deps.config().review?.enabled
          ? this.rootProps(requestId, request, target, m.channelId)
          : undefined;
        try {
          await this.mm('update_post', () => this.deps.mattermost.updatePost(m.postId, text, props), signal);
          return { m, ok: true as const };
        } catch (err) {
          return { m, ok: false as const, refusal: refusalOf(err, 'edit'), err };
        }
      }),
    );
    const temporary = await this.settleEdits(requestId, request, data, outcomes, target, log, signal);
    if (temporary > 0) throw new RetryLaterError(`${temporary} post edit(s) still to do`);
    const st = await this.update(
      requestId,
      (cur) => {
        if (!cur) return undefined;
        const next: RequestPluginData = { ...cur, resolution: target, renderedHash: hash };
        if (request && target !== '' && target !== 'EXPIRED') next.resolveReason = request.resolveReason;
        return next;
      },
      signal,
    );
    if (target !== data.resolution) {
      log.info('Marked request with resolution', { resolution: target || 'PENDING' });
    }
    return st.data as RequestPluginData;
  }

  /** Reports each edit's outcome; a refusal is skipped (a time-limited one gets a resolution reply). Returns the edits still to do. */
  private async settleEdits(
    requestId: string,
    request: AccessRequest | undefined,
    data: RequestPluginData,
    outcomes: EditOutcome[],
    target: ResolutionTag,
    log: Logger,
    signal: AbortSignal,
  ): Promise<number> {
    let temporary = 0;
    for (const o of outcomes) {
      const fields = { channel: o.m.channelId, post_id: o.m.postId, status: target || 'PENDING' };
      if (o.ok) {
        this.deps.metrics.updates.inc({ result: 'updated' });
        this.acceptedIn(o.m.channelId);
        log.info('Updated the request post', fields);
      } else if (o.refusal?.reason === 'edit_time_limit') {
        this.deps.metrics.updates.inc({ result: 'skipped' });
        this.refused(o.m.channelId, 'edit', o.refusal, { request_id: requestId, post_id: o.m.postId });
        const replied = await this.replyResolution(requestId, request, data, o.m, target, log, signal);
        if (!replied) temporary++;
      } else if (o.refusal) {
        this.deps.metrics.updates.inc({ result: 'skipped' });
        this.refused(o.m.channelId, 'edit', o.refusal, {
          request_id: requestId,
          post_id: o.m.postId,
          error: errorText(o.err),
        });
      } else {
        temporary++;
        this.deps.metrics.updates.inc({ result: 'failed' });
        log.warn('Could not update the post yet; will retry', { ...fields, error: errorText(o.err) });
      }
    }
    return temporary;
  }

  /**
   * The root post may not be edited any more (PostEditTimeLimit): reply in its thread with the resolution
   * instead, once (looking for an earlier one first, so a retry or restart does not reply twice).
   * Returns false when the reply failed for now (retry). A change that is not a resolution needs no reply.
   */
  private async replyResolution(
    requestId: string,
    request: AccessRequest | undefined,
    data: RequestPluginData,
    m: SentMessage,
    target: ResolutionTag,
    log: Logger,
    signal: AbortSignal,
  ): Promise<boolean> {
    if (target === '') return true;
    const view = postView(request ?? requestFromPluginData(requestId, data), target, this.deps.cluster());
    const outcome = await this.postOnce(
      {
        channelId: m.channelId,
        rootId: m.postId,
        message: renderResolutionReply(view),
        idempotencyKey: `${requestId}/${m.postId}/resolution/${target}`,
        props: {
          [POST_PROPS.requestId]: requestId,
          [POST_PROPS.kind]: RESOLUTION_REPLY,
          [POST_PROPS.resolution]: target,
        },
      },
      (p) =>
        p.rootId === m.postId &&
        p.props[POST_PROPS.kind] === RESOLUTION_REPLY &&
        p.props[POST_PROPS.resolution] === target,
      data.postIntentAt ?? 0,
      true,
      signal,
      'create_reply',
      'reply',
    );
    if (outcome.ok) {
      log.info('The post may not be edited any more; replied with the resolution instead', {
        channel: m.channelId,
        post_id: m.postId,
        resolution: target,
      });
      return true;
    }
    if (outcome.refusal) {
      this.refused(m.channelId, 'reply', outcome.refusal, { request_id: requestId, root_id: m.postId });
      return true;
    }
    log.warn('Could not reply with the resolution yet; will retry', {
      channel: m.channelId,
      error: errorText(outcome.error),
    });
    return false;
  }

  private async notifyRequester(
    requestId: string,
    request: AccessRequest | undefined,
    data: RequestPluginData,
    log: Logger,
    signal: AbortSignal,
  ): Promise<void> {
    const tag = data.resolution;
    if (tag !== 'APPROVED' && tag !== 'DENIED' && tag !== 'PROMOTED') return;
    if (data.requesterNotified === tag) return;
    const user = request?.user ?? data.user;
    const recordDone = () =>
      this.update(
        requestId,
        (cur) => (cur ? { ...cur, requesterNotified: tag, noticeIntentAt: undefined } : undefined),
        signal,
      );
    if (!isEmail(user)) {
      log.debug('Requester is not an email address; no direct message');
      await recordDone();
      return;
    }
    const dm = await this.deps.resolver.resolve(user, signal);
    if (!dm) {
      this.deps.metrics.notices.inc({ result: 'skipped' });
      await recordDone();
      return;
    }
    const searchFirst = data.noticeIntentAt !== undefined;
    const intentAt = data.noticeIntentAt ?? this.now();
    if (!searchFirst) {
      await this.update(requestId, (cur) => (cur ? { ...cur, noticeIntentAt: intentAt } : undefined), signal);
    }
    const view = postView(request ?? requestFromPluginData(requestId, data), tag, this.deps.cluster());
    const outcome = await this.postOnce(
      {
        channelId: dm.channelId,
        message: renderRequesterNotice(view),
        idempotencyKey: `${requestId}/notice/${tag}`,
        props: {
          [POST_PROPS.requestId]: requestId,
          [POST_PROPS.kind]: 'notice',
          [POST_PROPS.resolution]: tag,
        },
      },
      (p) =>
        p.rootId === '' &&
        p.props[POST_PROPS.requestId] === requestId &&
        p.props[POST_PROPS.resolution] === tag,
      intentAt,
      searchFirst,
      signal,
      'create_notice',
    );
    if (!outcome.ok && !outcome.permanent) {
      this.deps.metrics.notices.inc({ result: 'failed' });
      throw new RetryLaterError('requester notice still to send', outcome.error);
    }
    this.deps.metrics.notices.inc({ result: outcome.ok ? 'created' : 'skipped' });
    if (!outcome.ok && outcome.refusal) {
      this.refused(dm.channelId, 'post', outcome.refusal, { request_id: requestId, requester: user });
    }
    log.info(outcome.ok ? 'Told the requester about the resolution' : 'Could not message the requester', {
      channel: dm.channelId,
      resolution: tag,
    });
    await recordDone();
  }
}

/** The thread reply for review `index` under root post `m`. */
function reviewReply(
  requestId: string,
  m: SentMessage,
  index: number,
  review: AccessRequest['reviews'][number],
): NewPost {
  return {
    channelId: m.channelId,
    rootId: m.postId,
    message: renderReviewReply(review),
    props: {
      [POST_PROPS.requestId]: requestId,
      [POST_PROPS.kind]: 'review',
      [POST_PROPS.reviewIndex]: index,
    },
    idempotencyKey: `${requestId}/${m.postId}/${index}`,
  };
}

function isReplyTo(p: MattermostPost, m: SentMessage, index: number): boolean {
  return p.rootId === m.postId && String(p.props[POST_PROPS.reviewIndex]) === String(index);
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
