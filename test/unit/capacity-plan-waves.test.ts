/**
 * Local-time broadcasts in the capacity plan (core/capacity-plan.ts): waves added to the
 * scheduled curve, and the minutes where a wave plus the scheduled sends are more than the rate
 * sends in that minute. Expected figures are worked out from the rates by hand.
 */
import { describe, expect, it } from 'vitest';
import { addWaves, minuteCapacity, planFromCounts, waveCollisions, type PlannedWave } from '../../src/core/capacity-plan.js';

const FROM = Date.parse('2027-01-15T00:00:00Z');

function scheduled(minutes: number, at: Record<number, number>): Int32Array {
  const c = new Int32Array(minutes);
  for (const [i, n] of Object.entries(at)) c[Number(i)] = n;
  return c;
}

describe('addWaves', () => {
  it('adds each wave at its minutes and keeps the broadcasts’ share apart; minutes outside the plan are ignored', () => {
    const waves: PlannedWave[] = [
      { id: 'b1', minutes: [{ index: 2, users: 5, zones: ['Asia/Kolkata'] }, { index: 9, users: 1, zones: ['UTC'] }] },
      { id: 'b2', minutes: [{ index: 2, users: 3, zones: ['Asia/Kolkata'] }] },
    ];
    const s = scheduled(5, { 1: 4, 2: 10 });
    const { counts, broadcast } = addWaves(s, waves);
    expect([...counts]).toEqual([0, 4, 18, 0, 0]);
    expect([...broadcast]).toEqual([0, 0, 8, 0, 0]);
    expect([...s]).toEqual([0, 4, 10, 0, 0]); // the scheduled counts are left as they were
  });
});

describe('waveCollisions', () => {
  const rate = { perSecond: 10 }; // 600 a minute

  it('warns where the wave plus the scheduled sends exceed the minute, with the drain of everything', () => {
    const waves: PlannedWave[] = [
      { id: 'b1', minutes: [{ index: 5, users: 200, zones: ['Asia/Kolkata'] }, { index: 20, users: 100, zones: ['Europe/Berlin'] }] },
    ];
    const { counts, broadcast } = addWaves(scheduled(60, { 5: 500, 20: 100 }), waves);
    const plan = planFromCounts(counts, FROM, rate, 0, 5, broadcast);
    const found = waveCollisions(plan, waves, rate);
    // Minute 5: 500 + 200 = 700 at 10/s: 70 s. Minute 20: 200, out in 20 s: no warning.
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ index: 5, minuteMs: FROM + 5 * 60_000, scheduled: 500, broadcast: 200, minuteCapacity: 600, waves: [{ id: 'b1', users: 200, zones: ['Asia/Kolkata'] }] });
    expect(found[0]?.drain.drainSeconds).toBeCloseTo(70, 5);
  });

  it('counts what earlier minutes left queued, and names every wave of the minute', () => {
    // Minute 9: 1,000 scheduled take 100 s, so 400 are still queued at minute 10; 150 + 100 more
    // make 650 in minute 10: 65 s. Exactly 600 (minute 30) is not a collision.
    const waves: PlannedWave[] = [
      { id: 'b1', minutes: [{ index: 10, users: 150, zones: ['Asia/Kathmandu'] }, { index: 30, users: 300, zones: ['UTC'] }] },
      { id: 'b2', minutes: [{ index: 10, users: 100, zones: ['Asia/Kathmandu', 'Asia/Kolkata'] }] },
    ];
    const { counts, broadcast } = addWaves(scheduled(60, { 9: 1000, 30: 300 }), waves);
    const found = waveCollisions(planFromCounts(counts, FROM, rate, 0, 5, broadcast), waves, rate);
    expect(found.map((c) => [c.index, c.scheduled, c.broadcast, Math.round(c.drain.backlogAtStart), c.waves.map((w) => w.id)])).toEqual([[10, 0, 250, 400, ['b1', 'b2']]]);
    expect(found[0]?.drain.drainSeconds).toBeCloseTo(65, 5);
  });

  it('a per-minute window is the minute’s capacity; no window at all means no collision', () => {
    expect(minuteCapacity({ perSecond: 14 })).toBe(840);
    expect(minuteCapacity({ perSecond: 14, perMinute: 500 })).toBe(500);
    expect(minuteCapacity({ perDay: 50_000 })).toBe(Infinity);
    const waves: PlannedWave[] = [{ id: 'b1', minutes: [{ index: 0, users: 90, zones: ['UTC'] }] }];
    const { counts, broadcast } = addWaves(scheduled(10, { 0: 20 }), waves);
    expect(waveCollisions(planFromCounts(counts, FROM, { perMinute: 100 }, 0, 5, broadcast), waves, { perMinute: 100 })).toHaveLength(1);
    expect(waveCollisions(planFromCounts(counts, FROM, {}, 0, 5, broadcast), waves, {})).toEqual([]);
  });

  it('a plan without local-time broadcasts has no broadcast share and no collisions', () => {
    const plan = planFromCounts(scheduled(10, { 0: 5000 }), FROM, rate, 0, 5);
    expect('broadcast' in plan).toBe(false);
    expect(waveCollisions(plan, [], rate)).toEqual([]);
  });
});
