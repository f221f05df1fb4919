// Small measurement helpers shared by the scenarios: percentiles, process memory, waiting, load.
import { readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Nearest-rank percentile (p in 0..100) of unsorted samples; NaN when empty. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

export function summary(samples: readonly number[]): { p50: number; p99: number; max: number; n: number } {
  return {
    p50: percentile(samples, 50),
    p99: percentile(samples, 99),
    max: samples.length ? Math.max(...samples) : Number.NaN,
    n: samples.length,
  };
}

/** A field of /proc/<pid>/status in MiB (VmRSS: now, VmHWM: peak). */
export function procMiB(pid: number, field: 'VmRSS' | 'VmHWM' | 'RssAnon' | 'RssFile'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((r) => server.close(r));
  return port;
}

/** Polls `check` every `everyMs` until it is true; false when `timeoutMs` passed first. */
export async function waitFor(check: () => boolean, timeoutMs: number, everyMs = 20): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await sleep(everyMs);
  }
  return true;
}

/** Samples the 1-minute load average while a scenario runs. */
export class LoadSampler {
  private samples: number[] = [];
  private timer: NodeJS.Timeout;
  constructor(everyMs = 5_000) {
    this.samples.push(os.loadavg()[0]!);
    this.timer = setInterval(() => this.samples.push(os.loadavg()[0]!), everyMs);
    this.timer.unref();
  }
  stop(): { min: number; max: number; mean: number } {
    clearInterval(this.timer);
    this.samples.push(os.loadavg()[0]!);
    const s = this.samples;
    return {
      min: Math.min(...s),
      max: Math.max(...s),
      mean: s.reduce((a, b) => a + b, 0) / s.length,
    };
  }
}

export const ms = (v: number) => (Number.isFinite(v) ? `${v.toFixed(v < 10 ? 2 : 1)} ms` : 'n/a');
export const sec = (v: number) => (Number.isFinite(v) ? `${v.toFixed(2)} s` : 'n/a');
export const mib = (v: number) => (Number.isFinite(v) ? `${v.toFixed(1)} MiB` : 'n/a');

/** User + system CPU seconds a process has used so far (from /proc/<pid>/stat; clock ticks of 10 ms). */
export function procCpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/** This process's CPU seconds so far. */
export function selfCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** Unlabelled samples from a Prometheus text endpoint whose names match `pattern`. */
export async function scrape(url: string, pattern: RegExp): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  try {
    const text = await (await fetch(url)).text();
    for (const line of text.split('\n')) {
      const m = /^([a-zA-Z_:][\w:]*) (\S+)$/.exec(line);
      if (m && pattern.test(m[1]!)) out[m[1]!] = Number(m[2]);
    }
  } catch {
    // not reachable: no samples
  }
  return out;
}
