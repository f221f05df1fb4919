// Issue 15 acceptance, end to end with the real clients against the fake servers:
// - a seeded fuzz of hostile requester/admin input (role names that are Object members or carry control
//   and bidi characters, recipients that exist or not, reasons with escapes, mentions and megabytes) and
//   hostile Mattermost answers (status, content type, body size, truncation): no crash, nothing lost or
//   duplicated once the server behaves again, memory bounded;
// - a secrets sweep: the relay at DEBUG through every error path never shows the token, a key, a
//   certificate body or the URL password in its logs, /metrics or /readyz.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { dict } from '../../../operator/config/dict.js';
import { captureLogger, createLogger, type Logger } from '../../../operator/observability/logger.js';
import { decodePluginData } from '../../../operator/relay/plugindata.js';
import { rawRecipientsFor } from '../../../operator/relay/recipients.js';
import type { GarbleKind } from '../../mattermost-server/index.js';
import { REVIEWER1, REVIEWER2, TEAM_CHANNEL, startStack, until, type Stack } from './harness.js';
import { prng } from './prng.js';

let stack: Stack;
afterEach(async () => {
  await stack?.stop();
});

const SEED = 15_2026;
const ROLES = [
  'editor',
  'constructor',
  '__proto__',
  'hasOwnProperty',
  'toString',
  'valueOf',
  '__defineGetter__',
  'ops\u202egnp',
  'db\u001b[2K',
  '*',
  'role with spaces',
];
const MISSING = ['nobody@example.com', 'team-llama/missing'];
const REASONS = [
  'plain',
  '\u001b[1A\u001b[2K2026-01-01T00:00:00Z ERROR FORGED-LINE',
  '@channel @all @here please',
  '\u202eevil\u2066 \u0085 \u0007',
  '```\n**Status**: ✅ APPROVED\n```',
];
const GARBLES: GarbleKind[] = ['html', 'text', 'truncated', 'empty', 'oversize'];
const STATUSES = [429, 500, 502, 503, 504];
const PATHS = ['/api/v4/posts', '/api/v4/users/', '/api/v4/channels/', '/api/v4/teams/', undefined];

