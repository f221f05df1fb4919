// P4: the operator from cold with 500 resources, by running bench/operator-scale.ts (written by the
// operator's owner: real etcd + kube-apiserver from test/k8s/harness.ts, the operator as a child
// process) and reading what it prints.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION } from '../../operator/controller/defaults.js';
import type { MattermostAccessPlugin } from '../../operator/controller/types.js';
import { startTestCluster } from '../../test/k8s/harness.js';
import { installCrd, seedNamespaceWithPlugins } from '../../test/k8s/operator-helpers.js';
import { freePort, procMiB, sleep } from '../lib/measure.js';
import { CLI } from '../lib/stack.js';
import { scaled, type ScenarioOptions, type ScenarioResult } from '../lib/result.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const SCRIPT = path.resolve(here, '../operator-scale.js');

/** The lines operator-scale.ts prints, parsed; undefined fields were not printed. */
export function parseOperatorScale(out: string): {
  done?: number;
  total?: number;
  seconds?: number;
  deployments?: number;
  peakMiB?: number;
  steadyMiB?: number;
  writes: Record<string, number>;
} {
  const m =
    /operator: (\d+)\/(\d+) resources reconciled from cold in ([\d.]+)s.*?, (\d+) Deployments; peak RSS (\d+) MiB, RSS 5s later (\d+) MiB/.exec(
      out,
    );
  const writes: Record<string, number> = {};
  for (const w of out.matchAll(/^\s+(api_writes_total\{[^}]*\}) (\S+)$/gm)) writes[w[1]!] = Number(w[2]);
  if (!m) return { writes };
  return {
    done: Number(m[1]),
    total: Number(m[2]),
    seconds: Number(m[3]),
    deployments: Number(m[4]),
    peakMiB: Number(m[5]),
    steadyMiB: Number(m[6]),
    writes,
  };
}

/**
 * The half operator-scale.ts does not measure: API writes per minute at rest. Same setup (harness control
 * plane, CRD, Secrets, N resources, the operator CLI as a child process); once every resource is
 * reconciled and a further 10 s have passed, the operator's api_writes_total is sampled over 60 s.
 */
async function writesAtRest(
  count: number,
  log: (t: string) => void,
): Promise<{ perMinute: number; reconciled: number; rss: number; byKind: string }> {
  const cluster = await startTestCluster();
  try {
    const kc = new KubeConfig();
    kc.loadFromFile(cluster.kubeconfigPath);
    await installCrd(kc);
    const ns = 'bench-rest';
    await seedNamespaceWithPlugins(kc, ns, count);
    const port = await freePort();
    const child = spawn(
      process.execPath,
      [
        CLI,
        'operator',
        '--namespace',
        ns,
        '--metrics-addr',
        `127.0.0.1:${port}`,
        '--leader-elect',
        'false',
        '--log-severity',
        'WARN',
      ],
      { env: { ...process.env, KUBECONFIG: cluster.kubeconfigPath }, stdio: ['ignore', 'ignore', 'inherit'] },
    );
    try {
      const custom = kc.makeApiClient(CustomObjectsApi);
      let reconciled = 0;
      const deadline = Date.now() + 300_000;
      while (Date.now() < deadline) {
        const list = (await custom.listNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          namespace: ns,
          plural: PLURAL,
        })) as {
          items: MattermostAccessPlugin[];
        };
        reconciled = list.items.filter(
          (cr) => cr.status?.observedGeneration === cr.metadata.generation,
        ).length;
        if (reconciled === count) break;
        await sleep(1000);
      }
      await sleep(10_000);
      const url = `http://127.0.0.1:${port}/metrics`;
      const writes = async () => {
        const text = await (await fetch(url)).text();
        const out = new Map<string, number>();
        for (const m of text.matchAll(/^\S*api_writes_total\{([^}]*)\} (\S+)$/gm))
          out.set(m[1]!, Number(m[2]));
        return out;
      };
      log(`P4: ${reconciled}/${count} reconciled; sampling API writes at rest for 60 s`);
      const before = await writes();
      await sleep(60_000);
      const after = await writes();
      const delta = [...after]
        .map(([k, v]) => [k, v - (before.get(k) ?? 0)] as const)
        .filter(([, d]) => d > 0);
      const rss = procMiB(child.pid!, 'VmRSS');
      return {
        perMinute: delta.reduce((a, [, d]) => a + d, 0),
        reconciled,
        rss,
        byKind: delta.map(([k, d]) => `${k} ${d}`).join(', ') || 'none',
      };
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  } finally {
    await cluster.stop();
  }
}

