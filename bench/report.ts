/**
 * bench/REPORT.md, generated from the JSON results (placeholder until the generator lands).
 */
import { join } from 'node:path';

/** Writes the report from every `<suite>.json` in `resultsDir`; returns the report's path. */
export function writeReport(resultsDir: string): string {
  return join(resultsDir, '..', 'REPORT.md');
}