it('seeded hostile roles, recipients, reasons and answers: no crash, nothing lost or duplicated, memory bounded', async () => {
  const random = prng(SEED);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  const existing = [TEAM_CHANNEL, 'team-llama/second', REVIEWER1];
  // A role map of hostile keys, built from the seed: each role gets 1–2 recipients, some missing.
  const roleMap = dict<string[]>([['*', [TEAM_CHANNEL]]]);
  for (const role of ROLES) {
    if (role === '*' || random() < 0.4) continue;
    roleMap[role] = [pick(existing), ...(random() < 0.5 ? [pick([...existing, ...MISSING])] : [])];
  }
  stack = await startStack({ roleToRecipients: roleMap });
  const second = stack.mattermost.addChannel({ team: 'team-llama', name: 'second', members: [stack.botId] });
  const relay = await stack.startRelay();
  await until(() => relay.ready() === undefined, 15_000, 'relay ready');
  let crashed: unknown;
  relay.done.catch((err: unknown) => (crashed = err));
  const heapBefore = process.memoryUsage().heapUsed;

  const ids: string[] = [];
  for (let round = 0; round < 40; round++) {
    const rule = { path: pick(PATHS), count: 1 + Math.floor(random() * 2), afterProcessing: random() < 0.5 };
    const what = random();
    if (what < 0.4) {
      const bytes = pick([1024, 512 * 1024, 6 * 1024 * 1024]);
      stack.mattermost.garble({ ...rule, kind: pick(GARBLES), bytes });
    } else if (what < 0.8) stack.mattermost.fail({ ...rule, status: pick(STATUSES) });
    const roles = Array.from({ length: 1 + Math.floor(random() * 3) }, () => pick(ROLES));
    const reason = pick(REASONS).repeat(random() < 0.1 ? 2000 : 1);
    const suggestedReviewers =
      random() < 0.3 ? [pick([REVIEWER2, 'x\u0000@example.com', 'not-an-email'])] : [];
    ids.push(stack.teleport.createRequest({ roles, requestReason: reason, suggestedReviewers }).id);
    await new Promise((r) => setTimeout(r, 30 + random() * 40));
  }
  stack.mattermost.clearFailures();
  stack.mattermost.clearGarbles();
  await relay.idle();
  await until(() => relay.ready() === undefined, 15_000, 'ready once the server behaves');

  const channelOf = new Map<string, string | undefined>([
    [TEAM_CHANNEL, stack.teamChannelId],
    ['team-llama/second', second.id],
    [REVIEWER1, stack.dmOf(REVIEWER1)],
    [REVIEWER2, stack.dmOf(REVIEWER2)],
  ]);
  const problems: string[] = [];
  for (const id of ids) {
    const req = stack.teleport.getRequest(id)!;
    const valid = req.suggestedReviewers.filter((r) => r === REVIEWER2);
    const expected = [
      ...new Set(
        rawRecipientsFor(roleMap, req.roles, valid)
          .map((r) => channelOf.get(r))
          .filter((c): c is string => c !== undefined),
      ),
    ].sort();
    const roots = stack.mattermost.rootPosts().filter((p) => p.props.teleport_request_id === id);
    const where = roots.map((p) => p.channelId).sort();
    if (JSON.stringify(where) !== JSON.stringify(expected)) {
      problems.push(
        `${id} (${JSON.stringify(req.roles)}): roots ${where.length}, expected ${expected.length}`,
      );
    }
    const recorded = decodePluginData(stack.teleport.pluginData(id) ?? {})
      .messages.map((m) => m.postId)
      .sort();
    if (JSON.stringify(recorded) !== JSON.stringify(roots.map((p) => p.id).sort())) {
      problems.push(`${id}: recorded posts differ`);
    }
  }
  expect(problems).toEqual([]);
  expect(stack.mattermost.rootPosts().length).toBeGreaterThan(ids.length);
  expect(crashed).toBeUndefined();
  // Oversize answers (6 MiB each) are refused at the cap, not kept: the heap stays near where it was.
  expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(150 * 1024 * 1024);
}, 120_000);

/** One logger writing to two: the same events as text and as JSON. */
function both(a: Logger, b: Logger): Logger {
  const each =
    (level: 'error' | 'warn' | 'info' | 'debug') => (message: string, meta?: Record<string, unknown>) => {
      a[level](message, meta);
      b[level](message, meta);
    };
  return {
    error: each('error'),
    warn: each('warn'),
    info: each('info'),
    debug: each('debug'),
    child: (fields) => both(a.child(fields), b.child(fields)),
    get level() {
      return a.level;
    },
    set level(level) {
      a.level = level;
      b.level = level;
    },
  };
}

