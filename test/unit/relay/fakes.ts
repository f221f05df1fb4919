// In-memory TeleportApi and MattermostApi with the semantics the relay relies on (CAS plugin data,
// INIT on every (re)connect; posts with props, listPostsSince, typed errors) and fault injection.
import { randomUUID } from 'node:crypto';
import {
  MattermostError,
  type MattermostApi,
  type MattermostErrorKind,
  type MattermostPost,
  type MattermostUser,
  type NewPost,
  type ResolvedRecipient,
} from '../../../operator/mattermost/api.js';
import {
  TeleportError,
  type AccessMonitoringRule,
  type AccessRequest,
  type AccessReview,
  type ListAccessRequestsFilter,
  type PingInfo,
  type RequestState,
  type TeleportApi,
  type WatchEvent,
  type WatchKindName,
} from '../../../operator/teleport/api.js';
import type { PluginConfig } from '../../../operator/config/types.js';

export class MemoryTeleport implements TeleportApi {
  readonly requests = new Map<string, AccessRequest>();
  readonly data = new Map<string, Map<string, Record<string, string>>>();
  readonly rules = new Map<string, AccessMonitoringRule>();
  private subscribers = new Set<(e: WatchEvent | 'drop') => void>();
  ping_: PingInfo = {
    clusterName: 'test.example',
    serverVersion: '17.0.0',
    proxyPublicAddr: 'teleport.example.com:443',
    advancedAccessWorkflows: false,
    accessMonitoringConfigured: true,
  };
  /** Fail the next N updatePluginData calls with CompareFailed (another writer). */
  conflicts = 0;
  updates = 0;
  reads = 0;

  async ping(): Promise<PingInfo> {
    return this.ping_;
  }

  /** While true, a dropped watch does not come back (Teleport unreachable). */
  watchBlocked = false;

  watch(_kinds: WatchKindName[], signal: AbortSignal): AsyncIterable<WatchEvent> {
    const subscribers = this.subscribers;
    const blocked = () => this.watchBlocked;
    return {
      [Symbol.asyncIterator]: async function* () {
        while (!signal.aborted) {
          while (blocked() && !signal.aborted) await new Promise((r) => setTimeout(r, 5));
          if (signal.aborted) return;
          const buffer: (WatchEvent | 'drop')[] = [{ type: 'INIT' }];
          let wake: (() => void) | undefined;
          const push = (e: WatchEvent | 'drop') => {
            buffer.push(e);
            wake?.();
          };
          const onAbort = () => wake?.();
          signal.addEventListener('abort', onAbort);
          subscribers.add(push);
          try {
            for (;;) {
              while (buffer.length === 0 && !signal.aborted) {
                await new Promise<void>((r) => (wake = r));
                wake = undefined;
              }
              if (signal.aborted) return;
              const e = buffer.shift() as WatchEvent | 'drop';
              if (e === 'drop') {
                yield { type: 'DOWN', reason: 'stream closed by the server' };
                break;
              }
              yield structuredClone(e);
            }
          } finally {
            subscribers.delete(push);
            signal.removeEventListener('abort', onAbort);
          }
        }
      },
    };
  }

  private emit(e: WatchEvent): void {
    for (const s of this.subscribers) s(e);
  }

  /** Ends the current streams; watchers reconnect and get INIT again. */
  dropStreams(): void {
    for (const s of this.subscribers) s('drop');
  }

  get watcherCount(): number {
    return this.subscribers.size;
  }

  createRequest(partial: Partial<AccessRequest> = {}): AccessRequest {
    const now = new Date();
    const req: AccessRequest = {
      id: randomUUID(),
      user: 'requester@example.com',
      roles: ['editor'],
      state: 'PENDING',
      created: now,
      expires: new Date(now.getTime() + 3600_000),
      resourceExpires: new Date(now.getTime() + 3600_000),
      requestReason: 'because',
      resolveReason: '',
      reviews: [],
      suggestedReviewers: [],
      requestedResources: [],
      systemAnnotations: {},
      loginHint: '',
      ...partial,
    };
    this.requests.set(req.id, req);
    this.emit({ type: 'PUT', request: req });
    return req;
  }

  review(id: string, review: Partial<AccessReview> & { author: string; proposedState: RequestState }) {
    const req = this.requests.get(id) as AccessRequest;
    req.reviews.push({ roles: [], reason: '', created: new Date(), ...review });
    this.emit({ type: 'PUT', request: req });
    return req;
  }

