// Stops the cluster started by global-setup.ts and removes its data directory.
import type { TestCluster } from './harness.js';

declare global {
  var __TPM_K8S_CLUSTER__: TestCluster | undefined;
}

export default async function globalTeardown(): Promise<void> {
  await globalThis.__TPM_K8S_CLUSTER__?.stop();
  globalThis.__TPM_K8S_CLUSTER__ = undefined;
}
