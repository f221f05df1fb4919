// MattermostApi over the REST v4 API with the bot token: the API calls the relay makes, and a TTL cache of
// resolved recipients. The HTTP call itself (timeout, body cap, what an answer means) is transport.ts;
// recipient lookups are lookup.ts; the URL and CA file are connection.ts.
// One attempt per call, no retries: the relay's delivery queue owns retry and backoff.
// Plain fetch rather than @mattermost/client's Client4 (the stack's first choice): under the rate limiter
// Client4 throws an error with an empty message and no status code (observed on a real server), and it
// reads bodies without a cap; the relay must classify every answer by status, content type and size
// (transport.ts). Dropping it also took typescript, its runtime dependency, out of the image.
import type { MattermostConfig } from '../config/types.js';
import { registerSecret, type Logger } from '../observability/logger.js';
import {
  MattermostError,
  type MattermostApi,
  type MattermostPost,
  type MattermostUser,
  type NewPost,
  type ResolvedRecipient,
} from './api.js';
import { maskUrl, normalizeBaseUrl, trustCaFile } from './connection.js';
import { createLookups } from './lookup.js';
import { parseRecipient } from './recipient.js';
import { PacingGate } from './pacing.js';
import { createTransport, type Transport } from './transport.js';

export { maskUrl, normalizeBaseUrl, trustCaFile } from './connection.js';

export const DEFAULT_TIMEOUT_MS = 10_000;
export const DEFAULT_CACHE_TTL_MS = 10 * 60_000;
/** Posts per page when scanning a channel for crash recovery (the server's maximum). */
const POSTS_PER_PAGE = 200;
/** Never scan more than this many pages (10,000 posts) looking for our own post. */
const MAX_POST_PAGES = 50;

export interface MattermostClientOptions {
  /** Per-call timeout (connect, headers and body). */
  timeoutMs?: number;
  /** How long a resolved recipient (and the bot's own id) is reused. */
  cacheTtlMs?: number;
  userAgent?: string;
  /** Largest answer body read (transport.ts MAX_BODY_BYTES by default). */
  maxBodyBytes?: number;
  /** Pace calls by the server's rate-limit headers (pacing.ts); on unless false (tests compare). */
  pacing?: boolean;
  /** The gate to pace with (a watcher keeps one across client swaps); a new one when absent. */
  gate?: PacingGate;
}

interface ServerPost {
  id: string;
  channel_id: string;
  root_id: string;
  message: string;
  user_id: string;
  create_at: number;
  update_at: number;
  delete_at?: number;
  props?: Record<string, unknown> | null;
}

function toPost(p: ServerPost): MattermostPost {
  if (typeof p.id !== 'string' || !p.id) {
    throw new MattermostError('Unexpected', 'Mattermost answered a post call without a post id.');
  }
  return {
    id: p.id,
    channelId: p.channel_id,
    rootId: p.root_id ?? '',
    message: p.message,
    userId: p.user_id,
    createAt: p.create_at,
    updateAt: p.update_at,
    props: p.props ?? {},
  };
}

interface CacheEntry<T> {
  value: Promise<T>;
  expires: number;
}

/** Caches successful loads for the TTL and shares one load among concurrent callers; failures are never kept. */
function ttlCache(ttlMs: number) {
  const cache = new Map<string, CacheEntry<unknown>>();
  return {
    set<T>(key: string, value: T) {
      cache.set(key, { value: Promise.resolve(value), expires: Date.now() + ttlMs });
    },
    get<T>(key: string, load: () => Promise<T>): Promise<T> {
      const now = Date.now();
      const hit = cache.get(key);
      if (hit && hit.expires > now) return hit.value as Promise<T>;
      const value = load();
      cache.set(key, { value, expires: now + ttlMs });
      value.catch(() => {
        if (cache.get(key)?.value === value) cache.delete(key);
      });
      return value;
    },
  };
}

