// The harness has no kubelet, so a Helm hook Job would never finish and `helm upgrade` would wait forever.
// This plays the kubelet for such Jobs: it runs the Job's container command locally (the repository stands
// in for the image's /app: same package.json dependencies) as the Job's ServiceAccount, with its ConfigMap
// volumes materialised as files, then writes the Job status Helm waits for. The code and the RBAC under test
// are the chart's own; only the process runs here instead of in a pod.
import {
  BatchV1Api,
  CoreV1Api,
  PatchStrategy,
  setHeaderOptions,
  type V1Job,
  type V1JobCondition,
} from '@kubernetes/client-node';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadTestKubeConfig, runToolAsync, serviceAccountKubeconfig } from './harness.js';

export interface HookJobRun {
  name: string;
  status: number;
  output: string;
}

/** Runs one Job's single container to completion and records the outcome in the Job's status. */
export async function runJobLikeKubelet(job: V1Job, cwd: string): Promise<HookJobRun> {
  const kc = loadTestKubeConfig();
  const core = kc.makeApiClient(CoreV1Api);
  const batch = kc.makeApiClient(BatchV1Api);
  const namespace = job.metadata!.namespace!;
  const name = job.metadata!.name!;
  const pod = job.spec!.template.spec!;
  const container = pod.containers[0]!;
  const work = mkdtempSync(path.join(os.tmpdir(), 'tpm-job-'));
  try {
    // ConfigMap volumes -> local directories; env values under a mount path are rewritten to match.
    const mounts = new Map<string, string>();
    for (const mount of container.volumeMounts ?? []) {
      const volume = pod.volumes?.find((v) => v.name === mount.name);
      if (!volume?.configMap) throw new Error(`Job ${name}: only ConfigMap volumes are supported`);
      const cm = await core.readNamespacedConfigMap({ namespace, name: volume.configMap.name! });
      const dir = path.join(work, mount.name);
      mkdirSync(dir);
      for (const [key, value] of Object.entries(cm.data ?? {})) writeFileSync(path.join(dir, key), value);
      mounts.set(mount.mountPath, dir);
    }
    const localPath = (value: string): string => {
      for (const [mountPath, dir] of mounts) {
        if (value.startsWith(`${mountPath}/`)) return path.join(dir, value.slice(mountPath.length + 1));
      }
      return value;
    };
    const env: Record<string, string> = {};
    for (const e of container.env ?? []) env[e.name] = localPath(e.value ?? '');
    const kubeconfig = await serviceAccountKubeconfig(namespace, pod.serviceAccountName ?? 'default');
    const [command, ...args] = [...(container.command ?? []), ...(container.args ?? [])];
    if (command !== 'node') throw new Error(`Job ${name}: only node commands can run here, got ${command}`);
    const startTime = new Date();
    const res = spawnSync(process.execPath, args, {
      cwd,
      encoding: 'utf8',
      timeout: 60_000,
      env: { PATH: process.env.PATH ?? '', HOME: work, KUBECONFIG: kubeconfig, ...env },
    });
    rmSync(path.dirname(kubeconfig), { recursive: true, force: true });
    const status = res.status ?? -1;
    const now = new Date();
    const condition = (type: string, reason: string): V1JobCondition => ({
      type,
      status: 'True',
      reason,
      message: reason,
      lastProbeTime: now,
      lastTransitionTime: now,
    });
    const jobStatus =
      status === 0
        ? {
            startTime,
            completionTime: now,
            succeeded: 1,
            conditions: [
              condition('SuccessCriteriaMet', 'CompletionsReached'),
              condition('Complete', 'CompletionsReached'),
            ],
          }
        : {
            startTime,
            failed: 1,
            conditions: [
              condition('FailureTarget', 'BackoffLimitExceeded'),
              condition('Failed', 'BackoffLimitExceeded'),
            ],
          };
    await batch.patchNamespacedJobStatus(
      { namespace, name, body: { status: jobStatus } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    return { name, status, output: `${res.stdout ?? ''}${res.stderr ?? ''}` };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * Runs helm (e.g. `upgrade`) while executing, like a kubelet would, every hook Job that appears in the
 * namespace. Returns helm's stdout and the Jobs that ran; throws with helm's and the Jobs' output on failure.
 */
export async function helmRunningHookJobs(
  args: string[],
  opts: { namespace: string; env: Record<string, string>; cwd: string },
): Promise<{ stdout: string; jobs: HookJobRun[] }> {
  const batch = loadTestKubeConfig().makeApiClient(BatchV1Api);
  let finished = false;
  const helm = runToolAsync('helm', args, { env: opts.env }).finally(() => (finished = true));
  const jobs: HookJobRun[] = [];
  const seen = new Set<string>();
  while (!finished) {
    const list = await batch.listNamespacedJob({ namespace: opts.namespace });
    for (const job of list.items) {
      const uid = job.metadata!.uid!;
      if (seen.has(uid) || job.status?.conditions?.length) continue;
      seen.add(uid);
      jobs.push(await runJobLikeKubelet(job, opts.cwd));
    }
    await sleep(100);
  }
  const res = await helm;
  if (res.status !== 0) {
    const jobOutput = jobs.map((j) => `--- Job ${j.name} (exit ${j.status}):\n${j.output}`).join('\n');
    throw new Error(
      `helm ${args.join(' ')} failed (${res.status}):\n${res.stdout}${res.stderr}\n${jobOutput}`,
    );
  }
  return { stdout: res.stdout, jobs };
}