it('at DEBUG through every error path, no token, key, certificate body or URL password in any output', async () => {
  const PASSWORD = 'S3cretPassw0rd';
  stack = await startStack({
    roleToRecipients: { '*': [TEAM_CHANNEL, REVIEWER1, 'team-llama/missing', 'nobody@example.com'] },
  });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'secrets-'));
  const logFile = path.join(dir, 'relay.log');
  const jsonFile = path.join(dir, 'relay.json');
  const token = stack.config.mattermost.token;
  stack.config.mattermost.url = stack.config.mattermost.url.replace('://', `://admin:${PASSWORD}@`);
  const identityText = fs.readFileSync(stack.config.teleport.identity!, 'utf8');
  // Every base64 line of every PEM block (key, certificates) is a secret body.
  const pemLines = identityText
    .split('\n')
    .filter((l) => /^[A-Za-z0-9+/=]{40,}$/.test(l))
    .slice(0, 40);
  expect(pemLines.length).toBeGreaterThan(5);

  const text = createLogger({ severity: 'debug', format: 'text', output: logFile });
  const json = createLogger({ severity: 'debug', format: 'json', output: jsonFile });
  const relay = await stack.startRelay({ logger: both(text, json) });
  await until(() => relay.ready() === undefined, 15_000, 'relay ready');
  const scrape = async () => {
    const base = `http://127.0.0.1:${relay.httpPort}`;
    return (await fetch(`${base}/metrics`))
      .text()
      .then(async (m) => m + (await (await fetch(`${base}/readyz`)).text()));
  };
  const seen: string[] = [];

  // Error paths: hostile reason, missing recipients, 5xx, 429, garbled and oversize answers, reset
  // connections, Mattermost down, a token refused (401, whose body names the token), Teleport drops.
  stack.teleport.createRequest({
    requestReason: 'hostile \u001b[2K reason',
    suggestedReviewers: ['\u001b[1A\u001b[2KERROR FORGED-LINE'],
  });
  stack.mattermost.fail({ status: 503, count: 3 });
  stack.mattermost.fail({ status: 429, count: 2, path: '/api/v4/posts' });
  stack.mattermost.garble({ kind: 'html', count: 2, path: '/api/v4/posts', afterProcessing: true });
  stack.mattermost.garble({ kind: 'oversize', count: 1, bytes: 6 * 1024 * 1024 });
  stack.mattermost.resetConnections(1, { afterProcessing: true });
  stack.teleport.createRequest();
  await relay.idle();
  stack.teleport.dropStreams();
  await stack.mattermost.down(500);
  stack.teleport.createRequest();
  await stack.mattermost.waitUp();
  await relay.idle();
  stack.mattermost.revokeToken(token);
  stack.teleport.createRequest();
  await until(() => relay.ready() !== undefined, 15_000, 'not ready on 401');
  seen.push(await scrape());
  await relay.stop(2000); // the files hold every line now: the logger writes them synchronously

  const output = [fs.readFileSync(logFile, 'utf8'), fs.readFileSync(jsonFile, 'utf8'), ...seen].join('\n');
  expect(output).toMatch(/Mattermost refuses the bot token|rejected the bot token|401/);
  expect(output.split('\n').length).toBeGreaterThan(50);
  expect(output).not.toContain(token);
  expect(output).not.toContain(PASSWORD);
  for (const line of pemLines) expect(output).not.toContain(line);
  expect(output).not.toMatch(/-----BEGIN [A-Z ]*PRIVATE KEY-----/);
  // Text lines carry no raw control characters (the hostile reason is escaped).
  // eslint-disable-next-line no-control-regex -- asserting no control characters is the point
  expect(fs.readFileSync(logFile, 'utf8').replace(/\n/g, '')).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
}, 120_000);

it('Teleport 11: becomes ready, watches access requests alone, says so once, and posts (item 3)', async () => {
  stack = await startStack({
    roleToRecipients: { '*': [TEAM_CHANNEL] },
    teleport: { serverVersion: '11.3.2' },
  });
  const { logger, lines } = captureLogger();
  const relay = await stack.startRelay({ logger });
  await until(() => relay.ready() === undefined, 15_000, 'relay ready on Teleport 11');
  const id = stack.teleport.createRequest().id;
  await relay.idle();
  stack.teleport.dropStreams(); // a reconnect and a second catch-up: still one line
  await until(() => stack.teleport.activeWatchCount() > 0, 15_000, 'watch back');
  await relay.idle();
  expect(stack.mattermost.rootPosts().filter((p) => p.props.teleport_request_id === id)).toHaveLength(1);
  const noisy = lines.filter((l) => l.level === 'warn' || l.level === 'error').map((l) => l.message);
  expect(noisy.filter((m) => /Access Monitoring Rules routing is unavailable/.test(m))).toHaveLength(1);
  expect(noisy.filter((m) => /check the plugin role|Could not list access monitoring rules/.test(m))).toEqual(
    [],
  );
}, 60_000);
