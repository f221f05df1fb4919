// An in-process Mattermost-compatible HTTP server for exactly the REST calls our client makes, with the
// real server's auth, error shapes, limits and rate limiting (as documented at https://api.mattermost.com
// and observed on a real server), plus fault injection for delivery tests: 5xx for N calls or for a time,
// slow responses, connection resets, and "down" (listener closed, so connections are refused).
//
// Usage:
//   const mm = await startFakeMattermost();
//   const { token, user: bot } = mm.addBot({ username: 'teleport' });
//   const team = mm.addTeam({ name: 'myteam' });
//   const ch = mm.addChannel({ team: 'myteam', name: 'town-square', displayName: 'Town Square', members: [bot.id] });
//   ... mm.postsIn(ch.id) ... await mm.stop();
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import {
  AppErr,
  MESSAGES,
  MattermostStore,
  channelJson,
  dmName,
  newId,
  postJson,
  teamJson,
  userJson,
  type ChannelRecord,
  type PostRecord,
  type TeamRecord,
  type UserRecord,
} from './model.js';
import { ActionRoutes, type ActionSettings, type CallbackRecord, type Ephemeral } from './actions.js';

import { Garbler, sendGarbled, type GarbleRule } from './hostile.js';

export { dmName, isValidId, newId } from './model.js';
export type { ActionSettings, CallbackRecord, Ephemeral } from './actions.js';
export type { GarbleKind, GarbleRule } from './hostile.js';
export type { ChannelRecord, PostRecord, PostVersion, TeamRecord, UserRecord } from './model.js';

export interface FakeMattermostOptions {
  /** Serve HTTPS with this key and certificate (PEM) instead of HTTP. */
  tls?: { key: string; cert: string };
  /** Rune limit of a post message; the default is current Mattermost's 16383. */
  maxPostRunes?: number;
  /** Fill `detailed_error` in error bodies (ServiceSettings.EnableDeveloper). */
  developerMode?: boolean;
}

export interface RateLimit {
  /** Sustained requests per second per client. */
  perSecond: number;
  /** MaxBurst: requests allowed beyond the first in one burst (so burst+1 pass at once, as in Mattermost). */
  burst: number;
  /**
   * Key the buckets by token (RateLimitSettings.VaryByUser) instead of by remote address, Mattermost's
   * default, under which every client on one address (a whole test run on 127.0.0.1) shares one bucket.
   */
  varyByUser?: boolean;
}

export interface FailureRule {
  /** HTTP status to answer with (5xx for outages; 429 answers like the rate limiter). */
  status: number;
  /** Number of matching calls to fail. */
  count?: number;
  /** Or: fail every matching call for this long. */
  forMs?: number;
  method?: string;
  /** Only calls whose path (without query) starts with this string or matches this regex. */
  path?: string | RegExp;
  /** Retry-After seconds for an injected 429 (default 1). */
  retryAfterSec?: number;
  /**
   * Carry the call out first, then answer with the failure (a proxy timing out on a post that did get
   * created). Without it the call fails before it is processed.
   */
  afterProcessing?: boolean;
}

export interface RequestRecord {
  at: number;
  method: string;
  path: string;
  query: string;
  /** 0 when the connection was reset instead of answered. */
  status: number;
  userId?: string;
}

export interface FakeMattermost {
  /** Base URL to put in `[mattermost] url`, e.g. http://127.0.0.1:40123 (no trailing slash). */
  readonly url: string;
  readonly port: number;
  /** Direct access to the state, for assertions the helpers below do not cover. */
  readonly store: MattermostStore;

