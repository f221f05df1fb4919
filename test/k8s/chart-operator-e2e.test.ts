// The whole path of Teleport's guide against the real API server: `helm upgrade --install` with the guide's
// values → the operator (the built CLI, run as a local process with the chart's ServiceAccount token, so
// the chart's RBAC is what it gets) reconciles the MattermostAccessPlugin into ConfigMap + Deployment
// `teleport-plugin-mattermost`; `helm upgrade` with new recipients rolls it (config hash); `helm uninstall`
// removes the plugin (the garbage collector removes what the operator created) and keeps the CRD.
import {
  ApiException,
  ApiextensionsV1Api,
  AppsV1Api,
  CoreV1Api,
  type KubernetesObject,
  type V1Deployment,
} from '@kubernetes/client-node';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parse as parseToml } from 'smol-toml';
import { TestCA, identityFileText } from '../teleport-server/index.js';
import {
  createTestNamespace,
  loadTestKubeConfig,
  runTool,
  serviceAccountKubeconfig,
  waitForGarbageCollectorToWatch,
} from './harness.js';
import { helmRunningHookJobs } from './hook-jobs.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const chartDir = path.join(repoRoot, 'charts', 'teleport-plugin-mattermost');
const guideValues = path.join(repoRoot, 'test', 'fixtures', 'guide', 'teleport-mattermost-helm.yaml');
const cli = path.join(repoRoot, 'dist', 'operator', 'cli', 'main.js');
const release = 'teleport-plugin-mattermost';
const CONFIG_HASH = 'teleport-plugins.dev/config-hash';

const kc = loadTestKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const apps = kc.makeApiClient(AppsV1Api);
const ext = kc.makeApiClient(ApiextensionsV1Api);

