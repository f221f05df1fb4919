// The watcher container's memory settings. Without a limit a pod can grow until the node evicts it, and
// without heap flags V8 sizes its heap for the node's memory, not the container's: a watcher tracking many
// requests then grows past its limit before V8 collects (OOM kill), or holds garbage it never needed to.
// So when the user sets no resources the operator sets measured defaults, and whenever a memory limit is
// known it derives NODE_OPTIONS from it: a small young generation (as the image does) and an old-space
// cap that leaves room for what is not V8 heap (code, the node binary, buffers).
import type { V1EnvVar, V1ResourceRequirements } from '@kubernetes/client-node';

/**
 * Defaults sized from bench P3 (docs/benchmarks.md): with the image's settings the watcher idles near
 * 70 MiB RSS and peaks near 110 MiB tracking 10,000 requests; the limit leaves room for bursts above that.
 */
export const DEFAULT_WATCHER_RESOURCES: V1ResourceRequirements = {
  requests: { cpu: '25m', memory: '128Mi' },
  limits: { memory: '256Mi' },
};

/** Memory that is not V8's old space: young generation, code, the node binary's pages, buffers. */
const NON_HEAP_MIB = 96;
const MIN_OLD_SPACE_MIB = 48;

const SUFFIX: Record<string, number> = {
  '': 1,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** A Kubernetes quantity ("256Mi", "1G", "0.5Gi", "1e9") in bytes; undefined if it is not one. */
export function quantityBytes(q: string | number | undefined): number | undefined {
  if (q === undefined) return undefined;
  if (typeof q === 'number') return q;
  const m = /^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|[mkMGTPE])?$/.exec(q.trim());
  if (!m) return undefined;
  return Number(m[1]) * SUFFIX[m[2] ?? '']!;
}

/** The NODE_OPTIONS for a container memory limit (bytes). */
export function heapFlags(limitBytes: number): string {
  const limitMiB = Math.floor(limitBytes / 2 ** 20);
  // 256Mi -> 144, 512Mi -> 336, 1Gi -> 720: at least NON_HEAP_MIB and a quarter of the limit stay free.
  const oldSpace = Math.max(
    MIN_OLD_SPACE_MIB,
    Math.min(Math.floor(limitMiB * 0.75) - NON_HEAP_MIB / 2, limitMiB - NON_HEAP_MIB),
  );
  return `--max-semi-space-size=1 --max-old-space-size=${oldSpace}`;
}

/** The container's resources (the user's, else the defaults) and the env that sizes V8 for them. */
export function watcherResources(user: V1ResourceRequirements | undefined): {
  resources: V1ResourceRequirements;
  env: V1EnvVar[];
} {
  const resources = user ?? DEFAULT_WATCHER_RESOURCES;
  const limit = quantityBytes(resources.limits?.memory as string | undefined);
  return { resources, env: limit ? [{ name: 'NODE_OPTIONS', value: heapFlags(limit) }] : [] };
}