export function createMattermostClient(
  cfg: MattermostConfig,
  logger: Logger,
  opts: MattermostClientOptions = {},
): MattermostApi {
  registerSecret(cfg.token);
  const baseUrl = normalizeBaseUrl(cfg.url);
  if (cfg.caFile) {
    const n = trustCaFile(cfg.caFile);
    logger.info('Trusting the CA certificates of [mattermost] ca_file for Mattermost', {
      ca_file: cfg.caFile,
      certificates: n,
    });
  }
  if (maskUrl(cfg.url) !== cfg.url) {
    logger.warn('[mattermost] url carries a user name or password; they are not sent and never logged', {
      url: maskUrl(cfg.url),
    });
  }
  const pacing = opts.pacing === false ? undefined : (opts.gate ?? new PacingGate());
  const t: Transport = createTransport({
    ...(pacing ? { gate: pacing } : {}),
    baseUrl,
    token: cfg.token,
    timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    userAgent: opts.userAgent ?? 'teleport-plugin-mattermost',
    logger,
    ...(opts.maxBodyBytes ? { maxBodyBytes: opts.maxBodyBytes } : {}),
  });
  const cache = ttlCache(opts.cacheTtlMs ?? DEFAULT_CACHE_TTL_MS);
  let warnedNotBot = false;
  /** From GET /users/me: the server marks a bot's posts `from_bot`, and an edit with props must keep it. */
  let isBot = false;

  async function getMe(): Promise<MattermostUser> {
    const me = await t.call<{ id: string; username: string; email?: string; is_bot?: boolean }>(
      'GET /users/me',
      '/users/me',
      'GET',
    );
    if (typeof me.id !== 'string' || !me.id) {
      throw new MattermostError('Unexpected', 'Mattermost answered GET /users/me without a user id.');
    }
    const user: MattermostUser = {
      id: me.id,
      username: me.username,
      ...(me.email ? { email: me.email } : {}),
    };
    isBot = me.is_bot === true;
    if (me.is_bot !== true && !warnedNotBot) {
      warnedNotBot = true;
      logger.warn(
        'The [mattermost] token belongs to a regular user, not a bot account; posts will appear as that user. ' +
          'Create a bot (System Console > Integrations > Bot Accounts) and use its token.',
        { username: me.username },
      );
    }
    cache.set('me', user);
    return user;
  }

  const lookups = createLookups(t, () => cache.get('me', getMe));
  const enc = encodeURIComponent;

  return {
    ...(pacing ? { pacing } : {}),
    getMe,

    resolveRecipient(recipient: string): Promise<ResolvedRecipient> {
      const parsed = parseRecipient(recipient);
      if (parsed.kind === 'invalid') return Promise.reject(new MattermostError('BadRequest', parsed.reason));
      return cache.get(`recipient:${recipient.trim()}`, () =>
        parsed.kind === 'email'
          ? lookups.resolveEmail(recipient, parsed.email)
          : lookups.resolveChannel(recipient, parsed.team, parsed.channel),
      );
    },

    async createPost(post: NewPost): Promise<MattermostPost> {
      if (!post.channelId) {
        throw new MattermostError(
          'BadRequest',
          'refusing to post to an empty channel id (unresolved recipient)',
        );
      }
      const created = await t.call<ServerPost>('POST /posts', '/posts', 'POST', {
        channel_id: post.channelId,
        message: post.message,
        ...(post.rootId ? { root_id: post.rootId } : {}),
        ...(post.props ? { props: post.props } : {}),
        ...(post.idempotencyKey ? { pending_post_id: post.idempotencyKey } : {}),
      });
      return toPost(created);
    },

    async updatePost(
      postId: string,
      message: string,
      props?: Record<string, unknown>,
    ): Promise<MattermostPost> {
      if (!postId) throw new MattermostError('BadRequest', 'refusing to update a post with an empty id');
      // Props, when sent, replace the whole map on the server: without them every prop is kept. With them,
      // the server's own `from_bot` mark of a bot's post is sent back too, or the edit would drop it.
      if (props) await cache.get('me', getMe);
      const sent = props && isBot ? { ...props, from_bot: 'true' } : props;
      const updated = await t.call<ServerPost>(
        'PUT /posts/{post_id}/patch',
        `/posts/${enc(postId)}/patch`,
        'PUT',
        { message, ...(sent ? { props: sent } : {}) },
      );
      return toPost(updated);
    },

    async listPostsSince(channelId: string, sinceMs: number): Promise<MattermostPost[]> {
      if (!channelId) throw new MattermostError('BadRequest', 'cannot list posts of an empty channel id');
      // Pages are newest first; stop at the first page that reaches back before sinceMs.
      const found = new Map<string, MattermostPost>();
      for (let page = 0; page < MAX_POST_PAGES; page++) {
        const list = await t.call<{ order: string[]; posts: Record<string, ServerPost> }>(
          'GET /channels/{channel_id}/posts',
          `/channels/${enc(channelId)}/posts?page=${page}&per_page=${POSTS_PER_PAGE}`,
          'GET',
        );
        if (!Array.isArray(list.order)) {
          throw new MattermostError('Unexpected', 'Mattermost answered a post list without its order.');
        }
        let reachedOlder = false;
        for (const id of list.order) {
          const p = list.posts?.[id];
          if (!p) continue;
          if (p.create_at < sinceMs) reachedOlder = true;
          else if (!p.delete_at) found.set(p.id, toPost(p));
        }
        if (reachedOlder || list.order.length < POSTS_PER_PAGE) break;
      }
      return [...found.values()].sort((a, b) => a.createAt - b.createAt);
    },
  };
}
