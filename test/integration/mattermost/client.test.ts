// The real client (Client4 underneath) against the Mattermost look-alike: every endpoint we call and
// every error mapping.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MattermostError, type MattermostApi } from '../../../operator/mattermost/api.js';
import { createMattermostClient, type MattermostClientOptions } from '../../../operator/mattermost/client.js';
import { refusalOf } from '../../../operator/mattermost/refusal.js';
import type { MattermostConfig } from '../../../operator/config/types.js';
import { createLogger, silentLogger } from '../../../operator/observability/logger.js';
import { startFakeMattermost, type FakeMattermost } from '../../mattermost-server/index.js';
import { startSeededMattermost } from '../../mattermost-server/seed.js';
import { TestCA } from '../../teleport-server/ca.js';

let mm: FakeMattermost;
let token: string;
let botId: string;
let aliceId: string;
let townSquare: string;

function config(over: Partial<MattermostConfig> = {}): MattermostConfig {
  return { url: mm.url, token, tokenSource: 'inline', recipients: [], notifyRequester: false, ...over };
}

function client(over: Partial<MattermostConfig> = {}, opts: MattermostClientOptions = {}): MattermostApi {
  return createMattermostClient(config(over), silentLogger(), opts);
}

function capturingLogger() {
  const lines: string[] = [];
  const output = { write: (line: string) => lines.push(line) };
  return { logger: createLogger({ severity: 'debug', format: 'json', output }), lines };
}

async function failure(p: Promise<unknown>): Promise<MattermostError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof MattermostError)) throw new Error(`expected a MattermostError, got ${String(err)}`);
  return err;
}

beforeEach(async () => {
  ({ mm, token, botId, aliceId, townSquareId: townSquare } = await startSeededMattermost());
});

afterEach(async () => {
  await mm.stop();
});

