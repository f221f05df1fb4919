// The harness has no kubelet, so a Helm hook Job or test Pod would never finish and helm would wait forever.
// This plays the kubelet for them: it runs the container's `node` command locally (the repository stands in
// for the image's /app: same package.json dependencies) as the pod's ServiceAccount, with its ConfigMap
// volumes materialised as files, then writes the Job or Pod status Helm waits for. The code and the RBAC
// under test are the chart's own; only the process runs here instead of in a pod.
import {
  BatchV1Api,
  CoreV1Api,
  PatchStrategy,
  setHeaderOptions,
  type V1Job,
  type V1JobCondition,
  type V1PodSpec,
} from '@kubernetes/client-node';
import { spawn } from 'node:child_process';
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

/** How a test maps values of the pod's environment to this machine (e.g. a Service URL to a local server). */
export type EnvRewrite = (name: string, value: string) => string;

/**
 * Runs a pod spec's single `node` container locally, as the pod's ServiceAccount (a kubeconfig is provided
 * only when the pod mounts a token), with its ConfigMap volumes materialised as files.
 */
export async function runPodSpecLocally(
  namespace: string,
  pod: V1PodSpec,
  cwd: string,
  rewrite: EnvRewrite = (_name, value) => value,
): Promise<{ status: number; output: string }> {
  const core = loadTestKubeConfig().makeApiClient(CoreV1Api);
  const container = pod.containers[0]!;
  const work = mkdtempSync(path.join(os.tmpdir(), 'tpm-pod-'));
  try {
    // ConfigMap volumes -> local directories; env values under a mount path are rewritten to match.
    const mounts = new Map<string, string>();
    for (const mount of container.volumeMounts ?? []) {
      const volume = pod.volumes?.find((v) => v.name === mount.name);
      if (!volume?.configMap)
        throw new Error(`pod volume ${mount.name}: only ConfigMap volumes are supported`);
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
    const env: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: work };
    for (const e of container.env ?? []) env[e.name] = rewrite(e.name, localPath(e.value ?? ''));
    if (pod.automountServiceAccountToken !== false) {
      env.KUBECONFIG = await serviceAccountKubeconfig(namespace, pod.serviceAccountName ?? 'default');
    }
    const [command, ...args] = [...(container.command ?? []), ...(container.args ?? [])];
    if (command !== 'node') throw new Error(`only node commands can run here, got ${command}`);
    // Async: the command may talk to a server in this very process (a test's stand-in).
    const child = spawn(process.execPath, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (output += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (output += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const status = await new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)));
    clearTimeout(timer);
    if (env.KUBECONFIG) rmSync(path.dirname(env.KUBECONFIG), { recursive: true, force: true });
    return { status, output };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Runs one Job's single container to completion and records the outcome in the Job's status. */
export async function runJobLikeKubelet(job: V1Job, cwd: string): Promise<HookJobRun> {
  const batch = loadTestKubeConfig().makeApiClient(BatchV1Api);
  const namespace = job.metadata!.namespace!;
  const name = job.metadata!.name!;
  const startTime = new Date();
  const { status, output } = await runPodSpecLocally(namespace, job.spec!.template.spec!, cwd);
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
  return { name, status, output };
}

/**
 * `helm test`, running each test hook Pod like a kubelet: its command runs locally (env mapped by
 * `rewrite`), and its phase becomes Succeeded or Failed by the exit code. Returns helm's result (no throw).
 */
export async function helmTestRunningPods(
  args: string[],
  opts: { namespace: string; env: Record<string, string>; cwd: string; rewrite: EnvRewrite },
): Promise<{ status: number; stdout: string; stderr: string; pods: HookJobRun[] }> {
  const core = loadTestKubeConfig().makeApiClient(CoreV1Api);
  let finished = false;
  const helm = runToolAsync('helm', ['test', ...args], { env: opts.env }).finally(() => (finished = true));
  const pods: HookJobRun[] = [];
  const seen = new Set<string>();
  while (!finished) {
    const list = await core.listNamespacedPod({ namespace: opts.namespace });
    for (const pod of list.items) {
      const uid = pod.metadata!.uid!;
      if (seen.has(uid) || pod.metadata?.annotations?.['helm.sh/hook'] !== 'test') continue;
      seen.add(uid);
      const run = await runPodSpecLocally(opts.namespace, pod.spec!, opts.cwd, opts.rewrite);
      await core.patchNamespacedPodStatus(
        {
          namespace: opts.namespace,
          name: pod.metadata!.name!,
          body: { status: { phase: run.status === 0 ? 'Succeeded' : 'Failed' } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      pods.push({ name: pod.metadata!.name!, ...run });
    }
    await sleep(100);
  }
  return { ...(await helm), pods };
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
