/**
 * One number format in the CLI (issue 11): counts in progress lines, tables and messages all go
 * through `src/cli/format.ts`. The second test keeps it that way: no other file in src/cli formats
 * a number by itself.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatCount, formatRate } from '../../src/cli/format.js';

describe('formatCount / formatRate', () => {
  it('groups thousands the same way on every machine, rounds, and marks unknown values', () => {
    expect([formatCount(0), formatCount(999), formatCount(1000), formatCount(1_234_567), formatCount(2.5), formatCount(-1200)]).toEqual(['0', '999', '1,000', '1,234,567', '3', '-1,200']);
    expect([formatCount(null), formatCount(undefined), formatCount(Number.NaN)]).toEqual(['-', '-', '-']);
    expect([formatRate(14), formatRate(13.33), formatRate(0.583), formatRate(1688.4)]).toEqual(['14/s', '13.3/s', '0.58/s', '1,688/s']);
  });

  it('no file in src/cli formats numbers on its own', () => {
    const dir = join(import.meta.dirname, '..', '..', 'src', 'cli');
    const files = (function walk(d: string): string[] {
      return readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : e.name.endsWith('.ts') ? [join(d, e.name)] : []));
    })(dir);
    const offenders = files.filter((f) => !f.endsWith('format.ts') && /toLocaleString|Intl\.NumberFormat/.test(readFileSync(f, 'utf8')));
    expect(offenders).toEqual([]);
  });
});
