// The built watcher process (as the image runs it) against the real Mattermost: SIGKILL in the middle
// of a burst, then a restart, leaves exactly one root post per request, none lost.
import { randomBytes } from 'node:crypto';
import {
  requireBuiltWatcher,
  watcherProcesses,
  writeWatcherConfig,
} from '../integration/relay/watcher-process.js';
import { eventually, startRealStack, type RealStack } from './stack.js';

let stack: RealStack | undefined;
const processes = watcherProcesses();

beforeAll(requireBuiltWatcher);
afterEach(async () => {
  processes.killAll();
  await stack?.stop();
});

const writeConfig = (s: RealStack, recipients: string[]): string => writeWatcherConfig(s.config, recipients);
const startProcess = (configFile: string) => processes.start(configFile);

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
