/** One measured figure, next to the baseline it is judged against. */
export interface BenchRow {
  figure: string;
  value: number;
  baseline: number | null;
  /** value / baseline, when there is a baseline. */
  ratio: number | null;
  /** What the figure should reach, in words ("≥ 0.8 of raw", "≤ 10 ms"); "" when none. */
  goal: string;
  /** Whether the goal holds; null when the row has no goal. */
  holds: boolean | null;
}

/** A bench module: measures, returns its rows. */
export interface BenchModule {
  run(): Promise<BenchRow[]>;
}

/** Latency percentiles of a sorted sample, in ms. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[i]!;
}