  /** A bot user with a fresh access token; `teams`/`channels` ('team/channel') add it as a member. */
  addBot(opts?: { username?: string; teams?: string[]; channels?: string[] }): {
    user: UserRecord;
    token: string;
  };
  addUser(opts: { email: string; username?: string; firstName?: string; lastName?: string }): UserRecord;
  /** Another token for an existing user (e.g. a human's personal access token). */
  addToken(userId: string): string;
  revokeToken(token: string): void;
  /** Deactivates the user (for a bot: "disabled" in the System Console); its tokens then get 401. */
  disableUser(userId: string): void;
  enableUser(userId: string): void;
  addTeam(opts: { name: string; displayName?: string; type?: 'O' | 'I'; members?: string[] }): TeamRecord;
  addChannel(opts: {
    team: string;
    name: string;
    displayName?: string;
    type?: 'O' | 'P';
    members?: string[];
  }): ChannelRecord;
  addToTeam(team: string, userId: string): void;
  addToChannel(channelId: string, userId: string): void;
  archiveChannel(channelId: string): void;
  /** The DM channel id between two users, if it has been created. */
  dmChannelId(userA: string, userB: string): string | undefined;
  channel(id: string): ChannelRecord | undefined;
  user(id: string): UserRecord | undefined;

  /** Every post (roots and replies) in creation order, with edit history; copies. */
  posts(): PostRecord[];
  postsIn(channelId: string): PostRecord[];
  rootPosts(channelId?: string): PostRecord[];
  repliesTo(rootId: string): PostRecord[];
  /** The conversation as readable text: channel, post, edits and thread replies. */
  transcript(): string;
  /** Every HTTP request seen, in order. */
  requests(): RequestRecord[];
  clearRequests(): void;

  /** Rate limiting like RateLimitSettings (by remote address unless varyByUser); null turns it off (the default). */
  setRateLimit(limit: RateLimit | null): void;
  setMaxPostRunes(n: number): void;
  /** Fails matching calls with `status`; rules stack, the oldest matching one applies. */
  fail(rule: FailureRule): void;
  clearFailures(): void;
  /** Delays every response by `ms` (0 turns it off). The call is still carried out, after the delay. */
  slow(ms: number): void;
  /** Closes the listener and drops every connection (so clients get ECONNREFUSED), re-listening on the same port after `ms`. Resolves once it is down. */
  down(ms: number): Promise<void>;
  /** Resolves once the server listens again after `down()`. */
  waitUp(): Promise<void>;
  /**
   * Resets (TCP RST) the connection of the next `count` requests instead of answering; with
   * `afterProcessing` the call is carried out first (the post exists, the client never hears of it).
   */
  resetConnections(count: number, opts?: { afterProcessing?: boolean }): void;
  /** Interactive actions (actions.ts): ServiceSettings for callbacks, what clickers were told, callbacks made. */
  setActionSettings(settings: Partial<ActionSettings>): void;
  /** Ephemeral messages (`ephemeral_text`) delivered to a user, oldest first. */
  ephemeralsFor(userId: string): Ephemeral[];
  callbacks(): CallbackRecord[];
  /** The server's trigger_id signing key pair: sign a trigger id as the server would (tests of forgeries). */
  signTriggerId(userId: string, nowMs?: number): { clientTriggerId: string; triggerId: string };
  stop(): Promise<void>;

  // ---- server settings and admin actions the relay must survive (see real-mattermost.md) ----
  /** PrivacySettings.ShowEmailAddress: false makes every GET /users/email/{email} answer 403. */
  setShowEmailAddress(show: boolean): void;
  /** ServiceSettings.PostEditTimeLimit in seconds (-1: unlimited, the default). */
  setPostEditTimeLimit(seconds: number): void;
  /** An admin deletes a post. */
  deletePost(postId: string): void;
  /** An admin removes a user (e.g. the bot) from a channel. */
  removeFromChannel(channelId: string, userId: string): void;
  /** An admin sets a user's system roles, e.g. 'system_user system_post_all' (the bot's post:all). */
  setRoles(userId: string, roles: string): void;
  /** Answers matching calls with a 200 that is not the API's JSON (login page, text, truncated, oversize). */
  garble(rule: GarbleRule): void;
  clearGarbles(): void;
  /** The most requests that were in progress at once since start (or since clearRequests). */
  maxConcurrent(): number;
}

interface Session {
  userId: string;
}