const helmHome = mkdtempSync(path.join(os.tmpdir(), 'tpm-helm-'));
const helmEnv = {
  HELM_CACHE_HOME: path.join(helmHome, 'cache'),
  HELM_CONFIG_HOME: path.join(helmHome, 'config'),
  HELM_DATA_HOME: path.join(helmHome, 'data'),
};

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out waiting for ${what}${lastError ? ` (last error: ${String(lastError)})` : ''}`,
      );
    }
    await sleep(200);
  }
}

const gone = (read: () => Promise<unknown>) => async (): Promise<true | undefined> =>
  read().then(
    () => undefined,
    (e: unknown) => (e instanceof ApiException && e.code === 404 ? true : undefined),
  );

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer().on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

interface Operator {
  child: ChildProcess;
  output: () => string;
}

/** Starts the built operator CLI as the chart's ServiceAccount and waits for its /readyz. */
async function startOperator(namespace: string): Promise<Operator> {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`make build\` (make test-k8s does)`);
  const kubeconfig = await serviceAccountKubeconfig(namespace, `${release}-operator`);
  const port = await freePort();
  let output = '';
  const child = spawn(
    process.execPath,
    [cli, 'operator', `--namespace=${namespace}`, `--metrics-addr=127.0.0.1:${port}`, '--leader-elect=true'],
    {
      env: {
        PATH: process.env.PATH ?? '',
        HOME: os.tmpdir(),
        KUBECONFIG: kubeconfig,
        POD_NAMESPACE: namespace,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (output += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (output += c));
  child.on('exit', () => rmSync(path.dirname(kubeconfig), { recursive: true, force: true }));
  await waitFor('the operator to report ready', async () => {
    if (child.exitCode !== null) throw new Error(`operator exited with ${child.exitCode}:\n${output}`);
    const res = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
    return res?.status === 200 ? true : undefined;
  });
  return { child, output: () => output };
}

async function stopOperator(op: Operator): Promise<void> {
  if (op.child.exitCode !== null) return;
  const exited = new Promise((resolve) => op.child.once('exit', resolve));
  op.child.kill('SIGTERM');
  await Promise.race([exited, sleep(10_000)]);
  if (op.child.exitCode === null) op.child.kill('SIGKILL');
}

function configHash(d: V1Deployment): string | undefined {
  return d.spec?.template.metadata?.annotations?.[CONFIG_HASH];
}

describe('chart + operator: the guide, end to end', () => {
  let operator: Operator | undefined;
  afterAll(async () => {
    if (operator) await stopOperator(operator);
    rmSync(helmHome, { recursive: true, force: true });
  });

  it('reconciles the guide install into Deployment teleport-plugin-mattermost, rolls it on new recipients, and cleans up on uninstall', async () => {
    const namespace = await createTestNamespace('guide');
    // The identity tbot (or tctl auth sign) would have written, in the Secret the guide names.
    const ca = TestCA.create('teleport.example.com');
    await core.createNamespacedSecret({
      namespace,
      body: {
        metadata: { name: 'teleport-plugin-mattermost-identity' },
        stringData: { identity: identityFileText({ ca, ttlMs: 24 * 3600_000 }) },
      },
    });
    runTool('helm', ['upgrade', '--install', release, chartDir, '-n', namespace, '--values', guideValues], {
      env: helmEnv,
    });
    // So that the uninstall's cascade below is observed (the CRD may be brand new in this run).
    await waitForGarbageCollectorToWatch(namespace, {
      apiVersion: 'teleport-plugins.dev/v1',
      kind: 'MattermostAccessPlugin',
      metadata: { name: 'gc-probe' },
      spec: {
        teleport: { address: 'probe.example.com:443', identitySecretRef: { name: 'probe' } },
        mattermost: { url: 'https://probe.example.com', tokenSecretRef: { name: 'probe' } },
      },
    } as KubernetesObject);
    operator = await startOperator(namespace);
    const op = operator;

    const deployment = await waitFor('the operator to create the watcher Deployment', async () =>
      apps.readNamespacedDeployment({ namespace, name: release }),
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}\noperator output:\n${op.output()}`);
    });
    expect(deployment.metadata?.ownerReferences?.[0]).toMatchObject({
      kind: 'MattermostAccessPlugin',
      name: release,
      controller: true,
    });
    const pod = deployment.spec!.template.spec!;
    expect(pod.containers[0]?.image).toBe('ghcr.io/teleport-plugins/teleport-plugin-mattermost:0.1.0');
    const secretNames = (pod.volumes ?? []).map((v) => v.secret?.secretName).filter(Boolean);
    expect(secretNames).toEqual(
      expect.arrayContaining(['teleport-plugin-mattermost-identity', 'teleport-plugin-mattermost-secret']),
    );
    const firstHash = configHash(deployment);
    expect(firstHash).toBeTruthy();

    const config = await core.readNamespacedConfigMap({ namespace, name: release });
    const toml = parseToml(Object.values(config.data ?? {})[0] ?? '') as {
      teleport: { addr: string };
      mattermost: { url: string; recipients?: string[]; token: string };
    };
    expect(toml.teleport.addr).toBe('teleport.example.com:443');
    expect(toml.mattermost.url).toBe('https://mattermost.example.com/');
    expect(toml.mattermost.recipients).toEqual(['alice@example.com', 'team/example-channel']);
    // The token is a mounted file, never in the ConfigMap.
    expect(JSON.stringify(config.data)).not.toContain('mattermosttoken');

    // New recipients: the ConfigMap follows and the pod template's config hash changes (a rollout).
    await helmRunningHookJobs(
      [
        'upgrade',
        release,
        chartDir,
        '-n',
        namespace,
        '--values',
        guideValues,
        '--set-json',
        'mattermost.recipients=["ops/access-requests"]',
      ],
      { namespace, env: helmEnv, cwd: repoRoot },
    );
    const rolled = await waitFor('the Deployment to roll to the new config', async () => {
      const d = await apps.readNamespacedDeployment({ namespace, name: release });
      return configHash(d) && configHash(d) !== firstHash ? d : undefined;
    });
    expect(configHash(rolled)).not.toBe(firstHash);
    const newConfig = await core.readNamespacedConfigMap({ namespace, name: release });
    expect(Object.values(newConfig.data ?? {})[0]).toContain('ops/access-requests');

    // Uninstall: the plugin goes, the garbage collector removes its Deployment and ConfigMap, the CRD stays.
    runTool('helm', ['uninstall', release, '-n', namespace], { env: helmEnv });
    await waitFor(
      'the watcher Deployment to be garbage-collected',
      gone(() => apps.readNamespacedDeployment({ namespace, name: release })),
    );
    await waitFor(
      'the watcher ConfigMap to be garbage-collected',
      gone(() => core.readNamespacedConfigMap({ namespace, name: release })),
    );
    await ext.readCustomResourceDefinition({ name: 'mattermostaccessplugins.teleport-plugins.dev' });
  }, 180_000);
});
