// One world, two servers: the same team, channels, users and bot on the real Mattermost (seeded over
// REST as its first user, the admin) and on the fake (test/mattermost-server, seeded through its
// controls), behind one interface, so a test written once runs against both with the same assertions.
//
// team-llama ("Team Llama"):
//   channel-llama  public,  bot member      private-llama  private, bot member
//   outside-llama  public,  bot NOT member  secret-llama   private, bot NOT member
// users reviewer1/reviewer2/requester1/alice @example.com (members of the team and channel-llama),
// bot `teleport` (system_user only, as `POST /bots` makes it) with a user access token.
import { startFakeMattermost, type FakeMattermost } from '../mattermost-server/index.js';
import { EMAILS, REAL_WORLD_ENV, TEAM, channelSteps, must, type RealWorldHandoff } from './bootstrap.js';

export { EMAILS, REAL_WORLD_ENV, TEAM, seedRealWorld, type RealWorldHandoff } from './bootstrap.js';

export interface WorldPost {
  id: string;
  channelId: string;
  rootId: string;
  userId: string;
  message: string;
  props: Record<string, unknown>;
  deleted: boolean;
}

export interface World {
  readonly kind: 'fake' | 'real';
  readonly url: string;
  readonly botToken: string;
  readonly botId: string;
  readonly teamId: string;
  readonly channels: { llama: string; private: string; outside: string; secret: string };
  /** email -> user id */
  readonly users: Record<string, string>;
  /** A new channel in team-llama (archiving and membership tests use their own). */
  createChannel(name: string, opts: { type: 'O' | 'P'; botMember: boolean }): Promise<string>;
  addToChannel(channelId: string, userId: string): Promise<void>;
  removeFromChannel(channelId: string, userId: string): Promise<void>;
  archiveChannel(channelId: string): Promise<void>;
  /** An admin sets the bot's system roles ('system_user system_post_all' is post:all). */
  setBotRoles(roles: string): Promise<void>;
  /** An admin deletes a post. */
  deletePost(postId: string): Promise<void>;
  /** PrivacySettings.ShowEmailAddress */
  setShowEmailAddress(show: boolean): Promise<void>;
  /** ServiceSettings.PostEditTimeLimit (seconds; -1 unlimited) */
  setPostEditTimeLimit(seconds: number): Promise<void>;
  /** Every post in a channel, oldest first, as an admin sees it (deleted ones included on the fake only). */
  posts(channelId: string): Promise<WorldPost[]>;
  /** A member's unread mention count in a channel. */
  mentionCount(userId: string, channelId: string): Promise<number>;
  /** Another bot token on the same bot (e.g. for a second client). */
  newBotToken(): Promise<string>;
  stop(): Promise<void>;
}

// ---- the real server, seeded over REST ----

interface ServerPost {
  id: string;
  channel_id: string;
  root_id: string;
  user_id: string;
  message: string;
  props?: Record<string, unknown>;
  delete_at: number;
}

