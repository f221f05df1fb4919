// MattermostApi over @mattermost/client (Client4) with the bot token.
//
// Client4 quirks this file works around (reference mattermost-api.md §7):
// - Its convenience methods throw a ClientError whose status comes from the JSON body, so a plain-text
//   429 has no status and its Retry-After is lost. We call its public doFetchWithResponse with
//   ignoreStatus and map status and headers ourselves; Client4 still builds the routes, sets
//   `Authorization: BEARER <token>` and parses the body.
// - It does not URL-encode path segments (emails, team and channel names): we do.
// - It has no timeout: getOptions() adds an AbortSignal per call.
// - It parses JSON only for exactly `application/json`; a string body is parsed here when it is JSON.
// One attempt per call, no retries: the relay's delivery queue owns retry and backoff.
import fs from 'node:fs';
import tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import mattermostClient from '@mattermost/client';
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
import { errorFromNetwork, errorFromResponse } from './errors.js';
import { isChannelHandle, isTeamHandle, parseRecipient, sameDisplayName } from './recipient.js';

// The package is CommonJS and re-exports Client4 in a way Node's ESM named-export detection misses.
const { Client4 } = mattermostClient;

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
}

/** Client4 with a per-call timeout. */
class TimedClient4 extends Client4 {
  timeoutMs = DEFAULT_TIMEOUT_MS;

  override getOptions(options: Parameters<InstanceType<typeof Client4>['getOptions']>[0]) {
    const out = super.getOptions(options) as ReturnType<InstanceType<typeof Client4>['getOptions']> & {
      signal?: AbortSignal;
    };
    if (!out.signal) out.signal = AbortSignal.timeout(this.timeoutMs);
    return out;
  }
}

const addedCAs = new Set<string>();

/**
 * Trusts the CA certificates in `caFile` for HTTPS to Mattermost. Node's built-in fetch (which Client4
 * uses) takes no per-request CA, and the undici npm package's Agent is not compatible with the undici
 * inside Node 24, so the certificates are added to the process-wide default CA set
 * (tls.setDefaultCACertificates), keeping every default CA. Connections that pass their own `ca` (the
 * Teleport client does) are unaffected.
 */
export function trustCaFile(caFile: string): number {
  let text: string;
  try {
    text = fs.readFileSync(caFile, 'utf8');
  } catch (err) {
    throw new MattermostError(
      'BadRequest',
      `[mattermost] ca_file ${JSON.stringify(caFile)} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)}): ` +
        'point it at a readable PEM file with the CA certificate(s) of your Mattermost server.',
    );
  }
  const pems = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (pems.length === 0) {
    throw new MattermostError(
      'BadRequest',
      `[mattermost] ca_file ${JSON.stringify(caFile)} contains no PEM certificate ("-----BEGIN CERTIFICATE-----"): ` +
        'give the CA certificate of your Mattermost server in PEM form.',
    );
  }
  for (const [i, pem] of pems.entries()) {
    try {
      new X509Certificate(pem);
    } catch (err) {
      throw new MattermostError(
        'BadRequest',
        `[mattermost] ca_file ${JSON.stringify(caFile)}: certificate ${i + 1} is not valid (${(err as Error).message}).`,
      );
    }
  }
  const fresh = pems.filter((p) => !addedCAs.has(p));
  if (fresh.length > 0) {
    tls.setDefaultCACertificates([...tls.getCACertificates('default'), ...fresh]);
    for (const p of fresh) addedCAs.add(p);
  }
  return pems.length;
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

interface ServerChannel {
  id: string;
  name: string;
  display_name: string;
  type: string;
  team_id: string;
  delete_at?: number;
}

interface ServerTeam {
  id: string;
  name: string;
  display_name: string;
}

function toPost(p: ServerPost): MattermostPost {
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

/** Normalizes the configured URL: http(s) only, no trailing slash (Client4 appends /api/v4). */
export function normalizeBaseUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new MattermostError(
      'BadRequest',
      `[mattermost] url ${JSON.stringify(raw)} is not a URL: give the server's base URL, e.g. https://mattermost.example.com`,
    );
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new MattermostError(
      'BadRequest',
      `[mattermost] url ${JSON.stringify(raw)} must start with https:// or http://`,
    );
  }
  url.search = '';
  url.hash = '';
  // A URL copied from the browser may carry /api/v4 or a team path; Client4 adds /api/v4 itself.
  const path = url.pathname.replace(/\/api\/v4\/?$/, '').replace(/\/+$/, '');
  return `${url.origin}${path}`;
}

