// P4: the operator from cold with 500 resources, by running bench/operator-scale.ts (written by the
// operator's owner: real etcd + kube-apiserver from test/k8s/harness.ts, the operator as a child
// process) and reading what it prints.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
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
    const timer = setTimeout(() => child.kill('SIGKILL'), 15 * 60_000);
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
  return {
    ...base,
    figures: [
      ['resources with an up-to-date Ready status', `${r.done} / ${r.total}`],
      ['Deployments', String(r.deployments)],
      ['time from operator start to all reconciled (incl. process start)', `${r.seconds!.toFixed(1)} s`],
      ['operator RSS peak / 5 s later', `${r.peakMiB} MiB / ${r.steadyMiB} MiB`],
      ['API writes during the cold start (by kind)', writes.join(', ') || 'not printed'],
      ['API writes/min at rest', 'not measured (operator-scale.ts takes one sample)'],
    ],
    met: r.done === r.total && r.deployments === r.total && r.seconds! <= 30 ? undefined : false,
    notes: [
      '“Ready” here is what operator-scale.ts checks: status.observedGeneration equals metadata.generation and the IdentityValid condition is True (there is no kubelet in the test control plane, so Deployments never get ready Pods).',
      'The at-rest write rate needs a second sample of the operator’s api_writes_total a minute later; operator-scale.ts does not take it, so that half of the target is not judged.',
    ],
  };
}
