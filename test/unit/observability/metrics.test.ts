// Our metrics registry against prom-client (a dev dependency kept for this comparison): the same calls must
// give the same /metrics text, so dashboards and alerts written for the prom-client days keep working.
import * as prom from 'prom-client';
import { Counter, Gauge, Histogram, Registry } from '../../../operator/observability/metrics.js';
import { registerProcessMetrics } from '../../../operator/observability/process-metrics.js';

type Impl = {
  Registry: new () => { metrics(): Promise<string> };
  Counter: typeof Counter;
  Gauge: typeof Gauge;
  Histogram: typeof Histogram;
};
const ours = { Registry, Counter, Gauge, Histogram } as unknown as Impl;
const theirs = prom as unknown as Impl;

/** The same series of calls on either implementation. */
async function exercise(impl: Impl): Promise<string> {
  const registry = new impl.Registry() as Registry;
  const registers = [registry];
  const posts = new impl.Counter({
    name: 'x_posts_total',
    help: 'Posts by "result".',
    labelNames: ['result'],
    registers,
  });
  posts.inc({ result: 'created' });
  posts.inc({ result: 'created' }, 2);
  posts.inc({ result: 'odd "quoted" \\ and\nnewline' });
  new impl.Counter({
    name: 'x_requeues_total',
    help: 'Help with a \\ backslash\nand a newline.',
    registers,
  }).inc();
  new impl.Counter({ name: 'x_unused_total', help: 'Never counted.', registers });
  new impl.Counter({
    name: 'x_unused_labelled_total',
    help: 'Never counted.',
    labelNames: ['kind'],
    registers,
  });
  const depth = new impl.Gauge({ name: 'x_depth', help: 'Depth.', registers });
  depth.set(5);
  depth.inc();
  depth.dec(3);
  let objects: Record<string, number> = { Deployment: 2, Secret: 1 };
  new impl.Gauge({
    name: 'x_objects',
    help: 'Objects by kind, set on scrape.',
    labelNames: ['kind'],
    registers,
    collect(this: Gauge<'kind'>) {
      this.reset();
      for (const [kind, n] of Object.entries(objects)) this.set({ kind }, n);
    },
  });
  const latency = new impl.Histogram({
    name: 'x_latency_seconds',
    help: 'Latency.',
    buckets: [0.05, 0.1, 0.5, 1],
    registers,
  });
  for (const v of [0.01, 0.05, 0.3, 0.7, 3]) latency.observe(v);
  new impl.Histogram({ name: 'x_empty_seconds', help: 'Nothing observed.', buckets: [1, 2], registers });
  await registry.metrics();
  objects = { ConfigMap: 4 };
  return registry.metrics();
}

describe('metrics registry', () => {
  it('writes the same exposition text as prom-client for the same calls', async () => {
    const text = await exercise(ours);
    expect(text).toBe(await exercise(theirs));
    expect(text).toContain('x_posts_total{result="odd \\"quoted\\" \\\\ and\\nnewline"} 1');
    expect(text).toContain('x_objects{kind="ConfigMap"} 4');
    expect(text).not.toContain('kind="Deployment"');
    expect(text).toContain('x_latency_seconds_bucket{le="0.5"} 3');
  });

  it('reports values with their labels through get(), as the tests and the bench read them', async () => {
    const registry = new Registry();
    const events = new Counter({
      name: 'y_events_total',
      help: 'e',
      labelNames: ['type'],
      registers: [registry],
    });
    events.inc({ type: 'INIT' });
    events.inc({ type: 'PUT' }, 3);
    expect(await events.get()).toMatchObject({
      type: 'counter',
      values: [
        { labels: { type: 'INIT' }, value: 1 },
        { labels: { type: 'PUT' }, value: 3 },
      ],
    });
  });

  it('refuses a label it was not told about, a counter going down and a name registered twice', () => {
    const registry = new Registry();
    const c = new Counter({ name: 'z_total', help: 'z', labelNames: ['result'], registers: [registry] });
    expect(() => c.inc({ reason: 'x' } as never)).toThrow(/label "reason" is not included/);
    expect(() => c.inc({ result: 'x' }, -1)).toThrow(/can only go up/);
    expect(() => new Counter({ name: 'z_total', help: 'again', registers: [registry] })).toThrow(
      /already been registered/,
    );
  });

  it('writes NaN, +Inf and -Inf as Prometheus reads them', async () => {
    const registry = new Registry();
    const g = new Gauge({ name: 'w', help: 'w', labelNames: ['v'], registers: [registry] });
    g.set({ v: 'nan' }, NaN);
    g.set({ v: 'inf' }, Infinity);
    g.set({ v: 'neg' }, -Infinity);
    const text = await registry.metrics();
    expect(text).toContain('w{v="nan"} NaN');
    expect(text).toContain('w{v="inf"} +Inf');
    expect(text).toContain('w{v="neg"} -Inf');
  });

  it("keeps prom-client's default metric names that the bench and dashboards read", async () => {
    const registry = new Registry();
    registerProcessMetrics(registry, 'p_');
    const text = await registry.metrics();
    const ours = new Set([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => `${m[1]} ${m[2]}`));
    const reference = new prom.Registry();
    prom.collectDefaultMetrics({ register: reference, prefix: 'p_' });
    const theirs = new Set(
      [...(await reference.metrics()).matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => `${m[1]} ${m[2]}`),
    );
    const leftOut = [...theirs].filter((t) => !ours.has(t));
    // Left out on purpose (operator/observability/process-metrics.ts): event-loop lag, GC, heap spaces, handles.
    expect(leftOut.every((t) => /eventloop|_gc_|heap_space|active_handles|active_requests/.test(t))).toBe(
      true,
    );
    expect([...ours].filter((t) => !theirs.has(t))).toEqual([]);
    const rss = Number(/^p_process_resident_memory_bytes (\d+)$/m.exec(text)?.[1]);
    expect(rss).toBeGreaterThan(10 * 1024 * 1024);
    expect(Number(/^p_nodejs_heap_size_used_bytes (\d+)$/m.exec(text)?.[1])).toBeGreaterThan(0);
    expect(Number(/^p_process_open_fds (\d+)$/m.exec(text)?.[1])).toBeGreaterThan(2);
  });
});
