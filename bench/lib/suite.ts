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