type FetchWithResponse = (
  url: string,
  options: { method: string; body?: string; ignoreStatus: boolean },
) => Promise<{ response: Response; headers: Headers; data: unknown }>;

interface CacheEntry<T> {
  value: Promise<T>;
  expires: number;
}

export function createMattermostClient(
  cfg: MattermostConfig,
  logger: Logger,
  opts: MattermostClientOptions = {},
): MattermostApi {
  registerSecret(cfg.token);
  const baseUrl = normalizeBaseUrl(cfg.url);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const ttlMs = opts.cacheTtlMs ?? DEFAULT_CACHE_TTL_MS;
  if (cfg.caFile) {
    const n = trustCaFile(cfg.caFile);
    logger.info('Trusting the CA certificates of [mattermost] ca_file for Mattermost', {
      ca_file: cfg.caFile,
      certificates: n,
    });
  }

  const client = new TimedClient4();
  client.timeoutMs = timeoutMs;
  client.setUrl(baseUrl);
  client.setToken(cfg.token);
  client.setIncludeCookies(false);
  client.setUserAgent(opts.userAgent ?? 'teleport-plugin-mattermost');
  // doFetchWithResponse is a public field at run time but typed private; it is the only Client4 call that
  // returns the status and headers of a non-2xx answer (ignoreStatus) instead of throwing them away.
  const fetchWithResponse = (client as unknown as { doFetchWithResponse: FetchWithResponse })
    .doFetchWithResponse;

  /** One HTTP call through Client4; returns the parsed body of a 2xx or throws a MattermostError. */
  async function call<T>(op: string, url: string, method: string, body?: unknown): Promise<T> {
    const shownUrl = url.split('?')[0]!;
    let result: Awaited<ReturnType<FetchWithResponse>>;
    try {
      result = await fetchWithResponse(url, {
        method,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        ignoreStatus: true,
      });
    } catch (err) {
      const mapped =
        err instanceof mattermostClient.ClientError
          ? new MattermostError(
              'Unavailable',
              `Mattermost ${op} at ${shownUrl} failed: ${err.message} (is [mattermost] url the server's base URL?)`,
            )
          : errorFromNetwork(op, shownUrl, err, timeoutMs);
      logger.debug('Mattermost call failed', { op, url: shownUrl, error: mapped.message });
      throw mapped;
    }
    const { response, headers } = result;
    let data: unknown = result.data;
    if (typeof data === 'string' && /^\s*[[{]/.test(data)) {
      try {
        data = JSON.parse(data);
      } catch {
        /* keep the text for the error message */
      }
    }
    if (!response.ok) {
      const mapped = errorFromResponse(op, shownUrl, response.status, headers, data);
      logger.debug('Mattermost call failed', {
        op,
        url: shownUrl,
        status: response.status,
        error: mapped.message,
      });
      throw mapped;
    }
    if (!data || typeof data !== 'object') {
      throw new MattermostError(
        'BadRequest',
        `Mattermost ${op} at ${shownUrl} answered HTTP ${response.status} with ${headers.get('Content-Type') ?? 'no content type'}, ` +
          `not the JSON of the Mattermost API: is [mattermost] url the server's base URL?`,
        response.status,
      );
    }
    return data as T;
  }

  const enc = encodeURIComponent;
  let warnedNotBot = false;
  const cache = new Map<string, CacheEntry<unknown>>();

  /** Caches successful lookups for the TTL and shares one lookup among concurrent callers. */
  function cached<T>(key: string, load: () => Promise<T>): Promise<T> {
    const now = Date.now();
    const hit = cache.get(key);
    if (hit && hit.expires > now) return hit.value as Promise<T>;
    const value = load();
    cache.set(key, { value, expires: now + ttlMs });
    value.catch(() => {
      if (cache.get(key)?.value === value) cache.delete(key);
    });
    return value;
  }

  async function getMe(): Promise<MattermostUser> {
    const me = await call<{ id: string; username: string; email?: string; is_bot?: boolean }>(
      'GET /users/me',
      client.getUserRoute('me'),
      'get',
    );
    const user: MattermostUser = {
      id: me.id,
      username: me.username,
      ...(me.email ? { email: me.email } : {}),
    };
    if (me.is_bot !== true && !warnedNotBot) {
      warnedNotBot = true;
      logger.warn(
        'The [mattermost] token belongs to a regular user, not a bot account; posts will appear as that user. ' +
          'Create a bot (System Console > Integrations > Bot Accounts) and use its token.',
        { username: me.username },
      );
    }
    cache.set('me', { value: Promise.resolve(user), expires: Date.now() + ttlMs });
    return user;
  }

  const botUser = () => cached('me', getMe);

  async function resolveEmail(recipient: string, email: string): Promise<ResolvedRecipient> {
    const user = await call<{ id: string }>(
      'GET /users/email/{email}',
      `${client.getUsersRoute()}/email/${enc(email)}`,
      'get',
    ).catch((err: unknown) => {
      if (err instanceof MattermostError && err.kind === 'NotFound') {
        throw new MattermostError(
          'NotFound',
          `Mattermost has no user with the email ${JSON.stringify(email)} (recipient ${JSON.stringify(recipient)}).`,
          err.status,
        );
      }
      throw err;
    });
    const bot = await botUser();
    const channel = await call<ServerChannel>(
      'POST /channels/direct',
      `${client.getChannelsRoute()}/direct`,
      'post',
      [bot.id, user.id],
    );
    return { recipient, kind: 'user', channelId: channel.id };
  }

  async function findTeam(team: string, recipient: string): Promise<ServerTeam> {
    if (isTeamHandle(team)) {
      try {
        return await call<ServerTeam>('GET /teams/name/{team}', client.getTeamNameRoute(enc(team)), 'get');
      } catch (err) {
        if (!(err instanceof MattermostError && err.kind === 'NotFound')) throw err;
      }
    }
    // Fall back to the display name among the bot's teams.
    const mine = await call<ServerTeam[]>('GET /users/me/teams', `${client.getUserRoute('me')}/teams`, 'get');
    const matches = mine.filter(
      (t) => sameDisplayName(t.display_name, team) || t.name === team.toLowerCase(),
    );
    if (matches.length === 1) return matches[0]!;
    if (matches.length > 1) {
      throw new MattermostError(
        'BadRequest',
        `Recipient ${JSON.stringify(recipient)}: several teams are called ${JSON.stringify(team)} ` +
          `(${matches.map((t) => t.name).join(', ')}); use the team's handle from its URL.`,
      );
    }
    throw new MattermostError(
      'NotFound',
      `Recipient ${JSON.stringify(recipient)}: no team ${JSON.stringify(team)} (by handle or display name) that the ` +
        `bot belongs to; add the bot to the team.`,
      404,
    );
  }

  async function resolveChannel(
    recipient: string,
    team: string,
    channel: string,
  ): Promise<ResolvedRecipient> {
    if (isTeamHandle(team) && isChannelHandle(channel)) {
      try {
        const ch = await call<ServerChannel>(
          'GET /teams/name/{team}/channels/name/{channel}',
          `${client.getTeamNameRoute(enc(team))}/channels/name/${enc(channel)}?include_deleted=false`,
          'get',
        );
        return { recipient, kind: 'channel', channelId: ch.id };
      } catch (err) {
        // Not found by handle: it may be a display name that happens to look like a handle.
        if (!(err instanceof MattermostError && err.kind === 'NotFound')) throw err;
      }
    }
    // Display name ("myteam/Town Square", as the upstream docs write it) among the bot's channels:
    // the bot can only post where it is a member, so these are the only candidates.
    const t = await findTeam(team, recipient);
    const channels = await call<ServerChannel[]>(
      'GET /users/me/teams/{team_id}/channels',
      `${client.getUserRoute('me')}/teams/${enc(t.id)}/channels?include_deleted=false`,
      'get',
    );
    const candidates = channels.filter((c) => c.type === 'O' || c.type === 'P');
    const exact = candidates.filter((c) => c.display_name === channel.trim());
    const loose = candidates.filter(
      (c) => sameDisplayName(c.display_name, channel) || c.name === channel.trim().toLowerCase(),
    );
    const matches = exact.length > 0 ? exact : loose;
    if (matches.length === 1) return { recipient, kind: 'channel', channelId: matches[0]!.id };
    if (matches.length > 1) {
      throw new MattermostError(
        'BadRequest',
        `Recipient ${JSON.stringify(recipient)}: several channels in team ${t.name} are called ` +
          `${JSON.stringify(channel)} (${matches.map((c) => c.name).join(', ')}); use "${t.name}/<handle>" with ` +
          `the handle from the channel's URL.`,
      );
    }
    throw new MattermostError(
      'NotFound',
      `Recipient ${JSON.stringify(recipient)}: no channel ${JSON.stringify(channel)} (by handle or display name) in ` +
        `team ${t.name} that the bot is a member of; invite the bot with /invite @<bot> in that channel.`,
      404,
    );
  }

  return {
    getMe,

    resolveRecipient(recipient: string): Promise<ResolvedRecipient> {
      const parsed = parseRecipient(recipient);
      if (parsed.kind === 'invalid') return Promise.reject(new MattermostError('BadRequest', parsed.reason));
      return cached(`recipient:${recipient.trim()}`, () =>
        parsed.kind === 'email'
          ? resolveEmail(recipient, parsed.email)
          : resolveChannel(recipient, parsed.team, parsed.channel),
      );
    },

    async createPost(post: NewPost): Promise<MattermostPost> {
      if (!post.channelId) {
        throw new MattermostError(
          'BadRequest',
          'refusing to post to an empty channel id (unresolved recipient)',
        );
      }
      const created = await call<ServerPost>('POST /posts', client.getPostsRoute(), 'post', {
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
      const updated = await call<ServerPost>(
        'PUT /posts/{post_id}/patch',
        `${client.getPostRoute(enc(postId))}/patch`,
        'put',
        { id: postId, message, ...(props ? { props } : {}) },
      );
      return toPost(updated);
    },

    async listPostsSince(channelId: string, sinceMs: number): Promise<MattermostPost[]> {
      if (!channelId) throw new MattermostError('BadRequest', 'cannot list posts of an empty channel id');
      // Pages are newest first; stop at the first page that reaches back before sinceMs.
      const found = new Map<string, MattermostPost>();
      for (let page = 0; page < MAX_POST_PAGES; page++) {
        const list = await call<{ order: string[]; posts: Record<string, ServerPost> }>(
          'GET /channels/{channel_id}/posts',
          `${client.getChannelRoute(enc(channelId))}/posts?page=${page}&per_page=${POSTS_PER_PAGE}`,
          'get',
        );
        let reachedOlder = false;
        for (const id of list.order ?? []) {
          const p = list.posts?.[id];
          if (!p) continue;
          if (p.create_at < sinceMs) reachedOlder = true;
          else if (!p.delete_at) found.set(p.id, toPost(p));
        }
        if (reachedOlder || (list.order ?? []).length < POSTS_PER_PAGE) break;
      }
      return [...found.values()].sort((a, b) => a.createAt - b.createAt);
    },
  };
}
