// Where the operator's Kubernetes credentials come from: KUBECONFIG, else ~/.kube/config, else the
// in-cluster service account — as kubectl and client-node look — but with an error that says what to do
// instead of client-node's fallbacks: a bare ENOENT for a KUBECONFIG that names no file, or a silent
// http://localhost:8080 cluster whose every call then fails, retried forever, with "HTTP protocol is not
// allowed when skipTLSVerify is not set".
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';

/** The operator cannot reach any cluster with this configuration (exit 2, nothing to retry). */
export class KubeConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KubeConfigError';
  }
}

export interface KubeConfigSources {
  env: NodeJS.ProcessEnv;
  home: string;
  serviceAccountTokenPath: string;
}

const DEFAULT_SOURCES: KubeConfigSources = {
  env: process.env,
  home: os.homedir(),
  serviceAccountTokenPath: '/var/run/secrets/kubernetes.io/serviceaccount/token',
};

function loadFiles(kc: KubeConfig, files: string[]): void {
  files.forEach((file, i) => {
    const target = i === 0 ? kc : new KubeConfig();
    try {
      target.loadFromFile(file);
    } catch (err) {
      throw new KubeConfigError(`kubeconfig ${file} cannot be read: ${(err as Error).message}`);
    }
    if (target !== kc) kc.mergeConfig(target);
  });
}

/** Loads the kubeconfig, or throws KubeConfigError naming what is missing and how to provide it. */
export function loadKubeConfig(sources: KubeConfigSources = DEFAULT_SOURCES): KubeConfig {
  const kc = new KubeConfig();
  const listed = (sources.env.KUBECONFIG ?? '').split(path.delimiter).filter(Boolean);
  const homeConfig = path.join(sources.home, '.kube', 'config');
  let source: string;
  if (listed.length > 0) {
    // Like kubectl, skip entries that do not exist; fail only when none does.
    const present = listed.filter((f) => fs.existsSync(f));
    if (present.length === 0)
      throw new KubeConfigError(
        `no kubeconfig: KUBECONFIG=${sources.env.KUBECONFIG} names no existing file; set KUBECONFIG to a kubeconfig file or run in-cluster`,
      );
    loadFiles(kc, present);
    source = `KUBECONFIG=${sources.env.KUBECONFIG}`;
  } else if (fs.existsSync(homeConfig)) {
    loadFiles(kc, [homeConfig]);
    source = homeConfig;
  } else if (sources.env.KUBERNETES_SERVICE_HOST && fs.existsSync(sources.serviceAccountTokenPath)) {
    kc.loadFromCluster();
    return kc;
  } else {
    throw new KubeConfigError(
      `no kubeconfig: set KUBECONFIG or run in-cluster (there is no ${homeConfig}, and no in-cluster service account)`,
    );
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster)
    throw new KubeConfigError(
      `${source}: no current cluster; set current-context (kubectl config use-context <name>)`,
    );
  if (cluster.server.startsWith('http://') && !cluster.skipTLSVerify)
    throw new KubeConfigError(
      `${source}: cluster ${cluster.name} is served over plain HTTP (${cluster.server}); use its https:// address ` +
        '(or set insecure-skip-tls-verify: true for that cluster to allow plain HTTP)',
    );
  return kc;
}
