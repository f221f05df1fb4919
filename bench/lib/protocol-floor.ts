// The protocol floor of P1, run as its own process like the relay: the same clients the relay uses
// (operator/teleport/client.ts, operator/mattermost/client.ts), doing by hand the calls the relay makes
// before a root post is accepted — CAS write of the intent against "no data", two posts in parallel with
// a pending_post_id each — with no queue, logging or rendering in between. Prints per-step times as JSON.
// (Until 204d99e the relay read the plugin data twice before the write; until a87428c once.)
//
//   node dist/bench/lib/protocol-floor.js <config.toml> <channelId> <perSecond> <requestId>...
import { performance } from 'node:perf_hooks';
import { loadConfigFile } from '../../operator/config/load.js';
import { createMattermostClient } from '../../operator/mattermost/client.js';
import { silentLogger } from '../../operator/observability/logger.js';
import { connectTeleport } from '../../operator/teleport/client.js';

interface FloorSteps {
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
  const steps: FloorSteps = { updatePluginData: [], createPost: [], total: [] };
  const start = performance.now();
  const runs: Promise<void>[] = [];
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    const wait = start + (i * 1000) / Number(perSecond) - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    runs.push(
      (async () => {
        const t1 = performance.now();
        await teleport.updatePluginData(id, 'bench-floor', { intent: String(Date.now()) }, { intent: '' });
        const t3 = performance.now();
        await Promise.all([
          mattermost.createPost({
            channelId: channelId!,
            message: `floor ${id} a`,
            idempotencyKey: `${id}/a`,
          }),
          mattermost.createPost({
            channelId: channelId!,
            message: `floor ${id} b`,
            idempotencyKey: `${id}/b`,
          }),
        ]);
        const t4 = performance.now();
        steps.updatePluginData.push(t3 - t1);
        steps.createPost.push(t4 - t3);
        steps.total.push(t4 - t1);
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
