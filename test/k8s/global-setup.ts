// Starts one etcd + kube-apiserver for the whole k8s jest project and hands its kubeconfig to the test
// files through the environment (workers and --runInBand both inherit it).
import path from 'node:path';
import type * as Harness from './harness.js';
import type { TestCluster } from './harness.js';

declare global {
  var __TPM_K8S_CLUSTER__: TestCluster | undefined;
}

export default async function globalSetup(_global: unknown, project: { rootDir: string }): Promise<void> {
  // Jest transpiles global setup to CommonJS outside its module system, where the `.js` → `.ts`
  // mapping of relative imports does not apply; load the harness source by absolute path instead.
  const harness = (await import(path.join(project.rootDir, 'test', 'k8s', 'harness.ts'))) as typeof Harness;
  const started = Date.now();
  const cluster = await harness.startTestCluster();
  process.env[harness.KUBECONFIG_ENV] = cluster.kubeconfigPath;
  globalThis.__TPM_K8S_CLUSTER__ = cluster;
  process.stderr.write(
    `\n[k8s harness] kube-apiserver ready at ${cluster.server} in ${((Date.now() - started) / 1000).toFixed(1)}s ` +
      `(kubeconfig ${cluster.kubeconfigPath})\n`,
  );
}
