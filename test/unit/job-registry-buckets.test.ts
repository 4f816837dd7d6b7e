import { describe, expect, it } from 'vitest';
import { epochMinute } from '../../src/core/fire-time.js';
import { JobRegistry } from '../../src/core/job-registry.js';
import type { UserRecord } from '../../src/core/types.js';

// Minute buckets with lazy removal (src/core/minute-buckets.ts, issue 17 second round).

const ms = (iso: string): number => Date.parse(iso);
const FROM = ms('2026-01-05T06:00:00Z'); // Monday
const NINE = epochMinute(ms('2026-01-05T09:00:00Z'));

function user(id: string, times: string[]): UserRecord {
  return { id, email: `${id}@example.test`, name: undefined, timezone: 'UTC', times, days: undefined };
}

/** Exposes the job rows' raw storage: the property under test is which rows an operation writes. */
class Inspected extends JobRegistry {
  rowsSnapshot(): Int32Array {
    return this.jobs.data.slice(0, this.jobs.top * this.jobs.stride);
  }
  get stride(): number {
    return this.jobs.stride;
  }
}

describe('JobRegistry buckets: lazy removal', () => {
  it('a cancel writes only the cancelled user\u2019s own job rows, not its bucket neighbours\u2019', () => {
    // This is what keeps a cancel flat with size: at a million jobs every other row written is a
    // cache miss (a linked bucket wrote both neighbours of each removed job).
    const r = new Inspected();
    for (let i = 0; i < 50; i++) r.upsertUser(user(`u${i}`, ['09:00', '21:00']), FROM);
    const own = new Set(r.jobsOf('u25').map((j) => j.row));
    const before = r.rowsSnapshot();
    expect(r.cancelUser('u25')).toBe(2);
    const after = r.rowsSnapshot();
    const changedRows = new Set<number>();
    for (let i = 0; i < before.length; i++) if (before[i] !== after[i]) changedRows.add(Math.floor(i / r.stride));
    expect(changedRows.size).toBeGreaterThan(0);
    expect([...changedRows].filter((row) => !own.has(row))).toEqual([]);
  });

  it('takeDue skips cancelled and moved jobs and keeps the order they were scheduled in', () => {
    const r = new JobRegistry();
    for (let i = 0; i < 10; i++) r.upsertUser(user(`u${i}`, ['09:00']), FROM);
    r.cancelUser('u3');
    r.upsertUser(user('u5', ['10:00']), FROM); // moved out of 09:00
    r.cancelUser('u7');
    r.upsertUser(user('u3', ['09:00']), FROM); // back in, at the end
    expect(r.bucketSizes()).toEqual([
      [NINE, 8],
      [NINE + 60, 1],
    ]);
    expect(r.takeDue(NINE).map((j) => j.userId)).toEqual(['u0', 'u1', 'u2', 'u4', 'u6', 'u8', 'u9', 'u3']);
    expect(r.takeDue(NINE)).toEqual([]);
    expect(r.size).toBe(9);
  });

  it('a bucket whose last job goes is dropped with its dead pairs, taken or not (a past minute, removed users)', () => {
    const r = new JobRegistry();
    for (let i = 0; i < 40; i++) r.upsertUser(user(`u${i}`, ['09:00', '21:00']), FROM);
    expect(r.bucketPairs).toBe(80);
    for (let i = 0; i < 40; i++) r.upsertUser(user(`u${i}`, ['21:00']), FROM); // nobody at 09:00 any more
    expect(r.bucketCount).toBe(1);
    expect(r.bucketPairs).toBeLessThanOrEqual(2 * 40);
    for (let i = 0; i < 40; i++) r.cancelUser(`u${i}`);
    expect(r.bucketCount).toBe(0);
    expect(r.bucketPairs).toBe(0);
    expect(r.nextFireMinute()).toBeUndefined();
  });

  it('a bucket that is never taken never holds more than twice its live jobs, and compacting is O(1) per removal', () => {
    const r = new JobRegistry();
    const users = 200;
    for (let i = 0; i < users; i++) r.upsertUser(user(`u${i}`, ['09:00']), FROM);
    const before = r.visits;
    const rounds = 5_000;
    // Churn in one bucket: cancel a user and schedule them again, as a sync does to a changed user.
    for (let k = 0; k < rounds; k++) {
      const id = `u${(k * 37) % users}`;
      r.cancelUser(id);
      r.upsertUser(user(id, ['09:00']), FROM);
      expect(r.bucketPairs).toBeLessThanOrEqual(2 * users + 1);
    }
    // One cancel + one add of a one-slot user costs 11 visits without compaction; compaction adds
    // fewer than two per removal, amortized.
    const perRound = (r.visits - before) / rounds;
    expect(perRound).toBeLessThan(11 + 2);
    expect(r.takeDue(NINE)).toHaveLength(users);
  });
});
