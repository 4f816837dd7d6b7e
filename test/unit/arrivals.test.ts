/**
 * The figures the multi-daemon tests and the scale bench read from the arrivals at the server
 * (scripts/lib/arrivals.ts): a late read never makes a window look fuller than it certainly was,
 * a real excess always shows, and who got what.
 */
import { describe, expect, it } from 'vitest';
import type { Arrival } from '../../scripts/lib/arrival-capture.js';
import { achievedRate, countBetween, coverage, slidingMax } from '../../scripts/lib/arrivals.js';

/** `n` arrivals evenly spaced over [from, from + spanMs), read exactly when they arrived. */
function even(n: number, from: number, spanMs: number, rcpt = (i: number) => `u${i}`): Arrival[] {
  return Array.from({ length: n }, (_, i) => {
    const at = from + (i * spanMs) / n;
    return { at, lb: at, rcpt: rcpt(i) };
  });
}

describe('slidingMax', () => {
  it('counts exactly when every read is on time: 200 per second over 5 s is 200, one extra message in a second is 201', () => {
    const steady = even(1000, 0, 5000);
    expect(slidingMax(steady, 1000, 200)).toMatchObject({ certain: 200, recorded: 200, recordedAbove: 0 });
    const extra = [...steady, { at: 2500.5, lb: 2500.5, rcpt: 'x' }];
    expect(slidingMax(extra, 1000, 200).certain).toBe(201);
  });

  it('a late read (100 ms stall of the reader) inflates the recorded count but not the certain one', () => {
    // 200/s for 5 s; the 20 messages of [2000, 2100) are read together at 2100.
    const arrivals = even(1000, 0, 5000).map((a) => (a.at >= 2000 && a.at < 2100 ? { ...a, at: 2100, lb: 1999 } : a));
    const m = slidingMax(arrivals, 1000, 200);
    expect(m.recorded).toBeGreaterThan(200);
    expect(m.certain).toBeLessThanOrEqual(200);
    expect(m.maxUncertaintyMs).toBe(101);
  });

  it('a real burst shows even with uncertain reads: 300 in one second', () => {
    const arrivals = even(300, 1000, 1000).map((a) => ({ ...a, lb: a.at - 20 }));
    expect(slidingMax(arrivals, 1000, 200).certain).toBeGreaterThan(250);
  });
});

describe('achievedRate, coverage, countBetween', () => {
  it('achieved rate leaves the tail out; coverage finds missing, duplicated and unexpected recipients', () => {
    const arrivals = [...even(1000, 0, 5000), { at: 20_000, lb: 20_000, rcpt: 'late' }];
    const r = achievedRate(arrivals, 1);
    expect(r.perSecond).toBeCloseTo(200, 0);
    const counts = new Map([
      ['a', 1],
      ['b', 3],
      ['z', 1],
    ]);
    expect(coverage(counts, ['a', 'b', 'c'])).toEqual({ missing: ['c'], duplicates: 2, duplicated: 1, unexpected: 1 });
    expect(countBetween(arrivals, 0, 1000)).toBe(200);
  });
});
