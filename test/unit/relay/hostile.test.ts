// The relay against hostile input (issue 15): role names that are Object members, rules that would
// overflow the condition parser, tokens rotated at run time, and honest readiness.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger, type Logger } from '../../../operator/observability/logger.js';
import { runWatcher, type WatcherInternals } from '../../../operator/relay/run.js';
import { dict } from '../../../operator/config/dict.js';
import type { AccessMonitoringRule } from '../../../operator/teleport/api.js';
import { MattermostError, type MattermostApi, type NewPost } from '../../../operator/mattermost/api.js';
import { FAST_TUNING, MemoryMattermost, MemoryTeleport, testConfig, until } from './fakes.js';

let teleport: MemoryTeleport;
let mattermost: MemoryMattermost;
let watchers: WatcherInternals[];
let lines: Record<string, unknown>[];

/** A DEBUG logger whose JSON lines (redacted, as in production) land in `lines`. */
function capturingLogger(): Logger {
  const output = { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) };
  return createLogger({ severity: 'debug', format: 'json', output });
}

beforeEach(() => {
  teleport = new MemoryTeleport();
  mattermost = new MemoryMattermost();
  mattermost.addChannel('all@example.com', 'dm-all');
  mattermost.addChannel('proto@example.com', 'dm-proto');
  mattermost.addChannel('team/good', 'ch-good');
  watchers = [];
  lines = [];
});

afterEach(async () => {
  for (const w of watchers) await w.stop(1000);
});

async function start(roleToRecipients: Record<string, string[]>) {
  const w = await runWatcher(testConfig(roleToRecipients), capturingLogger(), {
    teleport,
    mattermost,
    tuning: FAST_TUNING,
  });
  watchers.push(w);
  await until(() => w.ready() === undefined, 5000, 'ready');
  return w;
}

const channelsOf = () =>
  mattermost
    .roots()
    .map((p) => p.channelId)
    .sort();

describe('role names that are Object members (item 2)', () => {
  it('posts requests for roles named constructor, hasOwnProperty, … (alone or among others) to "*"', async () => {
    const w = await start({ '*': ['all@example.com'] });
    const roles = [
      'constructor',
      'hasOwnProperty',
      'isPrototypeOf',
      '__defineGetter__',
      'toString',
      'valueOf',
    ];
    for (const role of roles) teleport.createRequest({ roles: [role] });
    teleport.createRequest({ roles: ['editor', 'constructor', '__proto__'] });
    await w.idle();
    expect(channelsOf()).toEqual(Array(roles.length + 1).fill('dm-all'));
    await expect(w.metrics.requeues.get()).resolves.toMatchObject({ values: [{ value: 0 }] });
  });

  it('routes a "__proto__" role to its own recipients', async () => {
    const w = await start(
      dict([
        ['*', ['all@example.com']],
        ['__proto__', ['proto@example.com']],
      ]),
    );
    teleport.createRequest({ roles: ['__proto__'] });
    await w.idle();
    expect(channelsOf()).toEqual(['dm-proto']);
  });

  it('reads a system annotation named like an Object member as absent, not as a function', async () => {
    const w = await start({ '*': ['all@example.com'] });
    teleport.putRule(rule('odd-key', 'access_request.spec.system_annotations["constructor"].contains("x")'));
    await new Promise((r) => setTimeout(r, 20));
    teleport.createRequest();
    await w.idle();
    expect(channelsOf()).toEqual(['dm-all']);
    expect(lines.filter((l) => l.level === 'warn' && l.rule === 'odd-key')).toEqual([]);
  });
});

function rule(name: string, condition: string): AccessMonitoringRule {
  return {
    name,
    subjects: ['access_request'],
    states: [],
    condition,
    notification: { name: 'mattermost', recipients: ['team/good'] },
  };
}

describe('Access Monitoring Rules that would overflow the parser (item 11)', () => {
  const deep = `${'('.repeat(5000)}access_request.spec.roles.contains("editor")${')'.repeat(5000)}`;
  const nested = `${'!'.repeat(200)}true`;

  it('rejects only the bad rules, with a warning naming them, at start and on events; the good rule routes', async () => {
    teleport.rules.set('deep', rule('deep', deep));
    teleport.rules.set('good', rule('good', 'access_request.spec.roles.contains("editor")'));
    const w = await start({ '*': ['all@example.com'] });
    teleport.putRule(rule('nested', nested));
    await new Promise((r) => setTimeout(r, 20));
    teleport.createRequest();
    await w.idle();
    expect(channelsOf()).toEqual(['ch-good']);
    const warned = lines.filter((l) => l.level === 'warn' && typeof l.rule === 'string').map((l) => l.rule);
    expect(warned).toEqual(expect.arrayContaining(['deep', 'nested']));
    expect(warned).not.toContain('good');
    expect(w.ready()).toBeUndefined();
  });
});

/** A client of the shared fake that sends one token; Mattermost answers 401 unless it is the valid one. */
class TokenClient implements MattermostApi {
  constructor(
    private readonly server: MemoryMattermost & { validToken?: string },
    readonly token: string,
  ) {}
  private check(): void {
    if (this.server.validToken !== undefined && this.server.validToken !== this.token) {
      throw new MattermostError('Unauthorized', 'Invalid or expired session, please login again.', 401);
    }
  }
  async getMe() {
    this.check();
    return this.server.getMe();
  }
  async resolveRecipient(r: string) {
    this.check();
    return this.server.resolveRecipient(r);
  }
  async createPost(p: NewPost) {
    this.check();
    return this.server.createPost(p);
  }
  async updatePost(id: string, m: string, props?: Record<string, unknown>) {
    this.check();
    return this.server.updatePost(id, m, props);
  }
  async listPostsSince(c: string, s: number) {
    this.check();
    return this.server.listPostsSince(c, s);
  }
}

