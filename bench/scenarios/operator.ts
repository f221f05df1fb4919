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
import { IMAGE_ENV, IMAGE_NODE_ARGS } from '../lib/image-env.js';
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
  /** Of the RSS 5 s later: anonymous and file-backed (the node binary's pages). */
  anonMiB?: number;
  fileMiB?: number;
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
    ...parts(out),
    writes,
  };
}

function parts(out: string): { anonMiB?: number; fileMiB?: number } {
  const m = /\(anonymous ([\d.]+) MiB, file-backed ([\d.]+) MiB\)/.exec(out);
  return m ? { anonMiB: Number(m[1]), fileMiB: Number(m[2]) } : {};
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
        ...IMAGE_NODE_ARGS,
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
      {
        env: { ...process.env, ...IMAGE_ENV, KUBECONFIG: cluster.kubeconfigPath },
        stdio: ['ignore', 'ignore', 'inherit'],
      },
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

/** Runs bench/operator-scale.js N M and collects what it prints. */
function runScaleScript(count: number, unrelated: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [SCRIPT, String(count), String(unrelated)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    child.stderr.on('data', (d: Buffer) => (text += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 8 * 60_000);
    child.once('exit', (c) => {
      clearTimeout(timer);
      resolve({ code: c, out: text });
    });
  });
}

/** The result of a scenario whose operator-scale.js run failed: its exit code and the end of its output. */
function scaleFailed<B extends object>(base: B, code: number | null, out: string) {
  return {
    ...base,
    figures: [['exit code', String(code)]] as [string, string][],
    met: false,
    notes: [`operator-scale.js failed; its output ends with:\n\n\`\`\`\n${out.slice(-1500)}\n\`\`\``],
  };
}

/** The cache metrics operator-scale.ts prints (`cache_objects{kind="Secret"} 2` ...). */
function cacheLine(out: string): string {
  const parts = [...out.matchAll(/^\s+cache_objects\{kind="([A-Za-z]+)"\} (\S+)$/gm)].map(
    (m) => `${m[1]} ${m[2]}`,
  );
  const bytes = /^\s+cache_secret_data_bytes (\S+)$/m.exec(out)?.[1];
  return parts.length ? `${parts.join(', ')}; Secret data ${bytes ?? '?'} B` : 'not printed';
}

const OPERATOR_ANCHOR =
  'no operator in the Go plugin (its chart runs the plugin directly; the plugin idles at 26 MB RSS)';

/** P4m: the operator's peak memory from cold with N resources plus 200 unrelated 512 KiB Secrets. */
export async function p4mOperatorWithSecrets(opts: ScenarioOptions): Promise<ScenarioResult> {
  const count = scaled(500, opts);
  const unrelated = scaled(200, opts);
  const base = {
    id: 'P4m',
    title: `Operator memory: ${count} MattermostAccessPlugins from cold plus ${unrelated} unrelated 512 KiB Secrets`,
    target: '≤ 128 MiB peak RSS, flat in the number of unrelated Secrets',
  };
  opts.log(`P4m: node dist/bench/operator-scale.js ${count} ${unrelated}`);
  const { code, out } = await runScaleScript(count, unrelated);
  const r = parseOperatorScale(out);
  if (code !== 0 || r.peakMiB === undefined) return scaleFailed(base, code, out);
  return {
    ...base,
    figures: [
      ['operator RSS peak (VmHWM) / 5 s later', `${r.peakMiB} MiB / ${r.steadyMiB} MiB`],
      ['resources reconciled / Deployments', `${r.done} / ${r.total}, ${r.deployments}`],
      ['time from operator start to all reconciled', `${r.seconds!.toFixed(1)} s`],
      ['operator caches at the end (its own metrics)', cacheLine(out)],
      ['anchor', OPERATOR_ANCHOR],
    ],
    headline: `peak ${r.peakMiB} MiB, ${r.steadyMiB} MiB 5 s later; ${r.done}/${r.total} in ${r.seconds!.toFixed(1)} s; cached: ${cacheLine(out)}`,
    met: r.done === r.total && r.peakMiB <= 128,
    notes: [
      'RSS from /proc/<pid>/status of the operator process (the built CLI, with the image’s environment: bench/lib/image-env.ts). The unrelated Secrets are created before the operator starts, so its initial Secret list includes them.',
    ],
  };
}

/** P4i: the operator's idle memory with one resource. */
/** How many fresh operator processes P4i measures: the file-backed part of RSS varies by ±3 MiB per run. */
const P4I_RUNS = 3;

export async function p4iOperatorIdle(opts: ScenarioOptions): Promise<ScenarioResult> {
  const base = {
    id: 'P4i',
    title: 'Operator memory idle with 1 MattermostAccessPlugin',
    target: '≤ 64 MiB RSS (median of 3 fresh processes)',
  };
  const runs: ReturnType<typeof parseOperatorScale>[] = [];
  for (let i = 0; i < P4I_RUNS; i++) {
    opts.log(`P4i: node dist/bench/operator-scale.js 1 (run ${i + 1} of ${P4I_RUNS})`);
    const { code, out } = await runScaleScript(1, 0);
    const r = parseOperatorScale(out);
    if (code !== 0 || r.steadyMiB === undefined) return scaleFailed(base, code, out);
    runs.push(r);
  }
  runs.sort((a, b) => a.steadyMiB! - b.steadyMiB!);
  const r = runs[Math.floor(runs.length / 2)]!;
  return {
    ...base,
    figures: [
      ['operator RSS 5 s after the resource was reconciled (idle), median', `${r.steadyMiB} MiB`],
      ['of it: anonymous / file-backed (the node binary)', `${r.anonMiB} MiB / ${r.fileMiB} MiB`],
      [
        'each run: RSS (anonymous / file-backed)',
        runs.map((x) => `${x.steadyMiB} MiB (${x.anonMiB} / ${x.fileMiB})`).join(', '),
      ],
      ['operator RSS peak (VmHWM) of the median run', `${r.peakMiB} MiB`],
      ['anchor: Go plugin idle RSS (issue 16, same machine)', '26 MB'],
    ],
    headline: `idle ${r.steadyMiB} MiB (anon ${r.anonMiB} MiB, file-backed ${r.fileMiB} MiB; median of ${P4I_RUNS}: ${runs.map((x) => x.steadyMiB).join(', ')} MiB)`,
    met: r.steadyMiB! <= 64,
    notes: [
      'RSS from /proc/<pid>/status of the operator process (the built CLI, with the image’s environment: bench/lib/image-env.ts).',
    ],
  };
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
  const { code, out } = await runScaleScript(count, 0);
  const r = parseOperatorScale(out);
  if (code !== 0 || r.seconds === undefined) return scaleFailed(base, code, out);
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
