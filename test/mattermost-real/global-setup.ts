// Starts one real Mattermost (with its PostgreSQL) for the whole `mattermost-real` jest project, seeds
// the shared world over REST, and hands it to the test files through the environment.
import path from 'node:path';
import type * as Server from './server.js';
import type * as Bootstrap from './bootstrap.js';

declare global {
  var __TPM_MATTERMOST_REAL__: Server.RealMattermost | undefined;
}

export default async function globalSetup(_global: unknown, project: { rootDir: string }): Promise<void> {
  // Global setup runs outside jest's module mapping (`.js` -> `.ts`): load the sources by absolute path.
  const dir = path.join(project.rootDir, 'test', 'mattermost-real');
  const server = (await import(path.join(dir, 'server.ts'))) as typeof Server;
  const world = (await import(path.join(dir, 'bootstrap.ts'))) as typeof Bootstrap;
  const started = Date.now();
  const mm = await server.startRealMattermost();
  globalThis.__TPM_MATTERMOST_REAL__ = mm;
  const seeded = await world.seedRealWorld(mm.url);
  process.env[world.REAL_WORLD_ENV] = JSON.stringify({ ...seeded, dir: mm.dir, dataSource: mm.dataSource });
  process.stderr.write(
    `\n[mattermost-real] Mattermost ready and seeded at ${mm.url} in ${((Date.now() - started) / 1000).toFixed(1)}s\n`,
  );
}
