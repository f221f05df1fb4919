// A real Kubernetes control plane for tests: etcd + kube-apiserver built by test/k8s/tools.sh, started on
// 127.0.0.1 with free ports and a throwaway data directory, the way envtest does, plus kube-controller-manager
// running only the garbage collector (ownerReference cascades) and the namespace controller (deleted
// namespaces go away). There is no scheduler, kubelet or Deployment controller: no ReplicaSets, no Pods, and
// Deployment status is whatever a test writes. Assert on API objects (specs, ownerReferences, status).
//
// One cluster per jest run (global-setup.ts starts it, global-teardown.ts stops it); test files reach it
// through the kubeconfig path in the TPM_K8S_KUBECONFIG environment variable and use one namespace each.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, openSync, closeSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ApiException,
  CoreV1Api,
  KubeConfig,
  KubernetesObjectApi,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { stringify as toYaml } from 'yaml';

/** Environment variable through which global setup hands the kubeconfig path to test files. */
export const KUBECONFIG_ENV = 'TPM_K8S_KUBECONFIG';
const READY_TIMEOUT_MS = 120_000;

/** The cache directory tools.sh builds into (same rule as the Makefile and tools.sh). */
export function toolsDir(): string {
  if (process.env.TOOLS_DIR) return process.env.TOOLS_DIR;
  const cache = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(cache, 'teleport-plugin-mattermost', 'tools');
}

/**
 * Absolute path of a test tool (helm, helm-unittest, kubectl, etcd, kube-apiserver): the cached build
 * first, then the PATH. Throws an error that names the fix when the tool is missing.
 */
export function toolPath(name: string): string {
  const cached = path.join(toolsDir(), 'bin', name);
  if (existsSync(cached)) return cached;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && existsSync(path.join(dir, name))) return path.join(dir, name);
  }
  throw new Error(`${name} not found in ${path.dirname(cached)} or on PATH; run \`make tools\` to build it`);
}

/** A running control plane. `stop()` is idempotent and never throws. */
export interface TestCluster {
  readonly dir: string;
  readonly server: string;
  readonly kubeconfigPath: string;
  stop(): Promise<void>;
}

/** Flags for etcd (pure; exported for inspection). */
export function etcdArgs(dataDir: string, clientPort: number, peerPort: number): string[] {
  const client = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  return [
    '--name=test',
    `--data-dir=${dataDir}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=test=${peer}`,
    // Throwaway data: skipping fsync keeps etcd fast on a busy 2-core machine.
    '--unsafe-no-fsync',
    '--log-level=warn',
  ];
}

/** Flags for kube-apiserver (pure), following envtest's defaults plus token auth and RBAC. */
export function apiserverArgs(o: { dir: string; etcdPort: number; port: number }): string[] {
  return [
    `--etcd-servers=http://127.0.0.1:${o.etcdPort}`,
    '--bind-address=127.0.0.1',
    '--advertise-address=127.0.0.1',
    // 1.37 refuses a loopback advertise address for the endpoint reconciler; nothing needs the endpoint.
    '--endpoint-reconciler-type=none',
    `--secure-port=${o.port}`,
    `--cert-dir=${path.join(o.dir, 'pki')}`,
    '--service-cluster-ip-range=10.0.0.0/24',
    `--service-account-issuer=https://127.0.0.1:${o.port}`,
    `--service-account-key-file=${path.join(o.dir, 'sa.pub')}`,
    `--service-account-signing-key-file=${path.join(o.dir, 'sa.key')}`,
    `--token-auth-file=${path.join(o.dir, 'tokens.csv')}`,
    '--authorization-mode=RBAC',
    '--disable-admission-plugins=ServiceAccount',
    '--allow-privileged=true',
    '--enable-priority-and-fairness=false',
    '--profiling=false',
  ];
}

/** The controllers kube-controller-manager runs: cascades and namespace cleanup, nothing that writes status. */
export const CONTROLLERS = ['garbagecollector', 'namespace'] as const;

/** Flags for kube-controller-manager (pure). */
export function controllerManagerArgs(kubeconfig: string): string[] {
  return [
    `--kubeconfig=${kubeconfig}`,
    `--controllers=${CONTROLLERS.join(',')}`,
    '--leader-elect=false',
    '--use-service-account-credentials=false',
    // No serving endpoint is needed; 0 disables it (no port to collide with).
    '--secure-port=0',
    '--concurrent-gc-syncs=5',
  ];
}