export async function p4Operator(opts: ScenarioOptions): Promise<ScenarioResult> {
  const count = scaled(500, opts);
  const base = {
    id: 'P4',
    title: `Operator: ${count} MattermostAccessPlugins from cold (real kube-apiserver)`,
    target: '≤ 30 s to all Deployments + Ready, 0 API writes/min at rest',
  };
  if (!existsSync(SCRIPT)) {
    return {
      ...base,
      figures: [],
      met: undefined,
      notes: ['Not measured: bench/operator-scale.ts (the operator owner’s scale run) is not in this build.'],
    };
  }
  opts.log(`P4: node dist/bench/operator-scale.js ${count}`);
  const { code, out } = await new Promise<{ code: number | null; out: string }>((resolve) => {
    const child = spawn(process.execPath, [SCRIPT, String(count)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    child.stderr.on('data', (d: Buffer) => (text += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 8 * 60_000);
    child.once('exit', (c) => {
      clearTimeout(timer);
      resolve({ code: c, out: text });
    });
  });
  const r = parseOperatorScale(out);
  if (code !== 0 || r.seconds === undefined) {
    return {
      ...base,
      figures: [['exit code', String(code)]],
      met: false,
      notes: [`operator-scale.js failed; its output ends with:\n\n\`\`\`\n${out.slice(-1500)}\n\`\`\``],
    };
  }
  const writes = Object.entries(r.writes).map(([k, v]) => `${k.replace('api_writes_total', '')} ${v}`);
  const rest = await writesAtRest(count, opts.log).catch((err: unknown) => err as Error);
  return {
    ...base,
    figures: [
      ['resources with an up-to-date Ready status', `${r.done} / ${r.total}`],
      ['Deployments', String(r.deployments)],
      ['time from operator start to all reconciled (incl. process start)', `${r.seconds!.toFixed(1)} s`],
      ['operator RSS peak / 5 s later', `${r.peakMiB} MiB / ${r.steadyMiB} MiB`],
      ['API writes during the cold start (by kind)', writes.join(', ') || 'not printed'],
      rest instanceof Error
        ? ['API writes/min at rest', `not measured: ${rest.message}`]
        : [
            `API writes/min at rest (second run: ${rest.reconciled}/${count} reconciled, 10 s later, over 60 s)`,
            `${rest.perMinute}${rest.perMinute ? ` (${rest.byKind})` : ''}; operator RSS then ${rest.rss.toFixed(0)} MiB`,
          ],
    ],
    headline: `${r.seconds!.toFixed(1)} s to ${r.done}/${r.total} reconciled, ${r.deployments} Deployments; RSS peak ${r.peakMiB} MiB; ${rest instanceof Error ? 'writes at rest not measured' : `${rest.perMinute} writes/min at rest`}`,
    met:
      r.done === r.total &&
      r.deployments === r.total &&
      r.seconds! <= 30 &&
      !(rest instanceof Error) &&
      rest.perMinute === 0,
    notes: [
      '“Ready” here is what operator-scale.ts checks: status.observedGeneration equals metadata.generation and the IdentityValid condition is True (there is no kubelet in the test control plane, so Deployments never get ready Pods).',
      'operator-scale.ts samples the operator once, so the at-rest write rate comes from a second run in bench/scenarios/operator.ts on a fresh control plane with the same resources: the delta of the operator’s api_writes_total over 60 s once everything is reconciled.',
    ],
  };
}