describe('getMe and authentication errors', () => {
  it('returns the bot user', async () => {
    expect(await client().getMe()).toEqual({ id: botId, username: 'teleport' });
    expect(mm.requests().map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual([
      'GET /api/v4/users/me 200',
    ]);
  });

  it('accepts a URL with a trailing slash or /api/v4', async () => {
    expect((await client({ url: mm.url + '/' }).getMe()).id).toBe(botId);
    expect((await client({ url: mm.url + '/api/v4/' }).getMe()).id).toBe(botId);
  });

  it('rejects a URL that is not http(s)', () => {
    expect(() => client({ url: 'mattermost.example.com' })).toThrow(/\[mattermost\] url .* is not a URL/);
    expect(() => client({ url: 'ftp://x' })).toThrow(/must start with https:\/\/ or http:\/\//);
  });

  it('maps 401 (wrong token) to Unauthorized saying the token was rejected', async () => {
    const err = await failure(client({ token: 'wrong-token-123' }).getMe());
    expect(err.kind).toBe('Unauthorized');
    expect(err.status).toBe(401);
    expect(err.temporary).toBe(false);
    expect(err.message).toMatch(/bot token was rejected/);
    expect(err.message).toMatch(/api\.context\.session_expired\.app_error/);
    expect(err.message).toContain(mm.url + '/api/v4/users/me');
  });

  it('maps a disabled bot (its token then gets 401) to Unauthorized naming the disabled bot', async () => {
    mm.disableUser(botId);
    const err = await failure(client().getMe());
    expect(err.kind).toBe('Unauthorized');
    expect(err.message).toMatch(/bot account is disabled/);
  });

  it('maps 403 (bot not a member of the channel) to Forbidden, a refusal that says what to do', async () => {
    const other = mm.addChannel({ team: 'myteam', name: 'other' });
    const err = await failure(client().createPost({ channelId: other.id, message: 'hi' }));
    expect(err.kind).toBe('Forbidden');
    expect(err.status).toBe(403);
    expect(err.temporary).toBe(false);
    expect(err.appErrorId).toBe('api.context.permissions.app_error');
    expect(err.message).toMatch(/api\.context\.permissions\.app_error/);
    expect(refusalOf(err, 'post')?.fix).toMatch(/\/invite @<bot>.*post:all/);
  });

  it('never logs the token', async () => {
    const { logger, lines } = capturingLogger();
    const c = createMattermostClient(config({ token: 'secret-token-value-1' }), logger);
    await failure(c.getMe());
    await failure(c.createPost({ channelId: townSquare, message: 'x' }));
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.join('\n')).not.toContain('secret-token-value-1');
  });

  it('warns once when the token is a regular user, not a bot', async () => {
    const { logger, lines } = capturingLogger();
    const c = createMattermostClient(config({ token: mm.addToken(aliceId) }), logger);
    expect((await c.getMe()).username).toBe('alice');
    await c.getMe();
    expect(lines.filter((l) => l.includes('belongs to a regular user, not a bot account'))).toHaveLength(1);
    const quiet = capturingLogger();
    await createMattermostClient(config(), quiet.logger).getMe();
    expect(quiet.lines.join('')).not.toContain('regular user');
  });
});

describe('network, TLS and server errors', () => {
  it('maps connection refused to Unavailable naming the URL', async () => {
    const c = client();
    await mm.down(60_000);
    const err = await failure(c.getMe());
    expect(err.kind).toBe('Unavailable');
    expect(err.temporary).toBe(true);
    expect(err.message).toContain(`${mm.url}/api/v4/users/me`);
    expect(err.message).toMatch(/connection refused.*ECONNREFUSED/);
  });

  it('recovers after the server comes back (no state kept from the failure)', async () => {
    const c = client();
    await mm.down(1000);
    expect((await failure(c.getMe())).kind).toBe('Unavailable');
    await mm.waitUp();
    expect((await c.getMe()).id).toBe(botId);
  });

  it('maps a reset connection and 5xx to Unavailable', async () => {
    const c = client();
    mm.resetConnections(1);
    expect((await failure(c.getMe())).kind).toBe('Unavailable');
    mm.fail({ status: 502, count: 1 });
    const err = await failure(c.createPost({ channelId: townSquare, message: 'x' }));
    expect(err.kind).toBe('Unavailable');
    expect(err.status).toBe(502);
    mm.fail({ status: 500, count: 1 });
    expect((await failure(c.getMe())).status).toBe(500);
  });

  it('maps a timeout to Unavailable with the timeout in the message', async () => {
    mm.slow(400);
    const err = await failure(client({}, { timeoutMs: 100 }).getMe());
    expect(err.kind).toBe('Unavailable');
    expect(err.message).toMatch(/did not answer within 100 ms/);
    mm.slow(0);
  });

  it('maps 429 to RateLimited with Retry-After, and every call gets one attempt only', async () => {
    const c = client();
    mm.setRateLimit({ perSecond: 0.5, burst: 0 });
    await c.getMe();
    const err = await failure(c.getMe());
    expect(err.kind).toBe('RateLimited');
    expect(err.status).toBe(429);
    expect(err.temporary).toBe(true);
    // Retry-After is whole seconds until the next slot (2 s here, less if this test was slow).
    expect(err.retryAfterMs).toBeGreaterThanOrEqual(1000);
    expect(err.retryAfterMs).toBeLessThanOrEqual(2000);
    mm.setRateLimit(null);
    mm.fail({ status: 429, count: 1, retryAfterSec: 7 });
    expect((await failure(c.getMe())).retryAfterMs).toBe(7000);
    expect(mm.requests().filter((r) => r.status === 429)).toHaveLength(2);
    expect(mm.requests()).toHaveLength(3);
  });

  it('maps a post over the size limit to BadRequest', async () => {
    mm.setMaxPostRunes(4000);
    const err = await failure(client().createPost({ channelId: townSquare, message: 'x'.repeat(4001) }));
    expect(err.kind).toBe('BadRequest');
    expect(err.status).toBe(400);
    expect(err.message).toMatch(/model\.post\.is_valid\.message_length\.app_error/);
    expect(mm.posts()).toHaveLength(0);
  });

  it('says so when the URL points at something that is not the Mattermost API', async () => {
    const http = await import('node:http');
    const web = http.createServer((_req, res) =>
      res.writeHead(200, { 'Content-Type': 'text/html' }).end('<html>'),
    );
    await new Promise<void>((r) => web.listen(0, '127.0.0.1', () => r()));
    const port = (web.address() as { port: number }).port;
    try {
      const err = await failure(client({ url: `http://127.0.0.1:${port}` }).getMe());
      // It may be an SSO proxy's login page while the proxy recovers: temporary, never a refusal.
      expect(err.kind).toBe('Unexpected');
      expect(err.temporary).toBe(true);
      expect(err.notProcessed).toBe(false);
      expect(err.message).toMatch(
        /not the JSON of the Mattermost API .*is \[mattermost\] url the server's base URL/,
      );
    } finally {
      web.close();
    }
  });
});

describe('ca_file for a private Mattermost server', () => {
  let tlsServer: FakeMattermost;
  let dir: string;
  let caPath: string;

  beforeAll(async () => {
    const ca = TestCA.create('mattermost-private-ca');
    const host = ca.issueHostCert({ ipAddresses: ['127.0.0.1'], dnsNames: ['localhost'] });
    tlsServer = await startFakeMattermost({ tls: { key: host.keyPem, cert: host.certPem } });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mm-ca-'));
    caPath = path.join(dir, 'ca.pem');
    fs.writeFileSync(caPath, ca.certPem);
  });

  afterAll(async () => {
    await tlsServer.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('without ca_file: Unavailable that says TLS verification failed and names ca_file', async () => {
    const { token: t } = tlsServer.addBot({ username: 'tlsbot1' });
    const c = createMattermostClient(config({ url: tlsServer.url, token: t }), silentLogger());
    const err = await failure(c.getMe());
    expect(err.kind).toBe('Unavailable');
    expect(err.message).toContain(tlsServer.url);
    expect(err.message).toMatch(/TLS verification of the server failed \(\w+\).*ca_file/);
  });

  it('with ca_file: connects', async () => {
    const { token: t, user } = tlsServer.addBot({ username: 'tlsbot2' });
    const c = createMattermostClient(
      config({ url: tlsServer.url, token: t, caFile: caPath }),
      silentLogger(),
    );
    expect((await c.getMe()).id).toBe(user.id);
  });

  it('rejects a missing or non-PEM ca_file with a clear message', () => {
    expect(() => client({ caFile: path.join(dir, 'nope.pem') })).toThrow(
      /ca_file ".*nope\.pem" cannot be read \(ENOENT\)/,
    );
    const junk = path.join(dir, 'junk.pem');
    fs.writeFileSync(junk, 'not a certificate');
    expect(() => client({ caFile: junk })).toThrow(/contains no PEM certificate/);
    const broken = path.join(dir, 'broken.pem');
    fs.writeFileSync(broken, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    expect(() => client({ caFile: broken })).toThrow(/certificate 1 is not valid/);
  });
});

describe('resolveRecipient', () => {
  it('resolves team/channel by handle', async () => {
    expect(await client().resolveRecipient('myteam/town-square')).toEqual({
      recipient: 'myteam/town-square',
      kind: 'channel',
      channelId: townSquare,
    });
  });

  it('falls back to the display name, so the documented "myteam/Town Square" works', async () => {
    const c = client();
    expect((await c.resolveRecipient('myteam/Town Square')).channelId).toBe(townSquare);
    expect((await c.resolveRecipient('My Team/town square')).channelId).toBe(townSquare);
    expect((await c.resolveRecipient(' myteam / Town-Square ')).channelId).toBe(townSquare);
  });

  it('finds a private channel the bot is in by display name, and a display name that looks like a handle', async () => {
    const priv = mm.addChannel({
      team: 'myteam',
      name: 'p1',
      displayName: 'secops',
      type: 'P',
      members: [botId],
    });
    expect((await client().resolveRecipient('myteam/secops')).channelId).toBe(priv.id);
  });

  it('reports a channel the bot is not in, or that does not exist, as NotFound with what to do', async () => {
    mm.addChannel({ team: 'myteam', name: 'private-ops', displayName: 'Private Ops', type: 'P' });
    const err = await failure(client().resolveRecipient('myteam/Private Ops'));
    expect(err.kind).toBe('NotFound');
    expect(err.message).toMatch(/no channel "Private Ops" \(by handle or display name\) in team myteam/);
    expect(err.message).toMatch(/\/invite @<bot>/);
    expect((await failure(client().resolveRecipient('noteam/town-square'))).kind).toBe('NotFound');
  });

  it('reports a public channel of a team the bot is not in as Forbidden (403)', async () => {
    mm.addTeam({ name: 'elsewhere' });
    mm.addChannel({ team: 'elsewhere', name: 'general' });
    const err = await failure(client().resolveRecipient('elsewhere/general'));
    expect(err.kind).toBe('Forbidden');
    expect(err.status).toBe(403);
  });

  it('refuses an ambiguous display name', async () => {
    mm.addChannel({ team: 'myteam', name: 'ops-a', displayName: 'Ops', members: [botId] });
    mm.addChannel({ team: 'myteam', name: 'ops-b', displayName: 'Ops', members: [botId] });
    const err = await failure(client().resolveRecipient('myteam/Ops'));
    expect(err.kind).toBe('BadRequest');
    expect(err.message).toMatch(/several channels .* \(ops-a, ops-b\)/);
  });

  it('resolves an email to the direct channel between the bot and that user', async () => {
    const r = await client().resolveRecipient('Alice@Example.com');
    expect(r.kind).toBe('user');
    expect(r.channelId).toBe(mm.dmChannelId(botId, aliceId));
    expect(mm.channel(r.channelId)?.type).toBe('D');
  });

  it('reports an unknown email as NotFound', async () => {
    const err = await failure(client().resolveRecipient('nobody@example.com'));
    expect(err.kind).toBe('NotFound');
    expect(err.message).toMatch(/no user with the email "nobody@example.com"/);
  });

  it('refuses a recipient that is neither, with the upstream message and no request', async () => {
    const err = await failure(client().resolveRecipient('fallback'));
    expect(err.kind).toBe('BadRequest');
    expect(err.message).toBe(
      'Recipient must be either a user email or a channel in the format "team/channel" but got "fallback"',
    );
    expect(mm.requests()).toHaveLength(0);
  });

  it('caches lookups for the TTL and shares one lookup among concurrent callers', async () => {
    const c = client({}, { cacheTtlMs: 1000 });
    await Promise.all(Array.from({ length: 20 }, () => c.resolveRecipient('alice@example.com')));
    const first = mm.requests().length;
    expect(first).toBe(3); // users/email, users/me, channels/direct
    await c.resolveRecipient('alice@example.com');
    expect(mm.requests()).toHaveLength(first);
    await new Promise((r) => setTimeout(r, 1100));
    await c.resolveRecipient('alice@example.com');
    expect(mm.requests().length).toBeGreaterThan(first);
  });

  it('does not cache failures', async () => {
    const c = client();
    mm.fail({ status: 503, count: 1 });
    expect((await failure(c.resolveRecipient('myteam/town-square'))).kind).toBe('Unavailable');
    expect((await c.resolveRecipient('myteam/town-square')).channelId).toBe(townSquare);
  });
});

describe('posts', () => {
  it('creates a root post and a thread reply with props, as the bot', async () => {
    const c = client();
    const root = await c.createPost({
      channelId: townSquare,
      message: 'hello',
      props: { teleport_request_id: 'r1' },
    });
    expect(root).toMatchObject({ channelId: townSquare, rootId: '', message: 'hello', userId: botId });
    expect(root.props).toEqual({ teleport_request_id: 'r1', from_bot: 'true' });
    expect(root.id).toHaveLength(26);
    const reply = await c.createPost({ channelId: townSquare, message: 'review', rootId: root.id });
    expect(reply.rootId).toBe(root.id);
    expect(mm.repliesTo(root.id).map((p) => p.message)).toEqual(['review']);
  });

  it('never posts to an empty channel id', async () => {
    const err = await failure(client().createPost({ channelId: '', message: 'x' }));
    expect(err.kind).toBe('BadRequest');
    expect(mm.requests()).toHaveLength(0);
  });

  it('de-duplicates a retried create by idempotency key', async () => {
    const c = client();
    const a = await c.createPost({ channelId: townSquare, message: 'once', idempotencyKey: 'req-1:ch' });
    const b = await c.createPost({ channelId: townSquare, message: 'once', idempotencyKey: 'req-1:ch' });
    expect(b.id).toBe(a.id);
    expect(mm.posts()).toHaveLength(1);
  });

  it('updates a post (patch) keeping the id, recording the edit, and replacing props when given', async () => {
    const c = client();
    const root = await c.createPost({ channelId: townSquare, message: 'pending', props: { a: 1 } });
    const edited = await c.updatePost(root.id, 'approved');
    expect(edited).toMatchObject({ id: root.id, message: 'approved', props: { a: 1, from_bot: 'true' } });
    // Sent props replace the whole map on the server (the fake does as the real one): the client sends the
    // bot's from_bot mark back with them.
    await c.updatePost(root.id, 'approved', { b: 2 });
    const [stored] = mm.rootPosts(townSquare);
    expect(stored!.props).toEqual({ b: 2, from_bot: 'true' });
    expect(stored!.history.map((h) => h.message)).toEqual(['pending', 'approved']);
    expect(stored!.editAt).toBeGreaterThan(0);
    const req = mm.requests().find((r) => r.method === 'PUT');
    expect(req?.path).toBe(`/api/v4/posts/${root.id}/patch`);
  });

  it('maps the update of an unknown post (which Mattermost answers with 403) to Forbidden', async () => {
    const err = await failure(client().updatePost('a'.repeat(26), 'x'));
    expect(refusalOf(err, 'edit')?.reason).toBe('cannot_edit');
    expect(err.kind).toBe('Forbidden');
    expect(err.status).toBe(403);
  });

  it('lists posts created at or after a time, oldest first, across pages', async () => {
    const c = client();
    const before = await c.createPost({ channelId: townSquare, message: 'old' });
    const created = [];
    for (let i = 0; i < 450; i++)
      created.push(await c.createPost({ channelId: townSquare, message: `m${i}` }));
    const since = await c.listPostsSince(townSquare, created[0]!.createAt);
    expect(since.map((p) => p.message)).toEqual(created.map((p) => p.message));
    expect(since.some((p) => p.id === before.id)).toBe(false);
    const pages = mm.requests().filter((r) => r.path.endsWith('/posts') && r.method === 'GET');
    expect(pages.map((r) => r.query)).toEqual([
      'page=0&per_page=200',
      'page=1&per_page=200',
      'page=2&per_page=200',
    ]);
    const recent = await c.listPostsSince(townSquare, created[449]!.createAt);
    expect(recent.map((p) => p.message)).toEqual(['m449']);
  });

  it('lists posts of a DM channel and reports an unknown channel as NotFound', async () => {
    const c = client();
    const dm = await c.resolveRecipient('alice@example.com');
    await c.createPost({ channelId: dm.channelId, message: 'dm' });
    expect((await c.listPostsSince(dm.channelId, 0)).map((p) => p.message)).toEqual(['dm']);
    expect((await failure(c.listPostsSince('b'.repeat(26), 0))).kind).toBe('NotFound');
  });
});

describe('answers that are not the API JSON, and refusals, per call (issues 11 and 15)', () => {
  it.each(['html', 'text', 'truncated', 'empty', 'oversize'] as const)(
    'a 200 with a %s body is Unexpected: temporary, ambiguous, never a refusal',
    async (kind) => {
      mm.garble({ kind, method: 'POST', path: '/api/v4/posts', count: 1 });
      const err = await failure(client().createPost({ channelId: townSquare, message: 'hi' }));
      expect(err.kind).toBe('Unexpected');
      expect(err.temporary).toBe(true);
      expect(err.notProcessed).toBe(false);
      expect(refusalOf(err, 'post')).toBeUndefined();
    },
  );

  it('stops reading an oversize answer at the cap instead of buffering it', async () => {
    mm.garble({ kind: 'oversize', bytes: 64 * 1024 * 1024, path: '/api/v4/users/me', count: 1 });
    const before = process.memoryUsage().rss;
    const started = Date.now();
    const err = await failure(client({}, { maxBodyBytes: 256 * 1024 }).getMe());
    expect(err.kind).toBe('Unexpected');
    expect(err.message).toMatch(/a body over 262144 bytes/);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(process.memoryUsage().rss - before).toBeLessThan(48 * 1024 * 1024);
  });

  it('a redirect (an SSO proxy sending the bot to its login page) is Unexpected, not followed', async () => {
    const http = await import('node:http');
    const proxy = http.createServer((_req, res) =>
      res.writeHead(302, { Location: 'https://sso.example.com/login?next=x' }).end(),
    );
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
    const port = (proxy.address() as { port: number }).port;
    try {
      const err = await failure(client({ url: `http://127.0.0.1:${port}` }).getMe());
      expect(err.kind).toBe('Unexpected');
      expect(err.message).toContain('a redirect to https://sso.example.com/login');
      expect(err.message).not.toContain('next=x');
    } finally {
      proxy.close();
    }
  });

  it('hidden emails: the lookup is Forbidden, classified emails_hidden with the fix', async () => {
    mm.setShowEmailAddress(false);
    const err = await failure(client().resolveRecipient('alice@example.com'));
    expect(err.kind).toBe('Forbidden');
    expect(err.appErrorId).toBe('api.user.get_user_by_email.permissions.app_error');
    expect(refusalOf(err, 'lookup')).toEqual({
      reason: 'emails_hidden',
      fix: expect.stringMatching(/cannot read emails.*give it permission.*use channel recipients/),
    });
    const unknown = await failure(client().resolveRecipient('nobody@example.com'));
    expect(refusalOf(unknown, 'lookup')?.reason).toBe('emails_hidden');
    mm.setShowEmailAddress(true);
    const missing = await failure(client().resolveRecipient('nobody@example.com'));
    expect(refusalOf(missing, 'lookup')?.reason).toBe('no_such_user');
  });

  it('a deleted root post: reply 400 post_deleted, patch 403 cannot_edit; archived channel', async () => {
    const c = client();
    const root = await c.createPost({ channelId: townSquare, message: 'root' });
    mm.deletePost(root.id);
    const reply = await failure(c.createPost({ channelId: townSquare, message: 'r', rootId: root.id }));
    expect(refusalOf(reply, 'reply')?.reason).toBe('post_deleted');
    expect(refusalOf(await failure(c.updatePost(root.id, 'x')), 'edit')?.reason).toBe('cannot_edit');
    const other = await c.createPost({ channelId: townSquare, message: 'other' });
    mm.archiveChannel(townSquare);
    const post = await failure(c.createPost({ channelId: townSquare, message: 'x' }));
    expect(refusalOf(post, 'post')?.reason).toBe('channel_archived');
    expect(refusalOf(await failure(c.updatePost(other.id, 'y')), 'edit')?.reason).toBe('channel_archived');
  });

  it('an edit after PostEditTimeLimit is edit_time_limit; the patch never sends props', async () => {
    const c = client();
    const root = await c.createPost({ channelId: townSquare, message: 'root', props: { mine: 1 } });
    await c.updatePost(root.id, 'edited');
    expect(mm.rootPosts(townSquare)[0]!.props).toEqual({ mine: 1, from_bot: 'true' });
    mm.setPostEditTimeLimit(0);
    await new Promise((r) => setTimeout(r, 5));
    const err = await failure(c.updatePost(root.id, 'late'));
    expect(refusalOf(err, 'edit')?.reason).toBe('edit_time_limit');
  });

  it('never shows the user name or password of the URL', async () => {
    const { logger, lines } = capturingLogger();
    const url = mm.url.replace('http://', 'http://admin:S3cretPassw0rd@');
    const c = createMattermostClient(config({ url }), logger);
    expect((await c.getMe()).id).toBe(botId);
    await mm.stop();
    const err = await failure(c.getMe());
    expect(err.message).not.toContain('S3cretPassw0rd');
    expect(lines.join('\n')).not.toContain('S3cretPassw0rd');
    expect(lines.join('\n')).toContain('***@');
    mm = await startFakeMattermost();
  });
});