  setState(id: string, state: RequestState, reason = ''): AccessRequest {
    const req = this.requests.get(id) as AccessRequest;
    req.state = state;
    req.resolveReason = reason;
    this.emit({ type: 'PUT', request: req });
    return req;
  }

  deleteRequest(id: string): void {
    this.requests.delete(id);
    this.emit({ type: 'DELETE', requestId: id });
  }

  putRule(rule: AccessMonitoringRule): void {
    this.rules.set(rule.name, rule);
    this.emit({ type: 'RULE_PUT', rule });
  }

  async listAccessRequests(filter: ListAccessRequestsFilter = {}): Promise<AccessRequest[]> {
    return [...this.requests.values()]
      .filter((r) => (!filter.id || r.id === filter.id) && (!filter.state || r.state === filter.state))
      .map((r) => structuredClone(r));
  }

  async getPluginData(requestId: string, plugin: string): Promise<Record<string, string> | undefined> {
    this.reads++;
    const d = this.data.get(requestId)?.get(plugin);
    return d ? { ...d } : undefined;
  }

  pluginData(requestId: string): Record<string, string> | undefined {
    return this.data.get(requestId)?.get('mattermost');
  }

  async updatePluginData(
    requestId: string,
    plugin: string,
    set: Record<string, string>,
    expect?: Record<string, string>,
  ): Promise<void> {
    this.updates++;
    if (this.conflicts > 0) {
      this.conflicts--;
      throw new TeleportError('CompareFailed', 'injected concurrent write');
    }
    let record = this.data.get(requestId);
    if (!record) {
      if (!this.requests.has(requestId))
        throw new TeleportError('NotFound', `request ${requestId} not found`);
      record = new Map();
      this.data.set(requestId, record);
    }
    const current = record.get(plugin) ?? {};
    for (const [k, v] of Object.entries(expect ?? {})) {
      if ((current[k] ?? '') !== v) throw new TeleportError('CompareFailed', `expectation failed for ${k}`);
    }
    const next = { ...current };
    for (const [k, v] of Object.entries(set)) {
      if (v === '') delete next[k];
      else next[k] = v;
    }
    record.set(plugin, next);
  }

  async listAccessMonitoringRules(name: string): Promise<AccessMonitoringRule[]> {
    return [...this.rules.values()].filter((r) => r.notification.name === name);
  }

  close(): void {}
}

export interface RecordedPost extends MattermostPost {
  edits: string[];
}

export class MemoryMattermost implements MattermostApi {
  readonly bot: MattermostUser = { id: 'bot0000000000000000000000a', username: 'teleport' };
  readonly recipients = new Map<string, string>();
  readonly posts: RecordedPost[] = [];
  /** Calls fail with Unavailable while true. */
  down = false;
  /** The next N calls fail with this kind. */
  failures: { kind: MattermostErrorKind; remaining: number; retryAfterMs?: number } | undefined;
  /** The next N createPost calls save the post, then fail (a timeout after the server saved it). */
  saveThenFail = 0;
  /**
   * What the next createPost calls answer, one entry per call: `unavailable` fails before saving (an
   * ambiguous 503 for the client), `saveThenFail` saves then fails, `rateLimited` answers 429 (nothing saved).
   */
  createScript: Array<'unavailable' | 'saveThenFail' | 'rateLimited'> = [];
  /** Channels whose calls fail for now (nothing done), e.g. a proxy in front of one team is down. */
  readonly failingChannels = new Set<string>();
  /** The next post into this channel is saved, then the channel fails (failingChannels) from its answer on. */
  saveThenGoDown: string | undefined;
  /** Channels that answer 404 to posts. */
  readonly goneChannels = new Set<string>();
  calls = 0;
  private clock = 1_700_000_000_000;

  addChannel(recipient: string, channelId = `ch-${recipient.replace(/[^a-z0-9]/gi, '')}`): string {
    this.recipients.set(recipient, channelId);
    return channelId;
  }

  private gate(): void {
    this.calls++;
    if (this.down) throw new MattermostError('Unavailable', 'connect ECONNREFUSED', undefined);
    if (this.failures && this.failures.remaining > 0) {
      this.failures.remaining--;
      const f = this.failures;
      throw new MattermostError(
        f.kind,
        `injected ${f.kind}`,
        f.kind === 'RateLimited' ? 429 : 503,
        f.retryAfterMs,
      );
    }
  }

  private failIn(channelId: string | undefined): void {
    if (channelId !== undefined && this.failingChannels.has(channelId)) {
      throw new MattermostError('Unavailable', 'injected: connection refused', undefined, undefined, true);
    }
  }

