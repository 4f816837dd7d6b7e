/** The capacity plan's pure parts: fire counting through the registry, peaks, and the drain model. */
import { describe, expect, it } from 'vitest';
import { buildPlan, countFires, drainModel, topMinutes } from '../../src/core/capacity-plan.js';
import { JobRegistry } from '../../src/core/job-registry.js';
import type { UserRecord } from '../../src/core/types.js';

const FROM = Date.parse('2027-03-27T22:00:00Z'); // Saturday; Europe/Berlin springs forward on the 28th at 01:00 UTC

function user(id: string, timezone: string, times: string[], days?: number[]): UserRecord {
  return { id, email: `${id}@example.test`, name: undefined, timezone, times, days };
}

describe('countFires', () => {
  it('counts every fire in the window, per minute, DST and weekdays included', () => {
    const r = new JobRegistry();
    r.upsertUser(user('a', 'UTC', ['22:30', '23:00']), FROM);
    r.upsertUser(user('b', 'Europe/Berlin', ['02:30']), FROM); // in the gap on the 28th: fires 03:00 CEST = 01:00 UTC
    r.upsertUser(user('c', 'UTC', ['23:00'], [1]), FROM); // Mondays only: not in this 26 h window
    const counts = countFires(r, FROM, 26 * 60);
    const at = (iso: string) => counts[(Date.parse(iso) - FROM) / 60_000];
    expect(at('2027-03-27T22:30:00Z')).toBe(1);
    expect(at('2027-03-27T23:00:00Z')).toBe(1);
    expect(at('2027-03-28T01:00:00Z')).toBe(1);
    expect(at('2027-03-28T22:30:00Z')).toBe(1);
    expect(at('2027-03-28T23:00:00Z')).toBe(1);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(5);
  });
});

describe('topMinutes', () => {
  it('busiest first, earlier first on ties, empty minutes never', () => {
    expect(topMinutes([0, 5, 2, 5, 0, 1], 3)).toEqual([1, 3, 2]);
    expect(topMinutes([0, 0], 3)).toEqual([]);
  });
});

describe('drainModel', () => {
  it('a burst drains at the per-second limit: 700 at 14/s takes 50 s', () => {
    const d = drainModel([700], { perSecond: 14 }).drain(0);
    expect(d.drainSeconds).toBeCloseTo(50, 5);
    expect(d.ratePerSecond).toBeCloseTo(14, 5);
    expect(d.backlogAtStart).toBe(0);
  });

  it('a minute that does not drain leaves a backlog for the next, which then drains later', () => {
    // 1,500 at 20/s take 75 s: 1,200 go in the first minute, 300 are left for the second, whose
    // own 100 wait behind them: (300 + 100) / 20 = 20 s into it.
    const m = drainModel([1500, 100], { perSecond: 20 });
    expect(m.drain(0).drainSeconds).toBeCloseTo(75, 5);
    const next = m.drain(1);
    expect(next.backlogAtStart).toBeCloseTo(300, 5);
    expect(next.drainSeconds).toBeCloseTo(20, 5);
  });

  it('per-minute windows release their budget at once, then wait for the refill', () => {
    const d = drainModel([250], { perMinute: 100 }).drain(0);
    // 100 at once, 100 at +60 s, 50 at +120 s.
    expect(d.drainSeconds).toBeCloseTo(120, 5);
  });

  it('a day window exhausted pushes the rest to the next day', () => {
    const counts = new Array<number>(60 * 24).fill(0);
    counts[0] = 150;
    const d = drainModel(counts, { perSecond: 50, perDay: 100 }).drain(0);
    expect(d.drainSeconds).toBeCloseTo(86_400 + 1, 5);
  });

  it('with the spread window, sends arrive over it and drain by its end when the rate allows', () => {
    // 10/s arrive, below 14/s: each goes as it arrives, the last at the end of the window.
    expect(drainModel([300], { perSecond: 14 }, 30).drain(0).drainSeconds).toBeCloseTo(30, 5);
    // 20/s arrive, above 14/s: the rate decides, as for a burst.
    expect(drainModel([600], { perSecond: 14 }, 30).drain(0).drainSeconds).toBeCloseTo(600 / 14, 5);
  });

  it('no window at all: unlimited, drains as fast as SMTP takes it', () => {
    const m = drainModel([1000], {});
    expect(m.unlimited).toBe(true);
    expect(m.drain(0).drainSeconds).toBe(0);
  });

  it('buildPlan: peaks with burst and spread drains', () => {
    const r = new JobRegistry();
    for (let i = 0; i < 100; i++) r.upsertUser(user(`u${i}`, 'UTC', ['22:05']), FROM);
    const plan = buildPlan(r, FROM, 60, { perSecond: 10 }, 20, 3);
    expect(plan.total).toBe(100);
    expect(plan.peaks).toHaveLength(1);
    expect(plan.peaks[0]).toMatchObject({ index: 5, minuteMs: FROM + 5 * 60_000 });
    expect(plan.peaks[0]?.burst.drainSeconds).toBeCloseTo(10, 5);
    // Spread over 20 s, 5/s arrive, under the 10/s limit: the last goes at the end of the window.
    expect(plan.peaks[0]?.spread.drainSeconds).toBeCloseTo(20, 5);

  });
});