/** A kubeconfig (pure) for the token-authenticated admin (group system:masters). */
export function kubeconfigYaml(server: string, caPem: string, token: string): string {
  return toYaml({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: 'test',
        cluster: { server, 'certificate-authority-data': Buffer.from(caPem).toString('base64') },
      },
    ],
    users: [{ name: 'admin', user: { token } }],
    contexts: [{ name: 'test', context: { cluster: 'test', user: 'admin', namespace: 'default' } }],
    'current-context': 'test',
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Distinct free ports (asked for one at a time, so the OS could hand out the same one twice). */
async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

function startProcess(bin: string, args: string[], logFile: string): ChildProcess {
  const fd = openSync(logFile, 'a');
  // detached: its own process group, so teardown can kill it and anything it spawned in one go.
  const child = spawn(bin, args, { detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  child.unref();
  return child;
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (!pid) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

function running(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * Cleans up even if this process is killed with SIGKILL: a detached shell waits for our pid to vanish,
 * then kills the server process groups and removes the data directory.
 */
function startWatchdog(dir: string, pids: number[]): ChildProcess {
  const script =
    'parent=$1; dir=$2; shift 2; while kill -0 "$parent" 2>/dev/null; do sleep 2; done; ' +
    'for p in "$@"; do kill -TERM -"$p" 2>/dev/null; done; sleep 3; ' +
    'for p in "$@"; do kill -KILL -"$p" 2>/dev/null; done; rm -rf "$dir"';
  const child = spawn('sh', ['-c', script, 'watchdog', String(process.pid), dir, ...pids.map(String)], {
    detached: true,
    stdio: 'ignore',
  });
  child.unref();
  return child;
}

async function httpsGet(url: string, token: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      url,
      // Only for the readiness poll: the serving certificate is written by the apiserver as it starts.
      { headers: { Authorization: `Bearer ${token}` }, rejectUnauthorized: false, timeout: 5000 },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

async function startOnce(dir: string): Promise<TestCluster> {
  const [etcdPort, peerPort, apiPort] = (await freePorts(3)) as [number, number, number];
  const token = randomBytes(24).toString('hex');
  writeServiceAccountKeys(dir);
  writeFileSync(path.join(dir, 'tokens.csv'), `${token},test-admin,test-admin-uid,"system:masters"\n`, {
    mode: 0o600,
  });
  const etcdLog = path.join(dir, 'etcd.log');
  const apiLog = path.join(dir, 'kube-apiserver.log');
  const etcd = startProcess(toolPath('etcd'), etcdArgs(path.join(dir, 'etcd'), etcdPort, peerPort), etcdLog);
  const apiserver = startProcess(
    toolPath('kube-apiserver'),
    apiserverArgs({ dir, etcdPort, port: apiPort }),
    apiLog,
  );
  const children: ChildProcess[] = [etcd, apiserver];
  const watchdogs = [startWatchdog(dir, [etcd.pid!, apiserver.pid!])];
  const server = `https://127.0.0.1:${apiPort}`;
  const kubeconfigPath = path.join(dir, 'kubeconfig');

  let stopped = false;
  const stopSync = (): void => {
    if (stopped) return;
    stopped = true;
    for (const child of [...children].reverse()) killGroup(child.pid, 'SIGKILL');
    for (const watchdog of watchdogs) killGroup(watchdog.pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  // The data is thrown away, so there is nothing to shut down gracefully: kill, then wait for the exits.
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopSync();
    for (let i = 0; i < 50 && children.some(running); i++) await sleep(100);
  };
  // Interrupts and normal exits clean up too; the watchdog covers SIGKILL.
  const onSignal = (signal: NodeJS.Signals): void => {
    stopSync();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('exit', stopSync);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    let last = '';
    for (;;) {
      if (apiserver.exitCode !== null || etcd.exitCode !== null) {
        const which = apiserver.exitCode !== null ? 'kube-apiserver' : 'etcd';
        throw new Error(
          `${which} exited during startup; last log lines:\n${tail(which === 'etcd' ? etcdLog : apiLog)}`,
        );
      }
      try {
        const res = await httpsGet(`${server}/readyz`, token);
        if (res.status === 200) break;
        last = `${res.status} ${res.body.slice(0, 300)}`;
      } catch (err) {
        last = (err as Error).message;
      }
      if (Date.now() > deadline) {
        throw new Error(
          `kube-apiserver not ready after ${READY_TIMEOUT_MS / 1000}s (last: ${last}); log tail:\n${tail(apiLog)}`,
        );
      }
      await sleep(250);
    }
    const caPem = readFileSync(path.join(dir, 'pki', 'apiserver.crt'), 'utf8');
    writeFileSync(kubeconfigPath, kubeconfigYaml(server, caPem, token), { mode: 0o600 });
    const kcm = startProcess(
      toolPath('kube-controller-manager'),
      controllerManagerArgs(kubeconfigPath),
      path.join(dir, 'kube-controller-manager.log'),
    );
    children.push(kcm);
    watchdogs.push(startWatchdog(dir, [kcm.pid!]));
    return { dir, server, kubeconfigPath, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * Starts etcd + kube-apiserver and waits for /readyz. Retries once on a startup failure (a port taken
 * between choosing and binding it). The caller must call `stop()`.
 */
export async function startTestCluster(): Promise<TestCluster> {
  const mkdir = (): string => mkdtempSync(path.join(os.tmpdir(), 'tpm-k8s-'));
  try {
    return await startOnce(mkdir());
  } catch (err) {
    process.stderr.write(`[k8s harness] first start failed, retrying: ${(err as Error).message}\n`);
    return startOnce(mkdir());
  }
}

/** Path of the kubeconfig for the cluster of this jest run (set by test/k8s/global-setup.ts). */
export function kubeconfigPath(): string {
  const p = process.env[KUBECONFIG_ENV];
  if (!p || !existsSync(p)) {
    throw new Error(
      `${KUBECONFIG_ENV} is not set or points nowhere: run k8s tests through jest's k8s project ` +
        '(make test-k8s, or jest --selectProjects k8s), whose global setup starts the cluster',
    );
  }
  return p;
}

/** A KubeConfig for the admin of the test cluster (@kubernetes/client-node 2.x). */
export function loadTestKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath());
  return kc;
}

/** Creates a fresh namespace `<prefix>-<random>` for one test and returns its name. */
export async function createTestNamespace(prefix: string): Promise<string> {
  const base = prefix
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 50);
  const name = `${base || 'test'}-${randomBytes(4).toString('hex')}`;
  const core = loadTestKubeConfig().makeApiClient(CoreV1Api);
  await core.createNamespace({
    body: { metadata: { name, labels: { 'test.teleport-plugins.dev/run': 'k8s' } } },
  });
  return name;
}

/**
 * Writes a kubeconfig that authenticates as a ServiceAccount (a TokenRequest token), so a test can run code
 * with exactly the RBAC a chart or manifest grants. Returns the file path (inside a fresh temp directory).
 */
export async function serviceAccountKubeconfig(namespace: string, serviceAccount: string): Promise<string> {
  const kc = loadTestKubeConfig();
  const cluster = kc.getCurrentCluster();
  if (!cluster?.caData) throw new Error('test kubeconfig has no cluster CA data');
  const res = await kc.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
    namespace,
    name: serviceAccount,
    body: { spec: { audiences: [], expirationSeconds: 3600 } },
  });
  const token = res.status?.token;
  if (!token) throw new Error(`no token issued for ServiceAccount ${namespace}/${serviceAccount}`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tpm-sa-'));
  const file = path.join(dir, 'kubeconfig');
  const caPem = Buffer.from(cluster.caData, 'base64').toString('utf8');
  writeFileSync(file, kubeconfigYaml(cluster.server, caPem, token), { mode: 0o600 });
  return file;
}

/**
 * kube-controller-manager's garbage collector discovers new resource types (a CRD created during the run)
 * only every 30 s, and misses deletions of kinds it does not watch yet. This waits until it does watch the
 * kind of `owner`: it creates `owner` (a valid throwaway object with a unique name) in `namespace`, gives it a
 * dependent ConfigMap, deletes the owner and waits for the dependent to be collected. Immediate once known.
 */
export async function waitForGarbageCollectorToWatch(
  namespace: string,
  owner: KubernetesObject,
  timeoutMs = 90_000,
): Promise<void> {
  const kc = loadTestKubeConfig();
  const objects = KubernetesObjectApi.makeApiClient(kc);
  const core = kc.makeApiClient(CoreV1Api);
  const created = await objects.create({ ...owner, metadata: { ...owner.metadata, namespace } });
  const name = `gc-probe-${randomBytes(3).toString('hex')}`;
  await core.createNamespacedConfigMap({
    namespace,
    body: {
      metadata: {
        name,
        ownerReferences: [
          {
            apiVersion: created.apiVersion!,
            kind: created.kind!,
            name: created.metadata!.name!,
            uid: created.metadata!.uid!,
          },
        ],
      },
    },
  });
  await objects.delete(created);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await core.readNamespacedConfigMap({ namespace, name });
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return;
      throw err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `the garbage collector did not collect a dependent of a ${owner.kind} within ${timeoutMs} ms`,
      );
    }
    await sleep(250);
  }
}

/** Runs a tool with the test kubeconfig; returns its output or throws with stdout+stderr. */
export function runTool(
  name: string,
  args: string[],
  opts: { cwd?: string; env?: Record<string, string>; allowFailure?: boolean } = {},
): { status: number; stdout: string; stderr: string } {
  const res = spawnSync(toolPath(name), args, {
    cwd: opts.cwd,
    encoding: 'utf8',
    env: { ...process.env, KUBECONFIG: kubeconfigPath(), ...opts.env },
    timeout: 120_000,
  });
  const out = { status: res.status ?? -1, stdout: res.stdout ?? '', stderr: res.stderr ?? '' };
  if (out.status !== 0 && !opts.allowFailure) {
    throw new Error(`${name} ${args.join(' ')} failed (${out.status}):\n${out.stdout}\n${out.stderr}`);
  }
  return out;
}

/** Like runTool, without blocking the event loop (so a test can act while e.g. helm waits on a hook). */
export function runToolAsync(
  name: string,
  args: string[],
  opts: { cwd?: string; env?: Record<string, string> } = {},
): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(toolPath(name), args, {
      cwd: opts.cwd,
      env: { ...process.env, KUBECONFIG: kubeconfigPath(), ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ status: code ?? -1, stdout, stderr }));
  });
}

/** Generates service-account signing keys (PEM) into the cluster directory. */
export function writeServiceAccountKeys(dir: string): void {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  writeFileSync(path.join(dir, 'sa.key'), privateKey, { mode: 0o600 });
  writeFileSync(path.join(dir, 'sa.pub'), publicKey);
}
