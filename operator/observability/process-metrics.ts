// The process and Node.js metrics both roles expose, read at scrape time, under prom-client's names (so
// existing dashboards keep working): CPU, start time, memory, file descriptors, V8 heap, active resources,
// Node version. Left out, and why: the event-loop-lag and GC-duration histograms need perf_hooks'
// monitors running all the time (a timer and an observer in an otherwise idle process).
import { readFileSync, readdirSync } from 'node:fs';
import type { MetricSnapshot, MetricValue, Registry } from './metrics.js';

type Read = () => MetricValue[];
/** name (after the prefix), help, type, and how to read it. */
type Row = [string, string, 'counter' | 'gauge', Read];

/** Metrics whose values are read from the process on every scrape. */
function registerRows(registry: Registry, prefix: string, rows: Row[]): void {
  for (const [suffix, help, type, read] of rows) {
    const name = prefix + suffix;
    registry.registerMetric({
      name,
      get: async (): Promise<MetricSnapshot> => ({ name, help, type, values: read() }),
    });
  }
}

const one = (value: number): MetricValue[] => [{ labels: {}, value }];

/** Fields of /proc/self/status in bytes (Linux; empty elsewhere). */
function procStatus(): Record<string, number> {
  try {
    const out: Record<string, number> = {};
    for (const m of readFileSync('/proc/self/status', 'utf8').matchAll(/^(\w+):\s+(\d+) kB$/gm))
      out[m[1]!] = Number(m[2]) * 1024;
    return out;
  } catch {
    return {};
  }
}

function maxFds(): number {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

function openFds(): number {
  try {
    return readdirSync('/proc/self/fd').length - 1; // less the descriptor that reads the directory
  } catch {
    return NaN;
  }
}

function countByType(names: string[]): MetricValue[] {
  const counts = new Map<string, number>();
  for (const n of names) counts.set(n, (counts.get(n) ?? 0) + 1);
  return [...counts].map(([type, value]) => ({ labels: { type }, value }));
}

export function registerProcessMetrics(registry: Registry, prefix: string): void {
  const startSeconds = Math.round(Date.now() / 1000 - process.uptime());
  const cpu = (pick: (u: NodeJS.CpuUsage) => number) => () => one(pick(process.cpuUsage()) / 1e6);
  const status = (field: string) => () => one(procStatus()[field] ?? process.memoryUsage.rss());
  const memory = (pick: (m: NodeJS.MemoryUsage) => number) => () => one(pick(process.memoryUsage()));
  const resources = () => process.getActiveResourcesInfo();
  const [major, minor, patch] = process.versions.node.split('.').map(Number);
  const version = { version: process.version, major, minor, patch };
  registerRows(registry, prefix, [
    [
      'process_cpu_user_seconds_total',
      'Total user CPU time spent in seconds.',
      'counter',
      cpu((u) => u.user),
    ],
    [
      'process_cpu_system_seconds_total',
      'Total system CPU time spent in seconds.',
      'counter',
      cpu((u) => u.system),
    ],
    [
      'process_cpu_seconds_total',
      'Total user and system CPU time spent in seconds.',
      'counter',
      cpu((u) => u.user + u.system),
    ],
    [
      'process_start_time_seconds',
      'Start time of the process since unix epoch in seconds.',
      'gauge',
      () => one(startSeconds),
    ],
    ['process_resident_memory_bytes', 'Resident memory size in bytes.', 'gauge', status('VmRSS')],
    ['process_virtual_memory_bytes', 'Virtual memory size in bytes.', 'gauge', status('VmSize')],
    ['process_heap_bytes', 'Process heap size in bytes.', 'gauge', status('VmData')],
    ['process_open_fds', 'Number of open file descriptors.', 'gauge', () => one(openFds())],
    ['process_max_fds', 'Maximum number of open file descriptors.', 'gauge', () => one(maxFds())],
    [
      'nodejs_heap_size_total_bytes',
      'Process heap size from Node.js in bytes.',
      'gauge',
      memory((m) => m.heapTotal),
    ],
    [
      'nodejs_heap_size_used_bytes',
      'Process heap size used from Node.js in bytes.',
      'gauge',
      memory((m) => m.heapUsed),
    ],
    [
      'nodejs_external_memory_bytes',
      'Node.js external memory size in bytes.',
      'gauge',
      memory((m) => m.external),
    ],
    [
      'nodejs_active_resources',
      'Active resources keeping the event loop alive, by type.',
      'gauge',
      () => countByType(resources()),
    ],
    [
      'nodejs_active_resources_total',
      'Total number of active resources.',
      'gauge',
      () => one(resources().length),
    ],
    ['nodejs_version_info', 'Node.js version info.', 'gauge', () => [{ labels: version, value: 1 }]],
  ]);
}
