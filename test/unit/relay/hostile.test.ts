// The relay against hostile input (issue 15): role names that are Object members, rules that would
// overflow the condition parser, tokens rotated at run time, and honest readiness.
import { Writable } from 'node:stream';
import winston from 'winston';
import { runWatcher, type WatcherInternals } from '../../../operator/relay/run.js';
import { dict } from '../../../operator/config/dict.js';
import type { AccessMonitoringRule } from '../../../operator/teleport/api.js';
import { FAST_TUNING, MemoryMattermost, MemoryTeleport, testConfig, until } from './fakes.js';

let teleport: MemoryTeleport;
let mattermost: MemoryMattermost;
let watchers: WatcherInternals[];
let lines: Record<string, unknown>[];

function capturingLogger(): winston.Logger {
  const sink = new Writable({
    objectMode: true,
    write(info: Record<string, unknown>, _enc, done) {
      lines.push(info);
      done();
    },
  });
  return winston.createLogger({
    level: 'debug',
    transports: [new winston.transports.Stream({ stream: sink })],
  });
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