interface Reply {
  status: number;
  /** Without the API layer's X-Request-Id / X-Version-Id (the rate limiter answers before it). */
  bare?: boolean;
  body?: unknown;
  text?: string;
  headers?: Record<string, string>;
}

const JSON_TYPE = 'application/json';
const MAX_BODY_BYTES = 300_000;
const VERSION_ID = '11.0.0.11.0.0.fakeconfighash.false';

class Limiter {
  /** Theoretical arrival time per key (GCRA), in ms. */
  private readonly tat = new Map<string, number>();
  constructor(readonly limit: RateLimit) {}

  /** Returns the headers to send and whether the request is allowed. */
  take(key: string, now: number): { allowed: boolean; headers: Record<string, string> } {
    // As in throttled (which Mattermost uses): MaxBurst requests beyond the first, so burst+1 at once.
    const limit = this.limit.burst + 1;
    const interval = 1000 / this.limit.perSecond;
    const window = interval * limit;
    const tat = Math.max(this.tat.get(key) ?? now, now);
    const newTat = tat + interval;
    const allowed = newTat - now <= window;
    if (allowed) this.tat.set(key, newTat);
    const current = allowed ? newTat : tat;
    const remaining = Math.max(0, Math.floor((window - (current - now)) / interval));
    const headers: Record<string, string> = {
      'X-Ratelimit-Limit': String(limit),
      'X-Ratelimit-Remaining': String(remaining),
      'X-Ratelimit-Reset': String(Math.ceil((current - now) / 1000)),
    };
    if (!allowed) headers['Retry-After'] = String(Math.max(1, Math.ceil((newTat - now - window) / 1000)));
    return { allowed, headers };
  }
}

class Server implements FakeMattermost {
  readonly store: MattermostStore;
  private readonly actions: ActionRoutes;
  private readonly tokens = new Map<string, Session>();
  private readonly log: RequestRecord[] = [];
  private readonly sockets = new Set<Socket>();
  private failures: Array<FailureRule & { until?: number; left?: number }> = [];
  private limiter: Limiter | undefined;
  private delayMs = 0;
  private resetsLeft = 0;
  private resetsAfterProcessing = false;
  private readonly garbler = new Garbler();
  private inFlight = 0;
  private inFlightMax = 0;
  private upWaiters: Array<() => void> = [];
  private downTimer: NodeJS.Timeout | undefined;
  private isUp = false;
  private stopped = false;
  port = 0;
  url = '';

