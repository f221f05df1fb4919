// The Mattermost surface the relay depends on. operator/mattermost/client.ts implements it over the
// REST v4 API with the bot token (transport.ts); tests may implement it in memory.

export interface MattermostUser {
  id: string;
  username: string;
  email?: string;
}

export interface MattermostPost {
  id: string;
  channelId: string;
  rootId: string;
  message: string;
  userId: string;
  createAt: number;
  updateAt: number;
  props: Record<string, unknown>;
}

/** A configured recipient resolved to the channel we post into. */
export interface ResolvedRecipient {
  /** As written in the config / rule / suggested reviewers. */
  recipient: string;
  kind: 'channel' | 'user';
  channelId: string;
}

export interface NewPost {
  channelId: string;
  message: string;
  /** Thread root, for replies. */
  rootId?: string;
  /** Custom props; the relay stores the request id here so it can find its own posts after a crash. */
  props?: Record<string, unknown>;
  /**
   * Sent as `pending_post_id`: Mattermost returns the already-created post instead of a second one when
   * the same key arrives again within 30 s (a retry after a timeout whose post did get created). While
   * the first call is still being saved a repeat fails with a 500 (Unavailable), so retry later.
   */
  idempotencyKey?: string;
}

export interface MattermostApi {
  /** GET /users/me: start-up check of the URL and token. */
  getMe(): Promise<MattermostUser>;
  /** `team/channel` (by handle, then display name) or an email (direct channel with the bot). */
  resolveRecipient(recipient: string): Promise<ResolvedRecipient>;
  createPost(post: NewPost): Promise<MattermostPost>;
  /**
   * Replaces the message of an existing post (PUT /posts/{id}/patch). Props, when given, replace the
   * post's whole props map on the server (`from_bot` and every other prop not sent are lost): leave them
   * out to keep the props, or send the full map.
   */
  updatePost(postId: string, message: string, props?: Record<string, unknown>): Promise<MattermostPost>;
  /** Recent posts in a channel created at or after `sinceMs` (crash recovery: find a post we made but did not record). */
  listPostsSince(channelId: string, sinceMs: number): Promise<MattermostPost[]>;
}

export type MattermostErrorKind =
  /** 401: the token is wrong or revoked, or the bot is disabled; every call fails until config changes. */
  | 'Unauthorized'
  /**
   * 403: the bot may not do this one thing (post in a channel it is not in, edit a deleted post, read
   * emails under a privacy setting): permanent for this recipient/post (operator/mattermost/refusal.ts).
   */
  | 'Forbidden'
  /** 404 (channel/user/team not found) or 400 (bad request, deleted root, archived channel): permanent for this call. */
  | 'NotFound'
  | 'BadRequest'
  /** 429: retry after `retryAfterMs`. */
  | 'RateLimited'
  /** 5xx, timeouts, connection errors: retry with backoff. */
  | 'Unavailable'
  /**
   * A 2xx (or 3xx) whose body is not the API's JSON (a proxy's login page, text, truncated, oversize):
   * temporary and ambiguous (the call may have been carried out); never a refusal, never cached.
   */
  | 'Unexpected';

export class MattermostError extends Error {
  constructor(
    readonly kind: MattermostErrorKind,
    message: string,
    readonly status?: number,
    /** From Retry-After / X-Ratelimit-Reset on 429. */
    readonly retryAfterMs?: number,
    /** The server certainly did not act on the call (429, connection refused, TLS failure), so a create can be retried blindly. */
    readonly notProcessed: boolean = kind === 'RateLimited',
    /** The AppError id of the answer (e.g. `api.post.create_post.root_id.app_error`), when there was one. */
    readonly appErrorId?: string,
  ) {
    super(message);
    this.name = `MattermostError(${kind})`;
  }

  get temporary(): boolean {
    return this.kind === 'RateLimited' || this.kind === 'Unavailable' || this.kind === 'Unexpected';
  }
}

export function isMattermostError(err: unknown, kind?: MattermostErrorKind): err is MattermostError {
  return err instanceof MattermostError && (kind === undefined || err.kind === kind);
}
