// The protocol floor of P1, run as its own process like the relay: the same clients the relay uses
// (operator/teleport/client.ts, operator/mattermost/client.ts), doing by hand the calls the relay makes
// before a root post is accepted — read plugin data, CAS write of the intent against what was read, two
// posts in parallel — with no queue, logging or rendering in between. Prints per-step times as JSON.
// (Until 204d99e the relay read the plugin data twice before the write.)
//
//   node dist/bench/lib/protocol-floor.js <config.toml> <channelId> <perSecond> <requestId>...
import { performance } from 'node:perf_hooks';
import { loadConfigFile } from '../../operator/config/load.js';
import { createMattermostClient } from '../../operator/mattermost/client.js';
import { silentLogger } from '../../operator/observability/logger.js';
import { connectTeleport } from '../../operator/teleport/client.js';

interface FloorSteps {
  getPluginData: number[];
  updatePluginData: number[];
  createPost: number[];
  total: number[];
}

async function main(): Promise<void> {
  const [configPath, channelId, perSecond, ...ids] = process.argv.slice(2);
  const { config } = loadConfigFile(configPath!);
  const logger = silentLogger();
  const teleport = await connectTeleport(config.teleport, logger);
  const mattermost = createMattermostClient(config.mattermost, logger);
  await teleport.ping();
  await mattermost.getMe();
  const steps: FloorSteps = { getPluginData: [], updatePluginData: [], createPost: [], total: [] };
  const start = performance.now();
  const runs: Promise<void>[] = [];
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    const wait = start + (i * 1000) / Number(perSecond) - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    runs.push(
      (async () => {
        const t0 = performance.now();
        await teleport.getPluginData(id, 'bench-floor');
        const t1 = performance.now();
        await teleport.updatePluginData(id, 'bench-floor', { intent: String(Date.now()) }, { intent: '' });
        const t3 = performance.now();
        await Promise.all([
          mattermost.createPost({ channelId: channelId!, message: `floor ${id} a` }),
          mattermost.createPost({ channelId: channelId!, message: `floor ${id} b` }),
        ]);
        const t4 = performance.now();
        steps.getPluginData.push(t1 - t0);
        steps.updatePluginData.push(t3 - t1);
        steps.createPost.push(t4 - t3);
        steps.total.push(t4 - t0);
      })(),
    );
  }
  await Promise.all(runs);
  process.stdout.write(`${JSON.stringify(steps)}\n`);
  teleport.close();
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(
      `protocol floor failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(1);
  },
);