  constructor(
    private readonly http: http.Server,
    private readonly opts: FakeMattermostOptions,
  ) {
    this.store = new MattermostStore({ maxPostRunes: opts.maxPostRunes ?? 16383 });
    this.actions = new ActionRoutes(this.store);
    http.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    http.on('secureConnection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    http.on('request', (req, res) => void this.handle(req, res));
  }

  async listen(port: number): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await new Promise<void>((resolve, reject) => {
          const onError = (err: Error) => reject(err);
          this.http.once('error', onError);
          this.http.listen(port, '127.0.0.1', () => {
            this.http.off('error', onError);
            resolve();
          });
        });
        break;
      } catch (err) {
        // Re-listening on the same port right after close can race the OS; try again briefly.
        if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt > 50) throw err;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    this.port = (this.http.address() as AddressInfo).port;
    this.url = `${this.opts.tls ? 'https' : 'http'}://127.0.0.1:${this.port}`;
    this.isUp = true;
    for (const w of this.upWaiters.splice(0)) w();
  }

  // ---- controls ----

  addBot(opts: { username?: string; teams?: string[]; channels?: string[] } = {}) {
    const username = opts.username ?? 'teleport';
    const user = this.store.addUser({ email: `${username}@bots.local`, username, isBot: true });
    user.email = '';
    user.botDescription = 'Teleport access requests';
    for (const t of opts.teams ?? []) this.store.addToTeam(t, user.id);
    for (const c of opts.channels ?? []) {
      const [team, name] = c.split('/');
      const t = this.store.teamByName(team ?? '');
      const ch = [...this.store.channels.values()].find((x) => x.teamId === t?.id && x.name === name);
      if (!ch) throw new Error(`addBot: no channel '${c}'`);
      this.store.addToChannel(ch.id, user.id);
    }
    return { user, token: this.addToken(user.id) };
  }

  addUser(opts: { email: string; username?: string; firstName?: string; lastName?: string }) {
    return this.store.addUser(opts);
  }

  addToken(userId: string): string {
    if (!this.store.users.has(userId)) throw new Error(`no user '${userId}'`);
    const token = newId();
    this.tokens.set(token, { userId });
    return token;
  }

  revokeToken(token: string): void {
    this.tokens.delete(token);
  }

  disableUser(userId: string): void {
    const u = this.store.users.get(userId);
    if (!u) throw new Error(`no user '${userId}'`);
    u.deleteAt = this.store.now();
  }

  enableUser(userId: string): void {
    const u = this.store.users.get(userId);
    if (!u) throw new Error(`no user '${userId}'`);
    u.deleteAt = 0;
  }

  addTeam(opts: { name: string; displayName?: string; type?: 'O' | 'I'; members?: string[] }) {
    const team = this.store.addTeam(opts);
    for (const m of opts.members ?? []) this.store.addToTeam(team.id, m);
    return team;
  }

  addChannel(opts: {
    team: string;
    name: string;
    displayName?: string;
    type?: 'O' | 'P';
    members?: string[];
  }) {
    return this.store.addChannel(opts);
  }

  addToTeam(team: string, userId: string): void {
    this.store.addToTeam(team, userId);
  }

  addToChannel(channelId: string, userId: string): void {
    this.store.addToChannel(channelId, userId);
  }

  archiveChannel(channelId: string): void {
    const ch = this.store.channels.get(channelId);
    if (!ch) throw new Error(`no channel '${channelId}'`);
    ch.deleteAt = this.store.now();
  }

  dmChannelId(a: string, b: string): string | undefined {
    const name = dmName(a, b);
    return [...this.store.channels.values()].find((c) => c.type === 'D' && c.name === name)?.id;
  }

  channel(id: string) {
    return this.store.channels.get(id);
  }

  user(id: string) {
    return this.store.users.get(id);
  }

  posts(): PostRecord[] {
    return this.store.postOrder.map((id) => structuredClone(this.store.posts.get(id)!));
  }

  postsIn(channelId: string): PostRecord[] {
    return this.posts().filter((p) => p.channelId === channelId);
  }

  rootPosts(channelId?: string): PostRecord[] {
    return this.posts().filter(
      (p) => p.rootId === '' && (channelId === undefined || p.channelId === channelId),
    );
  }

  repliesTo(rootId: string): PostRecord[] {
    return this.posts().filter((p) => p.rootId === rootId);
  }

  transcript(): string {
    const out: string[] = [];
    const name = (id: string) => this.store.users.get(id)?.username ?? id;
    const indent = (text: string, prefix: string) =>
      text
        .split('\n')
        .map((l) => prefix + l)
        .join('\n');
    const channelIds = [...new Set(this.posts().map((p) => p.channelId))];
    for (const channelId of channelIds) {
      const ch = this.store.channels.get(channelId)!;
      if (ch.type === 'D') {
        const members = [...ch.members].map(name).join(' and ');
        out.push(`=== direct message: ${members}`);
      } else {
        const team = this.store.teams.get(ch.teamId);
        out.push(`=== channel ${team?.name}/${ch.name} ("${ch.displayName}")`);
      }
      for (const root of this.rootPosts(channelId)) {
        const versions = [...root.history.map((v) => v.message), root.message];
        out.push(`--- post ${root.id} by @${name(root.userId)}`);
        out.push(indent(versions[0]!, '  | '));
        for (const [i, v] of versions.slice(1).entries()) {
          out.push(`  ~~ edit ${i + 1}:`);
          out.push(indent(v, '  | '));
        }
        for (const reply of this.repliesTo(root.id)) {
          out.push(`  ↳ reply by @${name(reply.userId)}:`);
          out.push(indent(reply.message, '    | '));
        }
      }
      out.push('');
    }
    return out.join('\n');
  }

  requests(): RequestRecord[] {
    return this.log.map((r) => ({ ...r }));
  }

  clearRequests(): void {
    this.log.length = 0;
    this.inFlightMax = this.inFlight;
  }

  setRateLimit(limit: RateLimit | null): void {
    if (limit && (!(limit.perSecond > 0) || !(limit.burst >= 0))) {
      throw new Error('setRateLimit: perSecond must be > 0 and burst >= 0');
    }
    this.limiter = limit ? new Limiter(limit) : undefined;
  }

  setMaxPostRunes(n: number): void {
    this.store.opts.maxPostRunes = n;
  }

  fail(rule: FailureRule): void {
    if (rule.count === undefined && rule.forMs === undefined) throw new Error('fail: give count or forMs');
    this.failures.push({
      ...rule,
      left: rule.count,
      until: rule.forMs !== undefined ? Date.now() + rule.forMs : undefined,
    });
  }

  clearFailures(): void {
    this.failures = [];
  }

  slow(ms: number): void {
    this.delayMs = Math.max(0, ms);
  }

  async down(ms: number): Promise<void> {
    if (!this.isUp) throw new Error('down: the server is already down');
    this.isUp = false;
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    this.http.closeAllConnections();
    await closed;
    this.downTimer = setTimeout(() => {
      this.downTimer = undefined;
      if (!this.stopped) void this.listen(this.port);
    }, ms);
  }

  waitUp(): Promise<void> {
    if (this.isUp) return Promise.resolve();
    return new Promise((resolve) => this.upWaiters.push(resolve));
  }

  resetConnections(count: number, opts: { afterProcessing?: boolean } = {}): void {
    this.resetsLeft = count;
    this.resetsAfterProcessing = opts.afterProcessing ?? false;
  }

  setShowEmailAddress(show: boolean): void {
    this.store.opts.showEmailAddress = show;
  }

  setPostEditTimeLimit(seconds: number): void {
    this.store.opts.postEditTimeLimitSec = seconds;
  }

  deletePost(postId: string): void {
    this.store.deletePost(postId);
  }

  removeFromChannel(channelId: string, userId: string): void {
    this.store.removeFromChannel(channelId, userId);
  }

  setRoles(userId: string, roles: string): void {
    const u = this.store.users.get(userId);
    if (!u) throw new Error(`no user '${userId}'`);
    u.roles = roles;
  }

  garble(rule: GarbleRule): void {
    this.garbler.add(rule);
  }

  clearGarbles(): void {
    this.garbler.clear();
  }

  maxConcurrent(): number {
    return this.inFlightMax;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.downTimer) clearTimeout(this.downTimer);
    for (const w of this.upWaiters.splice(0)) w();
    if (!this.isUp) return;
    this.isUp = false;
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    this.http.closeAllConnections();
    await closed;
  }

  // ---- request handling ----

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const [rawPath = '/', query = ''] = (req.url ?? '/').split('?', 2) as [string, string?];
    const record: RequestRecord = {
      at: Date.now(),
      method: req.method ?? 'GET',
      path: rawPath,
      query,
      status: 0,
    };
    this.log.push(record);
    this.inFlight++;
    this.inFlightMax = Math.max(this.inFlightMax, this.inFlight);
    res.once('close', () => this.inFlight--);
    const requestId = newId();
    const send = (reply: Reply) => {
      record.status = reply.status;
      if (res.destroyed || res.headersSent) return;
      const headers: Record<string, string> = {
        ...(reply.bare ? {} : { 'X-Request-Id': requestId, 'X-Version-Id': VERSION_ID }),
        ...(record.method === 'GET' && !reply.bare ? { Expires: '0' } : {}),
        ...reply.headers,
      };
      if (reply.text !== undefined) {
        res
          .writeHead(reply.status, { 'Content-Type': 'text/plain; charset=utf-8', ...headers })
          .end(reply.text);
      } else {
        res
          .writeHead(reply.status, { 'Content-Type': JSON_TYPE, ...headers })
          .end(JSON.stringify(reply.body));
      }
    };
    const errorReply = (err: AppErr, extra?: Record<string, string>): Reply => {
      const bare = err instanceof RouteNotFound;
      return {
        status: err.status,
        headers: extra,
        bare,
        body: {
          id: err.id,
          message: err.message,
          detailed_error: this.opts.developerMode || bare ? err.detailed : '',
          ...(bare ? {} : { request_id: requestId }),
          status_code: err.status,
        },
      };
    };

    if (this.resetsLeft > 0 && !this.resetsAfterProcessing) {
      this.resetsLeft--;
      req.socket.resetAndDestroy();
      return;
    }

    const token = tokenFrom(req.headers.authorization);
    let rateHeaders: Record<string, string> = {};
    if (this.limiter) {
      const key = this.limiter.limit.varyByUser && token ? token : `ip:${req.socket.remoteAddress}`;
      const { allowed, headers } = this.limiter.take(key, Date.now());
      rateHeaders = headers;
      if (!allowed) return send({ status: 429, text: 'limit exceeded\n', headers, bare: true });
    }

    const injectedFailure = (injected: FailureRule): void => {
      if (injected.status === 429) {
        return send({
          status: 429,
          bare: true,
          text: 'limit exceeded\n',
          headers: { ...rateHeaders, 'Retry-After': String(injected.retryAfterSec ?? 1) },
        });
      }
      return send(
        errorReply(
          new AppErr(
            injected.status,
            '',
            injected.status >= 500 ? 'Internal Server Error' : 'Injected failure',
          ),
          rateHeaders,
        ),
      );
    };
    const before = this.takeFailure(record.method, rawPath, false);
    if (before) return injectedFailure(before);
    const garbledBefore = this.garbler.take(record.method, rawPath, false);
    if (garbledBefore) {
      record.status = 200;
      return sendGarbled(res, garbledBefore);
    }

    let body: string;
    try {
      body = await readBody(req);
    } catch (err) {
      if (err instanceof AppErr) return send(errorReply(err, rateHeaders));
      return;
    }
    const delay = () => new Promise<void>((r) => setTimeout(r, this.delayMs));
    const createsPost = record.method === 'POST' && rawPath.replace(/\/+$/, '') === '/api/v4/posts';
    // POST /posts is slowed inside the store, after its pending_post_id is claimed (see createPost).
    if (this.delayMs > 0 && !createsPost) await delay();

    try {
      const whileSaving = this.delayMs > 0 ? delay : undefined;
      const reply = await this.route(record, rawPath, new URLSearchParams(query), token, body, whileSaving);
      if (this.resetsLeft > 0 && this.resetsAfterProcessing) {
        this.resetsLeft--;
        req.socket.resetAndDestroy();
        return;
      }
      const after = this.takeFailure(record.method, rawPath, true);
      if (after) return injectedFailure(after);
      const garbledAfter = this.garbler.take(record.method, rawPath, true);
      if (garbledAfter) {
        record.status = reply.status;
        return sendGarbled(res, garbledAfter, JSON.stringify(reply.body ?? {}));
      }
      send({ ...reply, headers: { ...rateHeaders, ...reply.headers } });
    } catch (err) {
      if (err instanceof AppErr) return send(errorReply(err, rateHeaders));
      send(errorReply(new AppErr(500, 'api.fake.internal', String(err)), rateHeaders));
    }
  }

  setActionSettings(settings: Partial<ActionSettings>): void {
    Object.assign(this.actions.settings, settings);
  }

  ephemeralsFor(userId: string): Ephemeral[] {
    return this.actions.ephemerals.filter((e) => e.userId === userId).map((e) => ({ ...e }));
  }

  callbacks(): CallbackRecord[] {
    return this.actions.callbacks.map((c) => ({ ...c }));
  }

  signTriggerId(userId: string, nowMs?: number): { clientTriggerId: string; triggerId: string } {
    return this.actions.signTriggerId(userId, nowMs);
  }

  private takeFailure(method: string, path: string, afterProcessing: boolean): FailureRule | undefined {
    const now = Date.now();
    this.failures = this.failures.filter(
      (f) => (f.left === undefined || f.left > 0) && (f.until === undefined || f.until > now),
    );
    const rule = this.failures.find(
      (f) =>
        (f.afterProcessing ?? false) === afterProcessing &&
        (!f.method || f.method.toUpperCase() === method.toUpperCase()) &&
        (f.path === undefined || (typeof f.path === 'string' ? path.startsWith(f.path) : f.path.test(path))),
    );
    if (rule && rule.left !== undefined) rule.left--;
    return rule;
  }

  private session(token: string | undefined): Session {
    const session = token ? this.tokens.get(token) : undefined;
    const user = session ? this.store.users.get(session.userId) : undefined;
    if (!session || !user || user.deleteAt > 0) {
      throw new AppErr(
        401,
        'api.context.session_expired.app_error',
        MESSAGES.sessionExpired,
        token ? `token=${token.slice(0, 50)}` : 'UserRequired',
      );
    }
    return session;
  }

  private async route(
    record: RequestRecord,
    path: string,
    q: URLSearchParams,
    token: string | undefined,
    body: string,
    whileSaving?: () => Promise<void>,
  ): Promise<Reply> {
    const m = record.method;
    const seg = path.replace(/\/+$/, '').split('/').slice(1).map(decodeURIComponentSafe);
    if (seg[0] !== 'api' || seg[1] !== 'v4') throw notFound(decodeURIComponentSafe(path));
    const r = seg.slice(2);
    const is = (method: string, ...pattern: string[]) =>
      m === method && r.length === pattern.length && pattern.every((p, i) => p === '*' || p === r[i]);

    if (is('GET', 'system', 'ping')) {
      return {
        status: 200,
        body: {
          status: 'OK',
          ActiveSearchBackend: 'database',
          AndroidLatestVersion: '',
          AndroidMinVersion: '',
          IosLatestVersion: '',
          IosMinVersion: '',
        },
      };
    }

    if (is('GET', 'config', 'client'))
      return { status: 200, body: this.actions.clientConfig(q.get('format')) };

    const { userId } = this.session(token);
    record.userId = userId;
    const store = this.store;

    if (is('POST', 'posts', '*', 'actions', '*')) {
      return { status: 200, body: await this.actions.click(userId, r[1]!, r[3]!) };
    }
    if (is('GET', 'users', '*') && r[1] !== 'me') {
      const user = store.users.get(r[1]!);
      if (!user) throw new AppErr(404, 'app.user.missing_account.const', 'Unable to find the user.');
      const json = userJson(user, user.id === userId);
      // PrivacySettings.ShowEmailAddress=false: only a system admin sees emails.
      if (store.opts.showEmailAddress === false && user.id !== userId) {
        json.email = '';
      }
      return { status: 200, body: json };
    }

    if (is('GET', 'users', 'me')) return { status: 200, body: userJson(store.users.get(userId)!, true) };
    if (is('GET', 'users', 'me', 'teams'))
      return { status: 200, body: store.getMyTeams(userId).map(teamJson) };
    if (is('GET', 'users', 'email', '*')) {
      return { status: 200, body: userJson(store.getUserByEmail(userId, r[2]!), false) };
    }
    if (is('GET', 'users', 'me', 'teams', '*', 'channels')) {
      const list = store.getMyChannelsInTeam(userId, r[3]!, q.get('include_deleted') === 'true');
      return { status: 200, body: list.map(channelJson) };
    }
    if (is('POST', 'channels', 'direct')) {
      return {
        status: 201,
        body: channelJson(store.createDirectChannel(userId, parseJson(body, 'user_ids'))),
      };
    }
    if (is('GET', 'teams', 'name', '*'))
      return { status: 200, body: teamJson(store.getTeamByName(userId, r[2]!)) };
    if (is('GET', 'teams', 'name', '*', 'channels', 'name', '*')) {
      // The router's patterns ({team_name:[A-Za-z0-9_-]+}) refuse anything else, e.g. a display name.
      if (!ROUTE_NAME.test(r[2]!) || !ROUTE_NAME.test(r[5]!)) throw notFound(decodeURIComponentSafe(path));
      const ch = store.getChannelByNameForTeamName(userId, r[2]!, r[5]!, q.get('include_deleted') === 'true');
      return { status: 200, body: channelJson(ch) };
    }
    if (is('POST', 'posts')) {
      const { post, pendingPostId } = await store.createPost(userId, parseJson(body, 'post'), whileSaving);
      return { status: 201, body: postJson(post, pendingPostId) };
    }
    if (is('PUT', 'posts', '*')) {
      return { status: 200, body: postJson(store.updatePost(userId, r[1]!, parseJson(body, 'post'))) };
    }
    if (is('PUT', 'posts', '*', 'patch')) {
      return { status: 200, body: postJson(store.patchPost(userId, r[1]!, parseJson(body, 'post'))) };
    }
    if (is('GET', 'channels', '*', 'posts')) {
      if (q.get('include_deleted') === 'true') {
        throw new AppErr(403, 'api.context.permissions.app_error', MESSAGES.permissions);
      }
      const int = (k: string, d: number) => {
        const v = Number.parseInt(q.get(k) ?? '', 10);
        return Number.isFinite(v) && v >= 0 ? v : d;
      };
      const perPage = Math.min(int('per_page', 60), 200);
      const { order, posts } = store.getPostsForChannel(userId, r[1]!, {
        page: int('page', 0),
        perPage: perPage === 0 ? 60 : perPage,
        since: int('since', 0),
      });
      return {
        status: 200,
        body: {
          order,
          posts: Object.fromEntries(posts.map((p) => [p.id, postJson(p)])),
          next_post_id: '',
          prev_post_id: '',
          first_inaccessible_post_time: 0,
        },
      };
    }
    throw notFound(decodeURIComponentSafe(path));
  }
}

