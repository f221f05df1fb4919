// Stops the server started by global-setup.ts (Mattermost, then PostgreSQL) and removes its directory.
import type { RealMattermost } from './server.js';

declare global {
  var __TPM_MATTERMOST_REAL__: RealMattermost | undefined;
}

export default async function globalTeardown(): Promise<void> {
  await globalThis.__TPM_MATTERMOST_REAL__?.stop();
  globalThis.__TPM_MATTERMOST_REAL__ = undefined;
}
