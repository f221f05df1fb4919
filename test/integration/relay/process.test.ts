// The built watcher as a process (`node dist/operator/cli/main.js start -c file.toml`, as the image
// runs it) against the test servers: SIGTERM exits 0, SIGHUP reloads recipients without dropping the
// watch, and SIGKILL mid-burst followed by a restart delivers every post exactly once.
import { requireBuiltWatcher, watcherProcesses, writeWatcherConfig } from './watcher-process.js';
import { REVIEWER1, TEAM_CHANNEL, startStack, until, type Stack } from './harness.js';

let stack: Stack;
const processes = watcherProcesses();

beforeAll(requireBuiltWatcher);
afterEach(async () => {
  processes.killAll();
  await stack?.stop();
});

const writeConfig = (recipients: string[]): string => writeWatcherConfig(stack.config, recipients);
const startProcess = (configFile: string) => processes.start(configFile);

describe('the watcher process', () => {
  it('posts, reloads recipients on SIGHUP without a new watch, and exits 0 on SIGTERM', async () => {
    stack = await startStack();
    const file = writeConfig([TEAM_CHANNEL]);
    const p = startProcess(file);
    await until(() => p.output().includes('Plugin is ready'), 20_000, 'Plugin is ready');
    const first = stack.teleport.createRequest();
    await until(() => stack.mattermost.rootPosts().length === 1, 10_000, 'first post');
    expect(stack.mattermost.rootPosts()[0]!.channelId).toBe(stack.teamChannelId);

    writeConfig([REVIEWER1]);
    p.child.kill('SIGHUP');
    await until(() => p.output().includes('Configuration reloaded'), 10_000, 'reload');
    const second = stack.teleport.createRequest();
    await until(() => stack.mattermost.rootPosts().length === 2, 10_000, 'second post');
    const byId = (id: string) => stack.mattermost.rootPosts().find((x) => x.props.teleport_request_id === id);
    expect(byId(first.id)?.channelId).toBe(stack.teamChannelId);
    expect(byId(second.id)?.channelId).toBe(stack.dmOf(REVIEWER1));
    expect(p.output().match(/Plugin is ready/g)).toHaveLength(1);

    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    expect(p.output()).toMatch(/Successfully shut down/);
  }, 60_000);

  it('SIGKILL mid-burst, then a restart: every request posted exactly once', async () => {
    stack = await startStack();
    const file = writeConfig([TEAM_CHANNEL]);
    const p = startProcess(file);
    await until(() => p.output().includes('Plugin is ready'), 20_000, 'Plugin is ready');
    stack.mattermost.slow(20);
    const ids = Array.from(
      { length: 150 },
      (_, i) => stack.teleport.createRequest({ requestReason: `k${i}` }).id,
    );
    await until(() => stack.mattermost.rootPosts().length >= 30, 30_000, 'some posts');
    p.child.kill('SIGKILL');
    await p.exited;
    expect(stack.mattermost.rootPosts().length).toBeLessThan(150);
    stack.mattermost.slow(0);

    const again = startProcess(file);
    await until(() => stack.mattermost.rootPosts().length >= 150, 60_000, 'all posts');
    await until(
      () => ids.every((id) => (stack.teleport.pluginData(id)?.messages ?? '') !== ''),
      30_000,
      'recorded',
    );
    await new Promise((r) => setTimeout(r, 300)); // anything still in flight would show up as a duplicate
    const counts = new Map<string, number>();
    for (const post of stack.mattermost.rootPosts()) {
      const id = String(post.props.teleport_request_id);
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    expect([...counts.values()].filter((n) => n !== 1)).toEqual([]);
    expect(ids.filter((id) => !counts.has(id))).toEqual([]);
    again.child.kill('SIGTERM');
    expect(await again.exited).toBe(0);
  }, 120_000);
});