/** The real server's world in a test file, from what global-setup.ts seeded. */
export function realWorld(h: RealWorldHandoff = realHandoff(), url = h.url): World {
  const call = (expected: number | number[], method: string, path: string, body?: unknown) =>
    must(expected, url, h.adminToken, method, path, body);
  const { botId } = h;
  const { createChannel, addToChannel } = channelSteps(call, h.teamId);
  const newBotToken = async () =>
    (await call(200, 'POST', `/users/${botId}/tokens`, { description: 'tests' })).body.token as string;
  return {
    kind: 'real',
    url,
    botToken: h.botToken,
    botId,
    teamId: h.teamId,
    channels: h.channels,
    users: h.users,
    async createChannel(name, opts) {
      const id = await createChannel(name, opts.type);
      if (opts.botMember) await addToChannel(id, botId);
      return id;
    },
    addToChannel,
    async removeFromChannel(channelId, userId) {
      await call(200, 'DELETE', `/channels/${channelId}/members/${userId}`);
    },
    async archiveChannel(channelId) {
      await call(200, 'DELETE', `/channels/${channelId}`);
    },
    async deletePost(postId) {
      await call(200, 'DELETE', `/posts/${postId}`);
    },
    async setBotRoles(roles) {
      await call(200, 'PUT', `/users/${botId}/roles`, { roles });
    },
    async setShowEmailAddress(show) {
      await call(200, 'PUT', '/config/patch', { PrivacySettings: { ShowEmailAddress: show } });
    },
    async setPostEditTimeLimit(seconds) {
      await call(200, 'PUT', '/config/patch', { ServiceSettings: { PostEditTimeLimit: seconds } });
    },
    async posts(channelId) {
      const list = (await call(200, 'GET', `/channels/${channelId}/posts?per_page=200`)).body;
      return (list.order as string[])
        .map((id) => (list.posts as Record<string, ServerPost>)[id]!)
        .reverse()
        .map((p): WorldPost => ({
          id: p.id,
          channelId: p.channel_id,
          rootId: p.root_id,
          userId: p.user_id,
          message: p.message,
          props: p.props ?? {},
          deleted: p.delete_at > 0,
        }));
    },
    async mentionCount(userId, channelId) {
      return (await call(200, 'GET', `/channels/${channelId}/members/${userId}`)).body
        .mention_count as number;
    },
    newBotToken,
    async stop() {
      /* the tier's server is stopped by global-teardown.ts */
    },
  };
}

// ---- the fake, seeded through its controls ----

export async function startFakeWorld(): Promise<World & { mm: FakeMattermost }> {
  const mm = await startFakeMattermost();
  const users: Record<string, string> = {};
  for (const email of EMAILS) users[email] = mm.addUser({ email, username: email.split('@')[0] }).id;
  const bot = mm.addBot({ username: 'teleport' });
  const botId = bot.user.id;
  const team = mm.addTeam({
    name: TEAM,
    displayName: 'Team Llama',
    members: [botId, ...Object.values(users)],
  });
  const channel = (name: string, type: 'O' | 'P', members: string[]) =>
    mm.addChannel({
      team: TEAM,
      name,
      displayName: name.replace(/-/g, ' ').replace(/\b\w/g, (c) => c.toUpperCase()),
      type,
      members,
    }).id;
  const channels = {
    llama: channel('channel-llama', 'O', [botId, ...Object.values(users)]),
    private: channel('private-llama', 'P', [botId]),
    outside: channel('outside-llama', 'O', []),
    secret: channel('secret-llama', 'P', []),
  };
  return {
    mm,
    kind: 'fake',
    url: mm.url,
    botToken: bot.token,
    botId,
    teamId: team.id,
    channels,
    users,
    async createChannel(name, opts) {
      return channel(name, opts.type, opts.botMember ? [botId] : []);
    },
    async addToChannel(channelId, userId) {
      mm.addToChannel(channelId, userId);
    },
    async removeFromChannel(channelId, userId) {
      mm.removeFromChannel(channelId, userId);
    },
    async archiveChannel(channelId) {
      mm.archiveChannel(channelId);
    },
    async deletePost(postId) {
      mm.deletePost(postId);
    },
    async setBotRoles(roles) {
      mm.setRoles(botId, roles);
    },
    async setShowEmailAddress(show) {
      mm.setShowEmailAddress(show);
    },
    async setPostEditTimeLimit(seconds) {
      mm.setPostEditTimeLimit(seconds);
    },
    async posts(channelId) {
      return mm.postsIn(channelId).map((p) => ({
        id: p.id,
        channelId: p.channelId,
        rootId: p.rootId,
        userId: p.userId,
        message: p.message,
        props: p.props,
        deleted: p.deleteAt > 0,
      }));
    },
    async mentionCount() {
      throw new Error('the fake does not count mentions');
    },
    async newBotToken() {
      return mm.addToken(botId);
    },
    stop: () => mm.stop(),
  };
}

export function realHandoff(): RealWorldHandoff {
  const raw = process.env[REAL_WORLD_ENV];
  if (!raw) {
    throw new Error(
      `${REAL_WORLD_ENV} is not set: run this tier with \`make test-mattermost-real\` (its global setup starts the server)`,
    );
  }
  return JSON.parse(raw) as RealWorldHandoff;
}
