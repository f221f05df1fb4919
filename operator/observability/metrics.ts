// Prometheus metrics of our own: counters, gauges and histograms, with labels, in the text exposition
// format 0.0.4, plus the process and Node.js figures a dashboard expects.
//
// Why not prom-client: it costs 2.1 MiB RSS per process just to import and set up its default metrics
// (measured as an esbuild bundle, Node 24, the image's environment; issue 16, bench P3a and P4i), because
// it loads node:cluster, child_process, dgram, perf_hooks, v8, zlib and @opentelemetry/api for features
// neither role uses (aggregation across cluster workers, a push gateway, exemplars, event-loop and GC
// histograms). What we need fits here. The API is the subset of prom-client's the code used (`inc`,
// `set`, `observe`, `startTimer`, `collect`, `get`), so metric names, types and the /metrics text stay
// what they were; the default metrics keep prom-client's names, without the event-loop-lag and GC series.

type LabelValues<L extends string> = Partial<Record<L, string | number>>;
type MetricType = 'counter' | 'gauge' | 'histogram';

export interface MetricValue<L extends string = string> {
  labels: LabelValues<L>;
  value: number;
  metricName?: string;
}

export interface MetricSnapshot<L extends string = string> {
  name: string;
  help: string;
  type: MetricType;
  values: MetricValue<L>[];
}

interface Metric {
  readonly name: string;
  get(): Promise<MetricSnapshot>;
}

export class Registry {
  readonly contentType = 'text/plain; version=0.0.4; charset=utf-8';
  private readonly metricsByName = new Map<string, Metric>();

  registerMetric(metric: Metric): void {
    if (this.metricsByName.has(metric.name))
      throw new Error(`A metric with the name ${metric.name} has already been registered.`);
    this.metricsByName.set(metric.name, metric);
  }

  /** The exposition text of every metric, in registration order. */
  async metrics(): Promise<string> {
    const parts: string[] = [];
    for (const metric of this.metricsByName.values()) parts.push(exposition(await metric.get()));
    return parts.join('\n\n') + '\n';
  }
}

const escapeHelp = (s: string) => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
const escapeLabel = (s: string) => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

function formatNumber(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function labelText(labels: Record<string, string | number | undefined>): string {
  const pairs = Object.entries(labels)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}="${escapeLabel(String(v))}"`);
  return pairs.length ? `{${pairs.join(',')}}` : '';
}

function exposition(m: MetricSnapshot): string {
  const lines = [`# HELP ${m.name} ${escapeHelp(m.help)}`, `# TYPE ${m.name} ${m.type}`];
  for (const v of m.values)
    lines.push(`${v.metricName ?? m.name}${labelText(v.labels)} ${formatNumber(v.value)}`);
  return lines.join('\n');
}

export interface MetricOptions<L extends string> {
  name: string;
  help: string;
  labelNames?: readonly L[];
  registers?: Registry[];
}

/** Label sets are kept by a key of their values in labelNames order. */
abstract class LabelledMetric<L extends string, S> implements Metric {
  readonly name: string;
  readonly help: string;
  protected readonly labelNames: readonly L[];
  protected series = new Map<string, { labels: LabelValues<L>; state: S }>();

  constructor(opts: MetricOptions<L>) {
    this.name = opts.name;
    this.help = opts.help;
    this.labelNames = opts.labelNames ?? [];
    for (const registry of opts.registers ?? []) registry.registerMetric(this);
  }

  protected abstract fresh(): S;
  abstract get(): Promise<MetricSnapshot<L>>;

  protected seriesFor(labels: LabelValues<L> = {}): S {
    for (const name of Object.keys(labels))
      if (!this.labelNames.includes(name as L))
        throw new Error(
          `Added label "${name}" is not included in initial labelset: ${this.labelNames.join(', ')}`,
        );
    const key = this.labelNames.map((n) => String(labels[n] ?? '')).join('\u0000');
    let entry = this.series.get(key);
    if (!entry) this.series.set(key, (entry = { labels: { ...labels }, state: this.fresh() }));
    return entry.state;
  }

  reset(): void {
    this.series.clear();
  }
}

