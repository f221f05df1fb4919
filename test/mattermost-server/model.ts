// State and endpoint semantics of the Mattermost look-alike, without HTTP: users, bots and tokens,
// teams, channels, posts with edit history. Each method mirrors one REST call's rules (endpoints, limits,
// de-duplication) as a real Mattermost server applies them, and throws an
// AppErr with Mattermost's id and status when the real server would refuse.
import { randomBytes } from 'node:crypto';
import { stripIntegrations } from './integrations.js';

const ID_ALPHABET = 'ybndrfg8ejkmcpqxot1uwisza345h769';

/** model.NewId(): 16 random bytes in base32 (Mattermost's alphabet), no padding: 26 characters. */
export function newId(): string {
  const bytes = randomBytes(16);
  let bits = 0;
  let value = 0;
  let out = '';
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += ID_ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += ID_ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

/** IsValidId: 26 runes, each a letter or digit. */
export function isValidId(id: string): boolean {
  return [...id].length === 26 && /^[\p{L}\p{N}]+$/u.test(id);
}

/** An error the server answers with, as an AppError body. */
export class AppErr extends Error {
  constructor(
    readonly status: number,
    readonly id: string,
    message: string,
    readonly detailed = '',
  ) {
    super(message);
  }
}

export const MESSAGES = {
  sessionExpired: 'Invalid or expired session, please login again.',
  permissions: 'You do not have the appropriate permissions.',
};

const invalidUrlParam = (name: string) =>
  new AppErr(
    400,
    'api.context.invalid_url_param.app_error',
    `Invalid or missing ${name} parameter in request URL.`,
  );
const invalidBodyParam = (name: string) =>
  new AppErr(400, 'api.context.invalid_body_param.app_error', `Invalid or missing ${name} in request body.`);
const permissionError = (userId: string, permission: string) =>
  new AppErr(
    403,
    'api.context.permissions.app_error',
    MESSAGES.permissions,
    `userId=${userId}, permission=${permission},`,
  );

export interface UserRecord {
  id: string;
  username: string;
  email: string;
  firstName: string;
  lastName: string;
  isBot: boolean;
  botDescription: string;
  /** System roles, space-separated as the API writes them (system_post_all lets it post anywhere). */
  roles: string;
  createAt: number;
  updateAt: number;
  deleteAt: number;
}

export interface TeamRecord {
  id: string;
  name: string;
  displayName: string;
  type: 'O' | 'I';
  createAt: number;
  members: Set<string>;
}

export interface ChannelRecord {
  id: string;
  teamId: string;
  name: string;
  displayName: string;
  type: 'O' | 'P' | 'D';
  createAt: number;
  updateAt: number;
  deleteAt: number;
  members: Set<string>;
}

/** One earlier version of a post, kept on every update like the store's edit-history copies. */
export interface PostVersion {
  message: string;
  props: Record<string, unknown>;
  updateAt: number;
  editAt: number;
}

export interface PostRecord {
  id: string;
  channelId: string;
  rootId: string;
  userId: string;
  message: string;
  type: string;
  props: Record<string, unknown>;
  createAt: number;
  updateAt: number;
  editAt: number;
  deleteAt: number;
  isPinned: boolean;
  hasReactions: boolean;
  replyCount: number;
  lastReplyAt: number;
  /** Previous versions, oldest first (the current one is the record itself). */
  history: PostVersion[];
}

export interface StoreOptions {
  /** Rune limit of a post message (PostMessageMaxRunesV2 = 16383 on current servers). */
  maxPostRunes: number;
  /** PrivacySettings.ShowEmailAddress (default true); false: email lookups answer 403 for everyone. */
  showEmailAddress?: boolean;
  /** ServiceSettings.PostEditTimeLimit in seconds; -1 (the default) is unlimited. */
  postEditTimeLimitSec?: number;
}

/** The channel name of a DM: both user ids, smaller first, joined by `__`. */
export function dmName(a: string, b: string): string {
  return a < b ? `${a}__${b}` : `${b}__${a}`;
}

const CHANNEL_NAME = /^[a-z0-9]+([a-z\-_0-9]+|(__)?)[a-z0-9]*$/;
const TEAM_NAME = /^[a-z0-9]+([a-z\-0-9]+|(__)?)[a-z0-9]+$/;
const PENDING_POST_TTL_MS = 30_000;
/** How long the fake takes to save a post that carries a pending_post_id. */
const SAVE_TIME_MS = 5;
const PROPS_MAX_RUNES = 800_000;

function runes(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** A clock that never goes backwards and never repeats within this store, so `since` windows are exact. */
function monotonicClock(): () => number {
  let last = 0;
  return () => {
    last = Math.max(Date.now(), last + 1);
    return last;
  };
}

export class MattermostStore {
  readonly users = new Map<string, UserRecord>();
  readonly teams = new Map<string, TeamRecord>();
  readonly channels = new Map<string, ChannelRecord>();
  readonly posts = new Map<string, PostRecord>();
  /** Creation order of posts, for transcripts and exact-count assertions. */
  readonly postOrder: string[] = [];
  private readonly pendingPostIds = new Map<string, { postId: string | undefined; expires: number }>();
  readonly now = monotonicClock();

  constructor(readonly opts: StoreOptions) {}

  // ---- setup (test controls) ----

  addUser(u: {
    email: string;
    username?: string;
    firstName?: string;
    lastName?: string;
    isBot?: boolean;
  }): UserRecord {
    const username = (u.username ?? u.email.split('@')[0] ?? 'user').toLowerCase();
    for (const other of this.users.values()) {
      if (other.username === username) throw new Error(`username '${username}' already exists`);
      if (u.email && other.email === u.email.toLowerCase())
        throw new Error(`email '${u.email}' already exists`);
    }
    const now = this.now();
    const user: UserRecord = {
      id: newId(),
      username,
      email: u.email.toLowerCase(),
      firstName: u.firstName ?? '',
      lastName: u.lastName ?? '',
      isBot: u.isBot ?? false,
      botDescription: '',
      roles: 'system_user',
      createAt: now,
      updateAt: now,
      deleteAt: 0,
    };
    this.users.set(user.id, user);
    return user;
  }

  addTeam(t: { name: string; displayName?: string; type?: 'O' | 'I' }): TeamRecord {
    if (!TEAM_NAME.test(t.name)) throw new Error(`invalid team name '${t.name}'`);
    if (this.teamByName(t.name)) throw new Error(`team '${t.name}' already exists`);
    const team: TeamRecord = {
      id: newId(),
      name: t.name,
      displayName: t.displayName ?? t.name,
      type: t.type ?? 'O',
      createAt: this.now(),
      members: new Set(),
    };
    this.teams.set(team.id, team);
    return team;
  }

  addChannel(c: {
    team: string;
    name: string;
    displayName?: string;
    type?: 'O' | 'P';
    members?: string[];
  }): ChannelRecord {
    const team = this.teams.get(c.team) ?? this.teamByName(c.team);
    if (!team) throw new Error(`no team '${c.team}'`);
    if (!CHANNEL_NAME.test(c.name)) throw new Error(`invalid channel name '${c.name}'`);
    for (const ch of this.channels.values()) {
      if (ch.teamId === team.id && ch.name === c.name) throw new Error(`channel '${c.name}' already exists`);
    }
    const now = this.now();
    const channel: ChannelRecord = {
      id: newId(),
      teamId: team.id,
      name: c.name,
      displayName: c.displayName ?? c.name,
      type: c.type ?? 'O',
      createAt: now,
      updateAt: now,
      deleteAt: 0,
      members: new Set(),
    };
    this.channels.set(channel.id, channel);
    for (const m of c.members ?? []) this.addToChannel(channel.id, m);
    return channel;
  }

  addToTeam(teamIdOrName: string, userId: string): void {
    const team = this.teams.get(teamIdOrName) ?? this.teamByName(teamIdOrName);
    if (!team) throw new Error(`no team '${teamIdOrName}'`);
    if (!this.users.has(userId)) throw new Error(`no user '${userId}'`);
    team.members.add(userId);
  }

  /** Adds a channel member (and, as Mattermost requires, a team member). */
  addToChannel(channelId: string, userId: string): void {
    const channel = this.channels.get(channelId);
    if (!channel) throw new Error(`no channel '${channelId}'`);
    if (!this.users.has(userId)) throw new Error(`no user '${userId}'`);
    channel.members.add(userId);
    if (channel.teamId) this.teams.get(channel.teamId)?.members.add(userId);
  }

  teamByName(name: string): TeamRecord | undefined {
    for (const t of this.teams.values()) if (t.name === name) return t;
    return undefined;
  }

  // ---- endpoints ----

  getUserByEmail(caller: string, email: string): UserRecord {
    const lowered = email.toLowerCase();
    if (!/^[^\s@]+@[^\s@]+$/.test(lowered)) throw invalidUrlParam('email');
    this.checkEmailsVisible();
    for (const u of this.users.values()) if (u.email === lowered) return u;
    void caller;
    throw new AppErr(404, 'app.user.missing_account.const', 'Unable to find the user.');
  }

  createDirectChannel(caller: string, body: unknown): ChannelRecord {
    if (!Array.isArray(body)) {
      throw new AppErr(
        400,
        'api.context.invalid_body_param.app_error',
        'Invalid or missing user_ids in request body.',
      );
    }
    const ids = [...new Set(body as unknown[])];
    for (const id of ids) if (typeof id !== 'string' || !isValidId(id)) throw invalidBodyParam('user_id');
    const userIds = ids as string[];
    if (userIds.length === 1 && userIds[0] === caller) userIds.push(caller);
    if (userIds.length !== 2) throw invalidBodyParam('user_ids');
    if (!userIds.includes(caller)) throw permissionError(caller, 'manage_system');
    for (const id of userIds) {
      if (!this.users.has(id)) {
        throw new AppErr(
          400,
          'api.channel.create_direct_channel.invalid_user.app_error',
          'Invalid user ID for direct channel creation.',
        );
      }
    }
    const name = dmName(userIds[0]!, userIds[1]!);
    for (const ch of this.channels.values()) if (ch.type === 'D' && ch.name === name) return ch;
    const now = this.now();
    const channel: ChannelRecord = {
      id: newId(),
      teamId: '',
      name,
      displayName: '',
      type: 'D',
      createAt: now,
      updateAt: now,
      deleteAt: 0,
      members: new Set(userIds),
    };
    this.channels.set(channel.id, channel);
    return channel;
  }

  getTeamByName(caller: string, rawName: string): TeamRecord {
    // Names are looked up lower-cased (`Team-Llama` finds team-llama), as on the real server.
    const name = rawName.toLowerCase();
    if (!TEAM_NAME.test(name)) throw invalidUrlParam('team_name');
    const team = this.teamByName(name);
    // A team the caller cannot view is reported as missing, like the real server does for invite-only ones.
    if (!team || (team.type !== 'O' && !team.members.has(caller))) {
      throw new AppErr(404, 'app.team.get_by_name.missing.app_error', 'Unable to find the existing team.');
    }
    return team;
  }

  getMyTeams(caller: string): TeamRecord[] {
    return [...this.teams.values()].filter((t) => t.members.has(caller));
  }

  getChannelByNameForTeamName(
    caller: string,
    rawTeamName: string,
    rawChannelName: string,
    includeDeleted: boolean,
  ) {
    const teamName = rawTeamName.toLowerCase();
    const channelName = rawChannelName.toLowerCase();
    if (!TEAM_NAME.test(teamName)) throw invalidUrlParam('team_name');
    if (!CHANNEL_NAME.test(channelName)) throw invalidUrlParam('channel_name');
    const missingChannel = new AppErr(
      404,
      'app.channel.get_by_name.missing.app_error',
      'Channel does not exist.',
    );
    const team = this.teamByName(teamName);
    if (!team)
      throw new AppErr(404, 'app.team.get_by_name.missing.app_error', 'Unable to find the existing team.');
    const channel = [...this.channels.values()].find((c) => c.teamId === team.id && c.name === channelName);
    if (!channel || (channel.deleteAt > 0 && !includeDeleted)) throw missingChannel;
    if (channel.type === 'O') {
      if (!team.members.has(caller) && !channel.members.has(caller))
        throw permissionError(caller, 'read_public_channel');
    } else if (!channel.members.has(caller)) {
      throw missingChannel;
    }
    return channel;
  }

  getMyChannelsInTeam(caller: string, teamId: string, includeDeleted: boolean): ChannelRecord[] {
    if (!isValidId(teamId)) throw invalidUrlParam('team_id');
    const team = this.teams.get(teamId);
    if (!team || !team.members.has(caller)) throw permissionError(caller, 'view_team');
    // The real server lists the caller's direct channels (team_id "") with every team's channels.
    return [...this.channels.values()].filter(
      (c) =>
        (c.teamId === teamId || c.type === 'D') &&
        c.members.has(caller) &&
        (includeDeleted || c.deleteAt === 0),
    );
  }

  /**
   * `whileSaving` runs after the pending_post_id is claimed and before the post is stored, like the real
   * server's processing time: a repeat with the same key meanwhile gets the 500 "pending" answer.
   */
  async createPost(
    caller: string,
    body: unknown,
    whileSaving?: () => Promise<void>,
  ): Promise<{ post: PostRecord; pendingPostId: string }> {
    if (!body || typeof body !== 'object' || Array.isArray(body)) throw invalidBodyParam('post');
    const p = body as Record<string, unknown>;
    const str = (k: string) => (typeof p[k] === 'string' ? (p[k] as string) : '');
    const channelId = str('channel_id');
    const channel = this.channels.get(channelId);
    if (!channel || !this.mayPost(caller, channel)) throw permissionError(caller, 'create_post');
    if (channel.deleteAt > 0) {
      throw new AppErr(
        400,
        'api.post.create_post.can_not_post_to_deleted.error',
        'Can not post to deleted channel.',
      );
    }
    const type = str('type');
    if (type.startsWith('system_')) {
      throw new AppErr(400, 'api.context.invalid_param.app_error', 'Invalid post.type parameter.');
    }
    const pendingPostId = str('pending_post_id');
    this.expirePending();
    if (pendingPostId) {
      const seen = this.pendingPostIds.get(pendingPostId);
      if (seen && seen.postId === undefined) {
        throw new AppErr(
          500,
          'api.post.deduplicate_create_post.pending',
          'Rejected post since another client is making the same request.',
        );
      }
      const earlier = seen?.postId ? this.posts.get(seen.postId) : undefined;
      if (earlier && this.channels.get(earlier.channelId)?.members.has(caller)) {
        return { post: earlier, pendingPostId: '' };
      }
      this.pendingPostIds.set(pendingPostId, {
        postId: undefined,
        expires: Date.now() + PENDING_POST_TTL_MS,
      });
    }
    try {
      if (whileSaving) await whileSaving();
      // Saving is never instant on the real server: a burst of repeats that arrives meanwhile gets the
      // 500 "pending" answer (observed: 8 concurrent -> one 201, seven 500), not the post.
      else if (pendingPostId) await new Promise((r) => setTimeout(r, SAVE_TIME_MS));
      if (str('id'))
        throw new AppErr(400, 'app.post.save.existing.app_error', 'You cannot update an existing Post.');
      const rootId = str('root_id');
      let root: PostRecord | undefined;
      if (rootId) {
        root = this.posts.get(rootId);
        if (!root || root.rootId !== '' || root.deleteAt > 0) {
          throw new AppErr(400, 'api.post.create_post.root_id.app_error', 'Invalid RootId parameter.');
        }
        if (root.channelId !== channelId) {
          throw new AppErr(
            400,
            'api.post.create_post.channel_root_id.app_error',
            'Invalid ChannelId for RootId parameter.',
          );
        }
      }
      const message = str('message');
      const props = this.validProps(p.props);
      this.checkMessage(message);
      const mentions = this.channelMentions(message, channel, caller);
      if (mentions) props.channel_mentions = mentions;
      const user = this.users.get(caller)!;
      if (user.isBot) props.from_bot = 'true';
      const now = this.now();
      const post: PostRecord = {
        id: newId(),
        channelId,
        rootId,
        userId: caller,
        message,
        type,
        props,
        createAt: now,
        updateAt: now,
        editAt: 0,
        deleteAt: 0,
        isPinned: false,
        hasReactions: false,
        replyCount: 0,
        lastReplyAt: 0,
        history: [],
      };
      this.posts.set(post.id, post);
      this.postOrder.push(post.id);
      if (root) {
        // A reply moves its root into `since` windows and counts on it.
        root.updateAt = now;
        root.replyCount++;
        root.lastReplyAt = now;
      }
      channel.updateAt = now;
      if (pendingPostId)
        this.pendingPostIds.set(pendingPostId, {
          postId: post.id,
          expires: Date.now() + PENDING_POST_TTL_MS,
        });
      return { post, pendingPostId };
    } catch (err) {
      if (pendingPostId) this.pendingPostIds.delete(pendingPostId);
      throw err;
    }
  }

  patchPost(caller: string, postId: string, body: unknown): PostRecord {
    if (!isValidId(postId)) throw invalidUrlParam('post_id');
    if (!body || typeof body !== 'object' || Array.isArray(body)) throw invalidBodyParam('post');
    const patch = body as Record<string, unknown>;
    const post = this.posts.get(postId);
    // A missing post is reported as a permission error, like the real server.
    if (!post) throw permissionError(caller, 'edit_post');
    if (post.userId !== caller) throw permissionError(caller, 'edit_others_posts');
    const channel = this.channels.get(post.channelId);
    if (!channel?.members.has(caller)) throw permissionError(caller, 'edit_post');
    // The real server looks a deleted post up as missing, and a missing post is a permission error.
    if (post.deleteAt > 0) throw permissionError(caller, 'edit_post');
    if (channel.deleteAt > 0) {
      throw new AppErr(
        400,
        'api.post.patch_post.can_not_update_post_in_deleted.error',
        'Can not update a post in a deleted channel.',
      );
    }
    const message = typeof patch.message === 'string' ? patch.message : undefined;
    if (message !== undefined) this.checkMessage(message);
    if (message !== undefined && message !== post.message) this.checkEditTimeLimit(post);
    const props =
      patch.props === undefined || patch.props === null ? undefined : this.validProps(patch.props);
    const now = this.now();
    post.history.push({
      message: post.message,
      props: { ...post.props },
      updateAt: post.updateAt,
      editAt: post.editAt,
    });
    if (message !== undefined && message !== post.message) {
      post.message = message;
      post.editAt = now;
    }
    // Props, when given, replace the whole map: `from_bot` is lost unless sent (as on the real server).
    if (props) post.props = props;
    if (typeof patch.is_pinned === 'boolean') post.isPinned = patch.is_pinned;
    if (typeof patch.has_reactions === 'boolean') post.hasReactions = patch.has_reactions;
    post.updateAt = now;
    return post;
  }

  /**
   * PUT /posts/{id} (full update, the route Teleport's own plugin uses): message replaced, props replaced
   * wholesale (cleared if omitted; `from_bot` of a bot's post kept), is_pinned/has_reactions overwritten.
   */
  updatePost(caller: string, postId: string, body: unknown): PostRecord {
    if (!isValidId(postId)) throw invalidUrlParam('post_id');
    if (!body || typeof body !== 'object' || Array.isArray(body)) throw invalidBodyParam('post');
    const update = body as Record<string, unknown>;
    if (update.id !== postId) throw invalidBodyParam('id');
    const post = this.posts.get(postId);
    if (!post || post.deleteAt > 0) throw permissionError(caller, 'edit_post');
    if (post.userId !== caller) throw permissionError(caller, 'edit_others_posts');
    const channel = this.channels.get(post.channelId);
    if (!channel?.members.has(caller)) throw permissionError(caller, 'edit_post');
    if (channel.deleteAt > 0) {
      throw new AppErr(
        400,
        'api.post.update_post.can_not_update_post_in_deleted.error',
        'Can not update a post in a deleted channel.',
      );
    }
    const message = typeof update.message === 'string' ? update.message : '';
    this.checkMessage(message);
    if (message !== post.message) this.checkEditTimeLimit(post);
    const props = this.validProps(update.props);
    if (post.props.from_bot) props.from_bot = post.props.from_bot;
    const now = this.now();
    post.history.push({
      message: post.message,
      props: { ...post.props },
      updateAt: post.updateAt,
      editAt: post.editAt,
    });
    if (message !== post.message) post.editAt = now;
    post.message = message;
    post.props = props;
    post.isPinned = update.is_pinned === true;
    post.hasReactions = update.has_reactions === true;
    post.updateAt = now;
    return post;
  }

  /** An admin deletes a post (it stays stored with delete_at set, as on the real server). */
  deletePost(postId: string): void {
    const post = this.posts.get(postId);
    if (!post) throw new Error(`no post '${postId}'`);
    post.deleteAt = this.now();
    post.updateAt = post.deleteAt;
  }

  /** An admin removes a user (e.g. the bot) from a channel; it stays in the team. */
  removeFromChannel(channelId: string, userId: string): void {
    const channel = this.channels.get(channelId);
    if (!channel) throw new Error(`no channel '${channelId}'`);
    channel.members.delete(userId);
  }

  getPostsForChannel(
    caller: string,
    channelId: string,
    q: { page: number; perPage: number; since: number },
  ): { order: string[]; posts: PostRecord[] } {
    if (!isValidId(channelId)) throw invalidUrlParam('channel_id');
    const channel = this.channels.get(channelId);
    if (!channel)
      throw new AppErr(404, 'app.channel.get.existing.app_error', 'Unable to find the existing channel.');
    const teamMemberOfPublic = channel.type === 'O' && this.teams.get(channel.teamId)?.members.has(caller);
    if (!channel.members.has(caller) && !teamMemberOfPublic)
      throw permissionError(caller, 'read_channel_content');
    const inChannel = this.postOrder
      .map((id) => this.posts.get(id)!)
      .filter((p) => p.channelId === channelId)
      .reverse();
    if (q.since > 0) {
      const changed = inChannel.filter((p) => p.updateAt > q.since).slice(0, 1000);
      const roots = changed
        .filter((p) => p.rootId && !changed.some((c) => c.id === p.rootId))
        .map((p) => this.posts.get(p.rootId)!)
        .filter((r, i, all) => all.findIndex((x) => x.id === r.id) === i);
      const posts = [...changed, ...roots];
      return { order: changed.map((p) => p.id), posts };
    }
    const page = inChannel
      .filter((p) => p.deleteAt === 0)
      .slice(q.page * q.perPage, (q.page + 1) * q.perPage);
    const roots = page
      .filter((p) => p.rootId && !page.some((c) => c.id === p.rootId))
      .map((p) => this.posts.get(p.rootId)!)
      .filter((r, i, all) => all.findIndex((x) => x.id === r.id) === i);
    return { order: page.map((p) => p.id), posts: [...page, ...roots] };
  }

  // ---- helpers ----

  /**
   * create_post: channel members; with system_post_all any existing channel; with system_post_all_public
   * any public one (a bot given "post:all" in the System Console).
   */
  private mayPost(caller: string, channel: ChannelRecord): boolean {
    if (channel.members.has(caller)) return true;
    const roles = (this.users.get(caller)?.roles ?? '').split(' ');
    if (roles.includes('system_post_all')) return true;
    return channel.type === 'O' && roles.includes('system_post_all_public');
  }

  /**
   * FillInPostProps: every `~name` in the text (code spans and fences included, the server does not
   * parse markdown here) that names a public channel of the post's team (for a DM: of the poster's
   * teams) is listed in props.channel_mentions; private and unknown names are not.
   */
  private channelMentions(
    message: string,
    channel: ChannelRecord,
    caller: string,
  ): Record<string, { display_name: string; team_name: string }> | undefined {
    const names = new Set([...message.matchAll(/\B~([a-zA-Z0-9\-_]+)/g)].map((m) => m[1]!));
    const teams = channel.teamId ? [channel.teamId] : this.getMyTeams(caller).map((t) => t.id);
    const out: Record<string, { display_name: string; team_name: string }> = {};
    for (const c of this.channels.values()) {
      if (c.type !== 'O' || !names.has(c.name) || !teams.includes(c.teamId)) continue;
      out[c.name] = { display_name: c.displayName, team_name: this.teams.get(c.teamId)!.name };
    }
    return Object.keys(out).length > 0 ? out : undefined;
  }

  /** PrivacySettings.ShowEmailAddress=false: every lookup (known address or not) is refused. */
  private checkEmailsVisible(): void {
    if (this.opts.showEmailAddress === false) {
      throw new AppErr(
        403,
        'api.user.get_user_by_email.permissions.app_error',
        'Unable to get user by email.',
      );
    }
  }

  /** ServiceSettings.PostEditTimeLimit: the message may not change once the post is older than it. */
  private checkEditTimeLimit(post: PostRecord): void {
    const limit = this.opts.postEditTimeLimitSec ?? -1;
    if (limit >= 0 && Date.now() - post.createAt > limit * 1000) {
      throw new AppErr(
        400,
        'api.post.update_post.permissions_time_limit.app_error',
        `Post edit is only allowed for ${limit} seconds. Please ask your System Administrator for details.`,
      );
    }
  }

  private checkMessage(message: string): void {
    const length = runes(message);
    if (length > this.opts.maxPostRunes) {
      throw new AppErr(
        400,
        'model.post.is_valid.message_length.app_error',
        'Post Message property is longer than the maximum permitted length.',
        `Length=${length}, MaxLength=${this.opts.maxPostRunes}`,
      );
    }
  }

  private validProps(raw: unknown): Record<string, unknown> {
    if (raw === undefined || raw === null) return {};
    if (typeof raw !== 'object' || Array.isArray(raw)) throw invalidBodyParam('props');
    const props = { ...(raw as Record<string, unknown>) };
    // SanitizeProps: clients may not set these.
    delete props.add_channel_member;
    delete props.force_notification;
    if (runes(JSON.stringify(props)) > PROPS_MAX_RUNES) {
      throw new AppErr(400, 'model.post.is_valid.props.app_error', 'Invalid props.');
    }
    return props;
  }

  private expirePending(): void {
    const now = Date.now();
    for (const [key, v] of this.pendingPostIds) if (v.expires <= now) this.pendingPostIds.delete(key);
  }
}

// ---- JSON shapes (snake_case, as the server sends them) ----

export function userJson(u: UserRecord, self: boolean): Record<string, unknown> {
  return {
    id: u.id,
    create_at: u.createAt,
    update_at: u.updateAt,
    delete_at: u.deleteAt,
    username: u.username,
    auth_data: '',
    auth_service: '',
    email: u.email,
    nickname: '',
    first_name: u.firstName,
    last_name: u.lastName,
    position: '',
    roles: u.roles,
    ...(self ? { notify_props: { channel: 'true', desktop: 'mention', email: 'true' } } : {}),
    locale: 'en',
    timezone: { automaticTimezone: '', manualTimezone: '', useAutomaticTimezone: 'true' },
    ...(u.isBot ? { is_bot: true, bot_description: u.botDescription } : {}),
    disable_welcome_email: false,
  };
}

export function teamJson(t: TeamRecord): Record<string, unknown> {
  return {
    id: t.id,
    create_at: t.createAt,
    update_at: t.createAt,
    delete_at: 0,
    display_name: t.displayName,
    name: t.name,
    description: '',
    email: '',
    type: t.type,
    company_name: '',
    allowed_domains: '',
    invite_id: '',
    allow_open_invite: t.type === 'O',
    scheme_id: null,
    group_constrained: null,
    policy_id: null,
  };
}

export function channelJson(c: ChannelRecord): Record<string, unknown> {
  return {
    id: c.id,
    create_at: c.createAt,
    update_at: c.updateAt,
    delete_at: c.deleteAt,
    team_id: c.teamId,
    type: c.type,
    display_name: c.displayName,
    name: c.name,
    header: '',
    purpose: '',
    last_post_at: c.updateAt,
    total_msg_count: 0,
    extra_update_at: 0,
    creator_id: '',
    scheme_id: null,
    group_constrained: null,
    shared: null,
    total_msg_count_root: 0,
    policy_id: null,
    last_root_post_at: c.updateAt,
  };
}

export function postJson(p: PostRecord, pendingPostId = ''): Record<string, unknown> {
  return {
    id: p.id,
    create_at: p.createAt,
    update_at: p.updateAt,
    edit_at: p.editAt,
    delete_at: p.deleteAt,
    is_pinned: p.isPinned,
    user_id: p.userId,
    channel_id: p.channelId,
    root_id: p.rootId,
    original_id: '',
    message: p.message,
    type: p.type,
    props: stripIntegrations(p.props),
    hashtags: '',
    file_ids: [],
    pending_post_id: pendingPostId,
    ...(p.hasReactions ? { has_reactions: true } : {}),
    reply_count: p.replyCount,
    last_reply_at: p.lastReplyAt,
    participants: null,
    metadata: {},
  };
}