async function readyz(w: WatcherInternals): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${w.httpPort}/readyz`);
  return { status: res.status, body: await res.text() };
}

describe('token rotation (item 5)', () => {
  it('SIGHUP (reload) with a new token builds a new client; /readyz is not ok while every call gets 401', async () => {
    const server = mattermost as MemoryMattermost & { validToken?: string };
    server.validToken = 'token-one';
    const config = testConfig({ '*': ['all@example.com'] });
    config.mattermost.token = 'token-one';
    const made: string[] = [];
    const w = await runWatcher(config, capturingLogger(), {
      teleport,
      mattermost: new TokenClient(server, 'token-one'),
      mattermostFactory: (cfg) => {
        made.push(cfg.token);
        return new TokenClient(server, cfg.token);
      },
      tuning: FAST_TUNING,
    });
    watchers.push(w);
    await until(() => w.ready() === undefined, 5000, 'ready');

    server.validToken = 'token-two'; // the admin regenerated the bot token
    teleport.createRequest();
    await until(() => w.ready() !== undefined, 5000, 'not ready on 401');
    expect(await readyz(w)).toMatchObject({
      status: 503,
      body: expect.stringMatching(/refuses the bot token \(401\)/),
    });

    await w.reload({ ...config, mattermost: { ...config.mattermost, token: 'token-two' } });
    expect(made).toEqual(['token-two']);
    await until(() => w.ready() === undefined, 5000, 'ready with the new token');
    await w.idle();
    expect(channelsOf()).toEqual(['dm-all']);
  });

  it('is not ready when only a recipient lookup gets the 401', async () => {
    const server = mattermost as MemoryMattermost & { validToken?: string };
    server.validToken = 'token-one';
    const w = await runWatcher(testConfig({}), capturingLogger(), {
      teleport,
      mattermost: new TokenClient(server, 'token-one'),
      tuning: FAST_TUNING,
    });
    watchers.push(w);
    await until(() => w.ready() === undefined, 5000, 'ready');
    server.validToken = 'token-two';
    teleport.createRequest({ suggestedReviewers: ['proto@example.com'] });
    await until(() => w.ready() !== undefined, 5000, 'not ready on a 401 lookup');
    expect(w.ready()).toMatch(/refuses the bot token/);
  });

  it('a change of the token file takes the new token without a signal', async () => {
    const server = mattermost as MemoryMattermost & { validToken?: string };
    server.validToken = 'file-token-1';
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tok-rot-'));
    const file = path.join(dir, 'token');
    fs.writeFileSync(file, 'file-token-1\n');
    const config = testConfig({ '*': ['all@example.com'] });
    config.mattermost.token = 'file-token-1';
    config.mattermost.tokenSource = file;
    const w = await runWatcher(config, capturingLogger(), {
      teleport,
      mattermost: new TokenClient(server, 'file-token-1'),
      mattermostFactory: (cfg) => new TokenClient(server, cfg.token),
      tuning: FAST_TUNING,
    });
    watchers.push(w);
    await until(() => w.ready() === undefined, 5000, 'ready');
    server.validToken = 'file-token-2';
    fs.writeFileSync(file, 'file-token-2\n');
    teleport.createRequest();
    await w.idle();
    expect(channelsOf()).toEqual(['dm-all']);
    expect(w.ready()).toBeUndefined();
  });
});

describe('readiness means "can deliver now" (item 6)', () => {
  it('turns 503 when the Teleport watch stays down past the grace period, not on a blip', async () => {
    const w = await runWatcher(testConfig({ '*': ['all@example.com'] }), capturingLogger(), {
      teleport,
      mattermost,
      tuning: { ...FAST_TUNING, readyGraceMs: 400 },
    });
    watchers.push(w);
    await until(() => w.ready() === undefined, 5000, 'ready');
    // A blip: the watch comes straight back.
    teleport.dropStreams();
    await new Promise((r) => setTimeout(r, 100));
    expect(w.ready()).toBeUndefined();
    // Down for good.
    teleport.watchBlocked = true;
    teleport.dropStreams();
    await new Promise((r) => setTimeout(r, 100));
    expect(w.ready()).toBeUndefined(); // within the grace period
    await until(() => w.ready() !== undefined, 5000, 'not ready after the grace period');
    expect(await readyz(w)).toMatchObject({
      status: 503,
      body: expect.stringMatching(/Teleport watch is down/),
    });
    expect((await fetch(`http://127.0.0.1:${w.httpPort}/healthz`)).status).toBe(200);
    teleport.watchBlocked = false;
    await until(() => w.ready() === undefined, 5000, 'ready again');
  });

  it('turns 503 when Mattermost stays unreachable past the grace period', async () => {
    const w = await runWatcher(testConfig({ '*': ['all@example.com'] }), capturingLogger(), {
      teleport,
      mattermost,
      tuning: { ...FAST_TUNING, readyGraceMs: 300 },
    });
    watchers.push(w);
    await until(() => w.ready() === undefined, 5000, 'ready');
    mattermost.down = true;
    teleport.createRequest();
    await until(() => w.ready() !== undefined, 5000, 'not ready');
    expect(w.ready()).toMatch(/Mattermost is not reachable/);
    mattermost.down = false;
    await w.idle();
    await until(() => w.ready() === undefined, 5000, 'ready again');
    expect(channelsOf()).toEqual(['dm-all']);
  });
});
