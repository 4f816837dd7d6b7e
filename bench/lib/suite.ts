/**
 * What a benchmark suite is: a module `bench/<name>.bench.ts` whose default export describes and
 * runs it. A suite measures and reports; it never asserts anything about speed (benchmarks are
 * not tests, issue 6).
 */

/** One measured cell, printed as a table row and stored in the JSON results. */
export type Row = Record<string, string | number | boolean | null>;

export interface SuiteContext {
  /** Prints one line, prefixed with the suite name. */
  log(line: string): void;
  /**
   * `BENCH_QUICK=1` or `--quick`: every count scaled down (about 1/10 to 1/100) so a suite can be
   * checked end to end in seconds while it is being written. Quick figures are not reported.
   */
  quick: boolean;
}

export interface SuiteResult {
  /** The configuration measured (counts, sizes, pool sizes, versions of the tools). */
  config: Record<string, unknown>;
  /** Measured figures, one row per cell. */
  rows: Row[];
  /** Ratios between rows measured in the same run. */
  comparisons: Row[];
  /** Anything a reader needs to interpret the figures. */
  notes: string[];
  /** Time series for the report's charts (e.g. messages per second over a run). */
  series?: Series[];
}

/** One line of a chart: `points` are [seconds since the start of the run, value]. */
export interface Series {
  /** File-name-safe id, unique within the suite (the chart is `bench/report/<suite>-<id>.svg`). */
  id: string;
  title: string;
  /** What the value is, e.g. "messages/s". */
  unit: string;
  /** A horizontal line drawn on the chart (the configured rate limit), if any. */
  limit?: number | null;
  points: Array<[number, number]>;
}

export interface Suite {
  /** One sentence: what is compared with what. */
  description: string;
  run(ctx: SuiteContext): Promise<SuiteResult>;
}

/** CPU time (user + system) of this process in milliseconds since `since`. */
export function cpuMsSince(since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1000;
}

/** Rounds for display and JSON: a benchmark figure needs no more than a digit or two of decimals. */
export function round(n: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
