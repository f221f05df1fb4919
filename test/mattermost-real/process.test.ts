// The built watcher process (as the image runs it) against the real Mattermost: SIGKILL in the middle
// of a burst, then a restart, leaves exactly one root post per request, none lost.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { eventually, startRealStack, type RealStack } from './stack.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const entry = path.join(root, 'dist/operator/cli/main.js');
let stack: RealStack | undefined;
const children: ChildProcess[] = [];

beforeAll(() => {
  if (!fs.existsSync(entry)) throw new Error(`${entry} is missing: run 'make build' first (make test does)`);
});
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await stack?.stop();
});

function writeConfig(s: RealStack, recipients: string[]): string {
  const c = s.config;
  const q = (v: string) => JSON.stringify(v);
  fs.writeFileSync(
    c.source,
    [
      '[teleport]',
      `addr = ${q(c.teleport.addr)}`,
      `identity = ${q(c.teleport.identity as string)}`,
      '[mattermost]',
      `url = ${q(c.mattermost.url)}`,
      `token = ${q(c.mattermost.token)}`,
      '[role_to_recipients]',
      `"*" = [${recipients.map(q).join(', ')}]`,
      '[log]',
      'severity = "INFO"',
      '[http]',
      'listen_addr = "127.0.0.1:0"',
      '',
    ].join('\n'),
  );
  return c.source;
}

function startProcess(configFile: string) {
  const child = spawn(process.execPath, [entry, 'start', '-c', configFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  return { child, output: () => out, exited };
}

it('SIGKILL mid-burst, then a restart: exactly one root post per request', async () => {
  stack = await startRealStack({ roleToRecipients: {} });
  const name = `burst-${randomBytes(3).toString('hex')}`;
  const channelId = await stack.world.createChannel(name, { type: 'O', botMember: true });
  const file = writeConfig(stack, [`team-llama/${name}`]);
  const first = startProcess(file);
  await eventually(async () => first.output().includes('Plugin is ready'), 30_000, 'Plugin is ready');
  const total = 120;
  const ids = Array.from(
    { length: total },
    (_, i) => stack!.teleport.createRequest({ requestReason: `k${i}` }).id,
  );
  // Our root posts (the channel also holds the server's own system messages).
  const roots = async () =>
    (await stack!.world.posts(channelId)).filter((p) => p.rootId === '' && p.props.teleport_request_id);
  await eventually(async () => (await roots()).length >= 5, 30_000, 'some posts');
  first.child.kill('SIGKILL');
  await first.exited;
  const atKill = (await roots()).length;
  expect(atKill).toBeLessThan(total);

  const again = startProcess(file);
  await eventually(
    async () => ids.every((id) => (stack!.teleport.pluginData(id)?.messages ?? '') !== ''),
    90_000,
    'every request recorded',
  );
  await new Promise((r) => setTimeout(r, 500)); // anything still in flight would show up as a duplicate
  const counts = new Map<string, number>();
  for (const p of await roots()) {
    const id = String(p.props.teleport_request_id);
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  expect([...counts.entries()].filter(([, n]) => n !== 1)).toEqual([]);
  expect(ids.filter((id) => !counts.has(id))).toEqual([]);
  again.child.kill('SIGTERM');
  await again.exited;
}, 150_000);
