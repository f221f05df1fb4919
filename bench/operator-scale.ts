// Benchmark: N MattermostAccessPlugins reconciled from cold by the real operator process.
// Starts the test control plane (test/k8s/harness.ts), creates the CRD, two Secrets and N resources
// first, then starts `teleport-mattermost operator --namespace NS` as a child process and measures the
// time until every resource has a Deployment and an up-to-date status, plus the operator's peak RSS
// (VmHWM) and its steady RSS afterwards.
//
// With a second argument M, M unrelated 512 KiB Secrets (like Helm release Secrets) are created in the
// namespace first: the operator's memory must not grow with them.
//
//   npm run build && node dist/bench/operator-scale.js [N=500] [M=0]
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { AppsV1Api, CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION } from '../operator/controller/defaults.js';
import type { MattermostAccessPlugin } from '../operator/controller/types.js';
import { startTestCluster } from '../test/k8s/harness.js';
import { installCrd, seedNamespaceWithPlugins } from '../test/k8s/operator-helpers.js';
import { IMAGE_ENV, IMAGE_NODE_ARGS } from './lib/image-env.js';
import { freePort, procMiB } from './lib/measure.js';

const N = Number(process.argv[2] ?? 500);
const UNRELATED = Number(process.argv[3] ?? 0);
const UNRELATED_BYTES = 512 * 1024;
const here = path.dirname(fileURLToPath(import.meta.url));
// The CLI the image ships (dist/bundle), else the compiled sources.
const cli = [path.resolve(here, '../bundle/main.mjs'), path.resolve(here, '../operator/cli/main.js')].find(
  (p) => existsSync(p),
)!;

/** Selected samples from the operator's /metrics. */
async function operatorMetrics(port: number): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m =
      /^teleport_mattermost_operator_(nodejs_heap_size_used_bytes|nodejs_external_memory_bytes|cache_objects\{kind="[A-Za-z]+"\}|cache_secret_data_bytes|reconcile_total\{result="[a-z_]+"\}|api_writes_total\{[^}]*\}|reconcile_duration_seconds_sum|reconcile_duration_seconds_count) (\S+)$/.exec(
        line,
      );
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}

async function main(): Promise<void> {
  const cluster = await startTestCluster();
  try {
    const kc = new KubeConfig();
    kc.loadFromFile(cluster.kubeconfigPath);
    await installCrd(kc);
    const ns = 'bench';
    const t0 = Date.now();
    await seedNamespaceWithPlugins(kc, ns, N);
    process.stdout.write(`created ${N} resources in ${((Date.now() - t0) / 1000).toFixed(1)}s\n`);
    if (UNRELATED > 0) {
      const core = kc.makeApiClient(CoreV1Api);
      const blob = randomBytes((UNRELATED_BYTES / 4) * 3).toString('base64');
      for (let i = 0; i < UNRELATED; i += 10) {
        await Promise.all(
          Array.from({ length: Math.min(10, UNRELATED - i) }, (_, j) =>
            core.createNamespacedSecret({
              namespace: ns,
              body: {
                metadata: { name: `sh.helm.release.v1.app-${i + j}.v1` },
                type: 'helm.sh/release.v1',
                data: { release: blob },
              },
            }),
          ),
        );
      }
      process.stdout.write(`created ${UNRELATED} unrelated Secrets of ${UNRELATED_BYTES / 1024} KiB\n`);
    }

    const metricsPort = await freePort();
    const start = Date.now();
    const child = spawn(
      process.execPath,
      [
        ...IMAGE_NODE_ARGS,
        cli,
        'operator',
        '--namespace',
        ns,
        '--metrics-addr',
        `127.0.0.1:${metricsPort}`,
        '--leader-elect',
        'false',
        '--log-severity',
        'WARN',
      ],
      {
        env: { ...process.env, ...IMAGE_ENV, KUBECONFIG: cluster.kubeconfigPath },
        stdio: ['ignore', 'inherit', 'inherit'],
      },
    );
    const killChild = () => child.exitCode === null && child.kill('SIGKILL');
    process.once('exit', killChild);
    const custom = kc.makeApiClient(CustomObjectsApi);
    const apps = kc.makeApiClient(AppsV1Api);
    let done = 0;
    for (;;) {
      const list = (await custom.listNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: ns,
        plural: PLURAL,
      })) as {
        items: MattermostAccessPlugin[];
      };
      done = list.items.filter(
        (cr) =>
          cr.status?.observedGeneration === cr.metadata.generation &&
          cr.status?.conditions?.some((c) => c.type === 'IdentityValid' && c.status === 'True'),
      ).length;
      if (done === N || Date.now() - start > 600_000) break;
      await sleep(1000);
    }
    const elapsed = (Date.now() - start) / 1000;
    const deployments = (await apps.listNamespacedDeployment({ namespace: ns })).items.length;
    const peak = procMiB(child.pid!, 'VmHWM');
    await sleep(5000);
    const steady = procMiB(child.pid!, 'VmRSS');
    const [anon, file] = [procMiB(child.pid!, 'RssAnon'), procMiB(child.pid!, 'RssFile')];
    process.stdout.write(
      `operator: ${done}/${N} resources reconciled from cold in ${elapsed.toFixed(1)}s (incl. process start), ` +
        `${deployments} Deployments; peak RSS ${peak.toFixed(0)} MiB, RSS 5s later ${steady.toFixed(0)} MiB ` +
        `(anonymous ${anon.toFixed(1)} MiB, file-backed ${file.toFixed(1)} MiB)\n`,
    );
    const m = await operatorMetrics(metricsPort);
    const mib = (b = 0) => `${(b / 1048576).toFixed(0)} MiB`;
    process.stdout.write(
      `heap used ${mib(m.nodejs_heap_size_used_bytes)}, external ${mib(m.nodejs_external_memory_bytes)}; ` +
        `mean reconcile ${((1000 * (m.reconcile_duration_seconds_sum ?? 0)) / (m.reconcile_duration_seconds_count || 1)).toFixed(1)} ms\n`,
    );
    for (const [k, v] of Object.entries(m)) if (/total|cache_/.test(k)) process.stdout.write(`  ${k} ${v}\n`);
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  } finally {
    await cluster.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
