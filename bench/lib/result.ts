// What a scenario reports, and the options every scenario takes.

export interface ScenarioOptions {
  /** Multiplies request counts (BENCH_SCALE; 1 = the sizes issue 8 fixes). Durations that the issue fixes stay. */
  scale: number;
  /** Progress lines to stderr. */
  log: (text: string) => void;
}

export interface ScenarioResult {
  id: string;
  title: string;
  /** Figure name → value, in display order. */
  figures: [string, string][];
  target: string;
  /** The figures to put in the summary table (default: the first figure). */
  headline?: string;
  /** undefined when the target could not be judged (not measured). */
  met: boolean | undefined;
  /** What limits the figure, caveats, how it was measured. */
  notes: string[];
}

export type Scenario = (opts: ScenarioOptions) => Promise<ScenarioResult>;

export function scaled(n: number, opts: ScenarioOptions): number {
  return Math.max(1, Math.round(n * opts.scale));
}