/** What the server's router accepts for a {team_name} or {channel_name} path parameter. */
const ROUTE_NAME = /^[A-Za-z0-9_-]+$/;

/**
 * No route matches: the router answers by itself, before the API layer, so there is no request id
 * (neither header nor body field), and the detailed error is filled even outside developer mode.
 */
class RouteNotFound extends AppErr {
  constructor(path: string) {
    super(
      404,
      'api.context.404.app_error',
      'Sorry, we could not find the page.',
      `There doesn't appear to be an api call for the url='${path}'.  Typo? are you missing a team_id or user_id as part of the url?`,
    );
  }
}

function notFound(path: string): AppErr {
  return new RouteNotFound(path);
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** Authorization: the scheme word `Bearer` in any case, then exactly one separator. */
function tokenFrom(header: string | undefined): string | undefined {
  if (!header || header.length <= 6) return undefined;
  if (header.slice(0, 6).toUpperCase() === 'BEARER') return header.slice(7);
  if (header.slice(0, 5).toLowerCase() === 'token') return header.slice(6);
  return undefined;
}

function parseJson(body: string, param: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    throw new AppErr(
      400,
      'api.context.invalid_body_param.app_error',
      `Invalid or missing ${param} in request body.`,
    );
  }
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) tooLarge = true;
      else chunks.push(c);
    });
    req.on('end', () => {
      if (tooLarge) {
        reject(
          new AppErr(413, 'api.context.request_body_too_large.app_error', 'The request body is too large.'),
        );
      } else {
        resolve(Buffer.concat(chunks).toString('utf8'));
      }
    });
    req.on('error', reject);
  });
}

export async function startFakeMattermost(opts: FakeMattermostOptions = {}): Promise<FakeMattermost> {
  const server = opts.tls
    ? https.createServer({ key: opts.tls.key, cert: opts.tls.cert })
    : http.createServer();
  // Keep-alive sockets must not hold up down()/stop(); they are destroyed explicitly.
  server.keepAliveTimeout = 5000;
  const s = new Server(server as unknown as http.Server, opts);
  await s.listen(0);
  return s;
}
