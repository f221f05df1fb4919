// Raw HTTP to a Mattermost server (real or fake), keeping status, headers and body (the conformance
// suite compares exactly these), and the REST bootstrap of the real server's world. No relative imports:
// global-setup.ts loads this file outside jest's module mapping.

export interface RestReply {
  status: number;
  headers: Headers;
  /** The parsed JSON body, or undefined when it is not JSON. */
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  text: string;
}

export async function rest(
  baseUrl: string,
  token: string | undefined,
  method: string,
  path: string,
  body?: unknown,
  extraHeaders: Record<string, string> = {},
): Promise<RestReply> {
  const res = await fetch(`${baseUrl}/api/v4${path}`, {
    method,
    headers: {
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
      ...extraHeaders,
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, headers: res.headers, body: parsed, text };
}

/** Like rest() but throws unless the status is the expected one (bootstrap and admin steps). */
export async function must(
  expected: number | number[],
  ...args: Parameters<typeof rest>
): Promise<RestReply> {
  const reply = await rest(...args);
  const ok = Array.isArray(expected) ? expected.includes(reply.status) : reply.status === expected;
  if (!ok) {
    throw new Error(`${args[2]} ${args[3]} answered ${reply.status}: ${reply.text.slice(0, 500)}`);
  }
  return reply;
}

/** An admin's call that must answer `expected` (must() bound to a server and a token). */
export type AdminCall = (
  expected: number | number[],
  method: string,
  path: string,
  body?: unknown,
) => Promise<RestReply>;

/** Creating channels in a team (display name from the name) and adding members, as an admin. */
export function channelSteps(call: AdminCall, teamId: string) {
  return {
    createChannel: async (name: string, type: 'O' | 'P') =>
      (
        await call(201, 'POST', '/channels', {
          team_id: teamId,
          name,
          display_name: name.replace(/-/g, ' ').replace(/\b\w/g, (c) => c.toUpperCase()),
          type,
        })
      ).body.id as string,
    addToChannel: async (channelId: string, userId: string) => {
      await call(201, 'POST', `/channels/${channelId}/members`, { user_id: userId });
    },
  };
}

// ---- the real server's world, seeded over REST as its first user (who becomes system_admin) ----

export const TEAM = 'team-llama';
export const EMAILS = [
  'reviewer1@example.com',
  'reviewer2@example.com',
  'requester1@example.com',
  'alice@example.com',
] as const;

/** The environment variable through which global-setup.ts hands the seeded world to test files. */
export const REAL_WORLD_ENV = 'TPM_MATTERMOST_REAL';

export interface RealWorldHandoff {
  url: string;
  adminToken: string;
  botToken: string;
  botId: string;
  teamId: string;
  channels: { llama: string; private: string; outside: string; secret: string };
  users: Record<string, string>;
  /** For extra server processes on the same data (server.ts startInstance). */
  dir?: string;
  dataSource?: string;
}

const ADMIN = { email: 'admin@example.com', username: 'sysadmin', password: 'Sys-admin-pass-1!' };

/** Seeds a freshly started real server (its first user becomes system_admin). */
export async function seedRealWorld(url: string): Promise<RealWorldHandoff> {
  await must(201, url, undefined, 'POST', '/users', ADMIN);
  const login = await must(200, url, undefined, 'POST', '/users/login', {
    login_id: ADMIN.username,
    password: ADMIN.password,
  });
  const admin = login.headers.get('Token')!;
  const call = (expected: number | number[], method: string, path: string, body?: unknown) =>
    must(expected, url, admin, method, path, body);

  const team = (await call(201, 'POST', '/teams', { name: TEAM, display_name: 'Team Llama', type: 'O' }))
    .body;
  const addToTeam = (userId: string) =>
    call(201, 'POST', `/teams/${team.id}/members`, { team_id: team.id, user_id: userId });
  const { createChannel, addToChannel } = channelSteps(call, team.id as string);

  const users: Record<string, string> = {};
  for (const email of EMAILS) {
    const u = await call(201, 'POST', '/users', {
      email,
      username: email.split('@')[0],
      password: 'User-pass-123!',
    });
    users[email] = u.body.id;
    await addToTeam(u.body.id);
  }
  const bot = (await call(201, 'POST', '/bots', { username: 'teleport', display_name: 'Teleport' })).body;
  const botId = bot.user_id as string;
  await addToTeam(botId);
  const channels = {
    llama: await createChannel('channel-llama', 'O'),
    private: await createChannel('private-llama', 'P'),
    outside: await createChannel('outside-llama', 'O'),
    secret: await createChannel('secret-llama', 'P'),
  };
  await addToChannel(channels.llama, botId);
  await addToChannel(channels.private, botId);
  for (const id of Object.values(users)) await addToChannel(channels.llama, id);
  const botToken = (await call(200, 'POST', `/users/${botId}/tokens`, { description: 'tests' })).body
    .token as string;
  return { url, adminToken: admin, botToken, botId, teamId: team.id, channels, users };
}