/** (labels?, n?) or (n?): prom-client's overloads. */
function splitArgs<L extends string>(
  a?: LabelValues<L> | number,
  b?: number,
): [LabelValues<L>, number | undefined] {
  return typeof a === 'object' ? [a, b] : [{}, a];
}

export class Counter<L extends string = string> extends LabelledMetric<L, { value: number }> {
  constructor(opts: MetricOptions<L>) {
    super(opts);
    if (this.labelNames.length === 0) this.seriesFor();
  }
  protected fresh() {
    return { value: 0 };
  }
  inc(labels?: LabelValues<L> | number, n?: number): void {
    const [l, by = 1] = splitArgs(labels, n);
    if (!(by >= 0)) throw new Error(`Counter ${this.name} can only go up, not by ${by}`);
    this.seriesFor(l).value += by;
  }
  async get(): Promise<MetricSnapshot<L>> {
    const values = [...this.series.values()].map((s) => ({ labels: s.labels, value: s.state.value }));
    return { name: this.name, help: this.help, type: 'counter', values };
  }
}

export interface GaugeOptions<L extends string> extends MetricOptions<L> {
  /** Called on every scrape to set the gauge from its source. */
  collect?: (this: Gauge<L>) => void | Promise<void>;
}

export class Gauge<L extends string = string> extends LabelledMetric<L, { value: number }> {
  private readonly collector: GaugeOptions<L>['collect'];
  constructor(opts: GaugeOptions<L>) {
    super(opts);
    this.collector = opts.collect;
    if (this.labelNames.length === 0) this.seriesFor();
  }
  protected fresh() {
    return { value: 0 };
  }
  set(labels: LabelValues<L> | number, value?: number): void {
    const [l, v] = splitArgs(labels, value);
    this.seriesFor(l).value = v ?? 0;
  }
  inc(labels?: LabelValues<L> | number, n?: number): void {
    const [l, by = 1] = splitArgs(labels, n);
    this.seriesFor(l).value += by;
  }
  dec(labels?: LabelValues<L> | number, n?: number): void {
    const [l, by = 1] = splitArgs(labels, n);
    this.seriesFor(l).value -= by;
  }
  async get(): Promise<MetricSnapshot<L>> {
    await this.collector?.call(this);
    const values = [...this.series.values()].map((s) => ({ labels: s.labels, value: s.state.value }));
    return { name: this.name, help: this.help, type: 'gauge', values };
  }
}

export interface HistogramOptions<L extends string> extends MetricOptions<L> {
  buckets: readonly number[];
}

export class Histogram<L extends string = string> extends LabelledMetric<
  L,
  { counts: number[]; sum: number; count: number }
> {
  private readonly buckets: readonly number[];
  constructor(opts: HistogramOptions<L>) {
    super(opts);
    this.buckets = [...opts.buckets].sort((a, b) => a - b);
    if (this.labelNames.length === 0) this.seriesFor();
  }
  protected fresh() {
    return { counts: this.buckets.map(() => 0), sum: 0, count: 0 };
  }
  observe(labels: LabelValues<L> | number, value?: number): void {
    const [l, v = 0] = splitArgs(labels, value);
    const s = this.seriesFor(l);
    const i = this.buckets.findIndex((le) => v <= le);
    if (i >= 0) s.counts[i]!++;
    s.sum += v;
    s.count++;
  }
  /** Starts a timer; calling the result observes the seconds passed (and returns them). */
  startTimer(labels: LabelValues<L> = {}): () => number {
    const start = process.hrtime.bigint();
    return () => {
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      this.observe(labels, seconds);
      return seconds;
    };
  }
  async get(): Promise<MetricSnapshot<L>> {
    const values: MetricValue<L>[] = [];
    for (const { labels, state } of this.series.values()) {
      let cumulative = 0;
      this.buckets.forEach((le, i) => {
        cumulative += state.counts[i]!;
        values.push({
          labels: { ...labels, le } as LabelValues<L>,
          value: cumulative,
          metricName: `${this.name}_bucket`,
        });
      });
      values.push({
        labels: { ...labels, le: '+Inf' } as LabelValues<L>,
        value: state.count,
        metricName: `${this.name}_bucket`,
      });
      values.push({ labels, value: state.sum, metricName: `${this.name}_sum` });
      values.push({ labels, value: state.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: 'histogram', values };
  }
}