  async getMe(): Promise<MattermostUser> {
    this.gate();
    return this.bot;
  }

  async resolveRecipient(recipient: string): Promise<ResolvedRecipient> {
    this.gate();
    const channelId = this.recipients.get(recipient);
    if (!channelId) throw new MattermostError('NotFound', `no such recipient ${recipient}`, 404);
    return { recipient, kind: recipient.includes('@') ? 'user' : 'channel', channelId };
  }

  async createPost(post: NewPost): Promise<MattermostPost> {
    this.gate();
    this.failIn(post.channelId);
    const scripted = this.createScript.shift();
    if (scripted === 'unavailable') throw new MattermostError('Unavailable', 'injected 503', 503);
    if (scripted === 'rateLimited') throw new MattermostError('RateLimited', 'injected 429', 429, 5);
    if (scripted === 'saveThenFail') this.saveThenFail++;
    if (this.goneChannels.has(post.channelId))
      throw new MattermostError('NotFound', 'channel not found', 404);
    if (post.rootId && !this.posts.some((p) => p.id === post.rootId)) {
      throw new MattermostError('BadRequest', 'invalid root_id', 400);
    }
    const now = ++this.clock;
    const saved: RecordedPost = {
      id: randomUUID().replace(/-/g, '').slice(0, 26),
      channelId: post.channelId,
      rootId: post.rootId ?? '',
      message: post.message,
      userId: this.bot.id,
      createAt: now,
      updateAt: now,
      props: structuredClone(post.props ?? {}),
      edits: [],
    };
    this.posts.push(saved);
    if (saved.rootId) {
      const root = this.posts.find((p) => p.id === saved.rootId) as RecordedPost;
      root.updateAt = now;
    }
    if (this.saveThenGoDown === saved.channelId) {
      // Saved, then the channel's calls fail (the answer and what follows are lost).
      this.saveThenGoDown = undefined;
      this.failingChannels.add(saved.channelId);
      throw new MattermostError('Unavailable', 'request timed out', undefined);
    }
    if (this.saveThenFail > 0) {
      this.saveThenFail--;
      throw new MattermostError('Unavailable', 'request timed out', undefined);
    }
    return this.strip(saved);
  }

  async updatePost(
    postId: string,
    message: string,
    props?: Record<string, unknown>,
  ): Promise<MattermostPost> {
    this.gate();
    const post = this.posts.find((p) => p.id === postId);
    this.failIn(post?.channelId);
    if (!post) throw new MattermostError('NotFound', 'post not found', 404);
    post.edits.push(post.message);
    post.message = message;
    if (props) post.props = structuredClone(props);
    post.updateAt = ++this.clock;
    return this.strip(post);
  }

  /** listPostsSince calls: each search spends rate limit on a real server. */
  searches = 0;

  async listPostsSince(channelId: string, sinceMs: number): Promise<MattermostPost[]> {
    this.gate();
    this.failIn(channelId);
    this.searches++;
    // The fake's clock starts in the past; "since" from the relay's clock means "everything".
    void sinceMs;
    return this.posts.filter((p) => p.channelId === channelId).map((p) => this.strip(p));
  }

  private strip(p: RecordedPost): MattermostPost {
    const { edits: _edits, ...rest } = p;
    return structuredClone(rest);
  }

  roots(): RecordedPost[] {
    return this.posts.filter((p) => p.rootId === '');
  }
  repliesTo(rootId: string): RecordedPost[] {
    return this.posts.filter((p) => p.rootId === rootId);
  }
}

export function testConfig(
  roleToRecipients: Record<string, string[]>,
  notifyRequester = false,
): PluginConfig {
  return {
    source: '/test/teleport-mattermost.toml',
    teleport: { addr: 'localhost:3025', refreshIdentity: false, refreshIdentityIntervalMs: 60_000 },
    mattermost: {
      url: 'http://127.0.0.1:1',
      token: 'test-token',
      tokenSource: 'inline',
      recipients: [],
      notifyRequester,
    },
    roleToRecipients,
    log: { output: 'stderr', severity: 'error', format: 'text' },
    http: { listenAddr: '127.0.0.1:0' },
  };
}

/** Retry and requeue delays short enough for unit tests. */
export const FAST_TUNING = {
  retry: { baseDelayMs: 2, maxDelayMs: 20, budgetMs: 100 },
  requeue: { baseDelayMs: 5, maxDelayMs: 50 },
  probeIntervalMs: 20,
  readyGraceMs: 0,
  startupBudgetMs: 50,
};

export async function until(check: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
