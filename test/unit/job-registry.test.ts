import { describe, expect, it } from 'vitest';
import { epochMinute } from '../../src/core/fire-time.js';
import { JobRegistry, jobId } from '../../src/core/job-registry.js';
import type { UserRecord } from '../../src/core/types.js';

const ms = (iso: string): number => Date.parse(iso);
const minuteOf = (iso: string): number => epochMinute(ms(iso));

function user(id: string, times: string[], timezone = 'UTC', days?: number[]): UserRecord {
  return { id, email: `${id}@example.test`, name: undefined, timezone, times, days };
}

// Monday 2026-01-05 06:00Z.
const FROM = ms('2026-01-05T06:00:00Z');

describe('JobRegistry: upsert, replace, cancel', () => {
  it('schedules one job per slot in the right minute bucket', () => {
    const r = new JobRegistry();
    expect(r.upsertUser(user('u1', ['09:00', '21:00']), FROM)).toBe(2);
    expect(r.size).toBe(2);
    expect(r.userCount).toBe(1);
    expect(r.bucketCount).toBe(2);
    expect(r.get(jobId('u1', '09:00'))).toMatchObject({
      id: 'u1|09:00',
      time: '09:00',
      fireAt: ms('2026-01-05T09:00:00Z'),
      localDate: '2026-01-05',
    });
    expect(r.jobsOf('u1').map((j) => j.time)).toEqual(['09:00', '21:00']);
    expect(r.nextFireMinute()).toBe(minuteOf('2026-01-05T09:00:00Z'));
  });

  it('replace cancels removed slots, adds new ones and recomputes all (zone change)', () => {
    const r = new JobRegistry();
    r.upsertUser(user('u1', ['09:00', '21:00']), FROM);
    r.upsertUser(user('other', ['21:00']), FROM);
    expect(r.upsertUser(user('u1', ['09:00', '10:00'], 'America/New_York'), FROM)).toBe(2);

    expect(r.size).toBe(3);
    expect(r.get('u1|21:00')).toBeUndefined();
    expect(r.get('u1|09:00')?.fireAt).toBe(ms('2026-01-05T14:00:00Z')); // 09:00 EST
    expect(r.get('u1|10:00')?.fireAt).toBe(ms('2026-01-05T15:00:00Z'));
    // The old 09:00Z bucket is gone; the shared 21:00Z bucket keeps only the other user.
    expect(r.takeDue(minuteOf('2026-01-05T09:00:00Z'))).toEqual([]);
    expect(r.bucketSizes()).toEqual([
      [minuteOf('2026-01-05T14:00:00Z'), 1],
      [minuteOf('2026-01-05T15:00:00Z'), 1],
      [minuteOf('2026-01-05T21:00:00Z'), 1],
    ]);
    expect(r.takeDue(minuteOf('2026-01-05T21:00:00Z')).map((j) => j.id)).toEqual(['other|21:00']);
  });

  it('replace recomputes for changed weekdays; no allowed day leaves the user with no jobs', () => {
    const r = new JobRegistry();
    r.upsertUser(user('u1', ['09:00']), FROM);
    r.upsertUser(user('u1', ['09:00'], 'UTC', [3]), FROM); // Wednesday
    expect(r.get('u1|09:00')).toMatchObject({ fireAt: ms('2026-01-07T09:00:00Z'), localDate: '2026-01-07' });
    expect(r.upsertUser(user('u1', ['09:00'], 'UTC', []), FROM)).toBe(0);
    expect(r.size).toBe(0);
    expect(r.userCount).toBe(0);
    expect(r.bucketCount).toBe(0);
    expect(r.nextFireMinute()).toBeUndefined();
  });

  it('cancel removes every job of that user only', () => {
    const r = new JobRegistry();
    r.upsertUser(user('u1', ['09:00', '12:00']), FROM);
    r.upsertUser(user('u2', ['09:00']), FROM);
    expect(r.cancelUser('u1')).toBe(2);
    expect(r.cancelUser('u1')).toBe(0);
    expect(r.cancelUser('nobody')).toBe(0);
    expect(r.size).toBe(1);
    expect(r.userCount).toBe(1);
    expect(r.bucketSizes()).toEqual([[minuteOf('2026-01-05T09:00:00Z'), 1]]);
    expect(r.jobsOf('u1')).toEqual([]);
  });

  it('a bad zone or time throws and leaves the registry unchanged', () => {
    const r = new JobRegistry();
    r.upsertUser(user('u1', ['09:00']), FROM);
    expect(() => r.upsertUser(user('u1', ['10:00'], 'Mars/Olympus'), FROM)).toThrow(RangeError);
    expect(() => r.upsertUser(user('u1', ['10:00', '25:00']), FROM)).toThrow(RangeError);
    expect(r.jobsOf('u1').map((j) => j.time)).toEqual(['09:00']);
    expect(r.bucketCount).toBe(1);
  });
});

describe('JobRegistry: takeDue and reschedule', () => {
  it('cycles a job through its daily buckets', () => {
    const r = new JobRegistry();
    r.upsertUser(user('u1', ['09:00']), FROM);
    r.upsertUser(user('u2', ['09:00', '09:01']), FROM);
    const m = minuteOf('2026-01-05T09:00:00Z');
    expect(r.nextFireMinute()).toBe(m);

    const due = r.takeDue(m);
    expect(due.map((j) => j.id).sort()).toEqual(['u1|09:00', 'u2|09:00']);
    expect(r.takeDue(m)).toEqual([]);
    expect(r.size).toBe(3); // taken jobs stay registered
    expect(r.nextFireMinute()).toBe(m + 1);

    for (const job of due) {
      const moved = r.reschedule(job, job.fireAt);
      expect(moved).toMatchObject({ fireAt: ms('2026-01-06T09:00:00Z'), localDate: '2026-01-06' });
      expect(job.localDate).toBe('2026-01-05'); // the fired object is not mutated
    }
    expect(r.bucketSizes()).toEqual([
      [m + 1, 1],
      [minuteOf('2026-01-06T09:00:00Z'), 2],
    ]);
  });

  it('reschedule of a stale job (user replaced or cancelled meanwhile) is a no-op', () => {
    const r = new JobRegistry();
    r.upsertUser(user('u1', ['09:00']), FROM);
    const [job] = r.takeDue(minuteOf('2026-01-05T09:00:00Z'));
    expect(job).toBeDefined();
    if (job === undefined) return;
    r.upsertUser(user('u1', ['09:00'], 'Asia/Kathmandu'), ms('2026-01-05T09:00:30Z'));
    expect(r.reschedule(job, job.fireAt)).toBeUndefined();
    expect(r.get('u1|09:00')?.fireAt).toBe(ms('2026-01-06T03:15:00Z'));
    expect(r.bucketCount).toBe(1);

    r.cancelUser('u1');
    expect(r.reschedule(job, job.fireAt)).toBeUndefined();
    expect(r.size).toBe(0);
    expect(r.bucketCount).toBe(0);
  });

  it('reschedule moves a job that was not taken, and honours days', () => {
    const r = new JobRegistry();
    r.upsertUser(user('u1', ['09:00'], 'UTC', [1, 5]), FROM); // Mon, Fri
    const job = r.get('u1|09:00');
    expect(job?.localDate).toBe('2026-01-05');
    if (job === undefined) return;
    expect(r.reschedule(job, job.fireAt)?.localDate).toBe('2026-01-09');
    expect(r.bucketSizes()).toEqual([[minuteOf('2026-01-09T09:00:00Z'), 1]]);
  });

  it('nextFireMinute skips buckets emptied by cancel/replace (lazy heap)', () => {
    const r = new JobRegistry();
    r.upsertUser(user('a', ['08:00']), FROM);
    r.upsertUser(user('b', ['07:00']), FROM);
    r.upsertUser(user('c', ['10:00']), FROM);
    expect(r.nextFireMinute()).toBe(minuteOf('2026-01-05T07:00:00Z'));
    r.cancelUser('b');
    expect(r.nextFireMinute()).toBe(minuteOf('2026-01-05T08:00:00Z'));
    r.upsertUser(user('a', ['11:00']), FROM);
    expect(r.nextFireMinute()).toBe(minuteOf('2026-01-05T10:00:00Z'));
    // A minute that was emptied and filled again is still found.
    r.upsertUser(user('b', ['08:00']), FROM);
    expect(r.nextFireMinute()).toBe(minuteOf('2026-01-05T08:00:00Z'));
    r.cancelUser('b');
    r.cancelUser('c');
    expect(r.nextFireMinute()).toBe(minuteOf('2026-01-05T11:00:00Z'));
    r.cancelUser('a');
    expect(r.nextFireMinute()).toBeUndefined();
  });
});

describe('JobRegistry: cost is per user, not per registry', () => {
  const ZONES = ['UTC', 'America/New_York', 'Europe/London', 'Asia/Kathmandu', 'Australia/Lord_Howe'];
  const TIMES = ['06:30', '07:00', '08:15', '09:00', '12:00', '18:45', '21:30'];
  const make = (i: number): UserRecord =>
    user(`u${i}`, [TIMES[i % TIMES.length] as string, TIMES[(i * 3 + 1) % TIMES.length] as string], ZONES[i % ZONES.length]);
  const build = (n: number): JobRegistry => {
    const r = new JobRegistry();
    for (let i = 0; i < n; i++) r.upsertUser(make(i), FROM);
    return r;
  };
  const cost = (r: JobRegistry, op: () => void): number => {
    const before = r.visits;
    op();
    return r.visits - before;
  };

  // Since buckets remove lazily (minute-buckets.ts) a job leaving its bucket counts the bucket and
  // its live count where it counted the bucket and its neighbours' links: the same number. A
  // removal that compacts a bucket also counts the pairs compacted; none of the operations here
  // does (too few removals per bucket), and the amortized bound is in job-registry-buckets.test.ts.
  it('replace and cancel of one user touch the same few entries with 1,000 or 100,000 users', () => {
    const small = build(1_000);
    const large = build(100_000);
    expect(large.userCount).toBe(100_000);
    expect(large.size).toBeGreaterThan(100_000);

    const replaced = user('u500', ['07:00', '10:10', '23:00'], 'Pacific/Auckland', [1, 2, 3]);
    const replaceSmall = cost(small, () => small.upsertUser(replaced, FROM));
    const replaceLarge = cost(large, () => large.upsertUser(replaced, FROM));
    expect(replaceLarge).toBe(replaceSmall);
    expect(replaceSmall).toBeLessThan(40);

    const cancelSmall = cost(small, () => small.cancelUser('u501'));
    const cancelLarge = cost(large, () => large.cancelUser('u501'));
    expect(cancelLarge).toBe(cancelSmall);
    expect(cancelSmall).toBeLessThan(20);

    const addSmall = cost(small, () => small.upsertUser(user('new', ['05:55']), FROM));
    const addLarge = cost(large, () => large.upsertUser(user('new', ['05:55']), FROM));
    expect(addLarge).toBe(addSmall);

    expect(large.userCount).toBe(100_000); // -1 cancelled, +1 new
    expect(large.get('u500|10:10')?.localDate).toBe('2026-01-06'); // Auckland is already on Tuesday
  }, 60_000);
});

describe('JobRegistry: unchanged users are kept, not rebuilt (issue 17)', () => {
  const NOON = ms('2026-01-05T12:00:00Z');

  it('keeps a user whose zone, weekdays and slots it already holds: same rows, same generation, one lookup', () => {
    const r = new JobRegistry();
    r.upsertUser(user('u1', ['09:00', '21:00'], 'Europe/Berlin', [1, 2]), FROM);
    const before = r.jobsOf('u1');
    const visits = r.visits;
    // Times in another order and repeated: the same schedule.
    expect(r.keepIfUnchanged(user('u1', ['21:00', '09:00', '21:00'], 'Europe/Berlin', [2, 1]), FROM + 60_000)).toBe(true);
    expect(r.visits - visits).toBe(1);
    expect(r.jobsOf('u1')).toEqual(before);
  });

  it('does not keep a user whose schedule changed, or who is unknown', () => {
    const r = new JobRegistry();
    r.upsertUser(user('u1', ['09:00', '21:00'], 'Europe/Berlin', [1, 2]), FROM);
    expect(r.keepIfUnchanged(user('u1', ['09:00', '21:00'], 'Europe/Paris', [1, 2]), FROM)).toBe(false);
    expect(r.keepIfUnchanged(user('u1', ['09:00', '21:00'], 'Europe/Berlin', [1, 2, 3]), FROM)).toBe(false);
    expect(r.keepIfUnchanged(user('u1', ['09:00', '21:00'], 'Europe/Berlin'), FROM)).toBe(false);
    expect(r.keepIfUnchanged(user('u1', ['09:00'], 'Europe/Berlin', [1, 2]), FROM)).toBe(false);
    expect(r.keepIfUnchanged(user('u1', ['09:00', '21:00', '22:00'], 'Europe/Berlin', [1, 2]), FROM)).toBe(false);
    expect(r.keepIfUnchanged(user('u1', ['09:00', '21:30'], 'Europe/Berlin', [1, 2]), FROM)).toBe(false);
    expect(r.keepIfUnchanged(user('nobody', ['09:00']), FROM)).toBe(false);
  });

  it('does not keep jobs that recomputing from fromMs would change: computed from a later instant, due before fromMs, or taken', () => {
    const r = new JobRegistry();
    r.upsertUser(user('late', ['09:00']), NOON); // computed from noon: tomorrow 09:00
    expect(r.keepIfUnchanged(user('late', ['09:00']), FROM)).toBe(false); // from 06:00 today gives today 09:00
    expect(r.keepIfUnchanged(user('late', ['09:00']), NOON)).toBe(true);

    r.upsertUser(user('due', ['09:00']), FROM); // today 09:00, not fired yet at noon
    expect(r.keepIfUnchanged(user('due', ['09:00']), NOON)).toBe(false);

    r.upsertUser(user('taken', ['07:00']), FROM);
    r.takeDue(minuteOf('2026-01-05T07:00:00Z'));
    expect(r.keepIfUnchanged(user('taken', ['07:00']), FROM)).toBe(false);
  });

  it('compares the instant the jobs were computed from exactly, not by the minute', () => {
    const r = new JobRegistry();
    // Computed at 08:59:30 (a sync's clock.now()): the next fire is 09:00 today.
    r.upsertUser(user('u1', ['09:00']), ms('2026-01-05T08:59:30Z'));
    // Another sync a few seconds later, in the same minute: nothing can have changed.
    expect(r.keepIfUnchanged(user('u1', ['09:00']), ms('2026-01-05T08:59:33Z'))).toBe(true);
    r.upsertUser(user('u2', ['09:00']), ms('2026-01-05T09:00:00.500Z')); // just past 09:00: tomorrow
    // From 09:00:00.000 the answer would be today 09:00: recompute, even within the same minute.
    expect(r.keepIfUnchanged(user('u2', ['09:00']), ms('2026-01-05T09:00:00Z'))).toBe(false);
  });

  it('a sweep cancels exactly the users neither upserted nor kept since it began', () => {
    const r = new JobRegistry();
    for (const id of ['a', 'b', 'c', 'd']) r.upsertUser(user(id, ['09:00']), FROM);
    r.beginSweep();
    r.upsertUser(user('a', ['10:00']), FROM);
    expect(r.keepIfUnchanged(user('b', ['09:00']), FROM)).toBe(true);
    r.upsertUser(user('e', ['11:00']), FROM);
    expect(r.endSweep()).toBe(2);
    expect([...r.userIds()].sort()).toEqual(['a', 'b', 'e']);
    expect(r.size).toBe(3);
  });

  it('a fired job carries the contact the registry holds, and a kept user still takes a new address or name', () => {
    const r = new JobRegistry();
    r.upsertUser(user('u1', ['09:00'], 'Asia/Tokyo'), FROM);
    const [job] = r.takeDue(minuteOf('2026-01-06T00:00:00Z'));
    expect(job).toEqual({ id: 'u1|09:00', userId: 'u1', time: '09:00', timezone: 'Asia/Tokyo', fireAt: ms('2026-01-06T00:00:00Z'), localDate: '2026-01-06', email: 'u1@example.test', name: undefined, row: expect.any(Number), gen: expect.any(Number) });

    r.upsertUser(user('u2', ['10:00']), FROM);
    const before = r.jobsOf('u2')[0];
    expect(r.keepIfUnchanged({ ...user('u2', ['10:00']), email: 'new@example.test', name: 'Zoë' }, FROM)).toBe(true);
    const after = r.jobsOf('u2')[0];
    // The same row and generation (the schedule was kept), the new contact.
    expect(after).toEqual({ ...before, email: 'new@example.test', name: 'Zoë' });
    expect(r.contactOf('u2')).toEqual({ email: 'new@example.test', name: 'Zoë' });
    r.cancelUser('u2');
    expect(r.contactOf('u2')).toBeUndefined();
  });

  it('reschedule of the same fired object twice moves it once', () => {
    const r = new JobRegistry();
    r.upsertUser(user('u1', ['09:00']), FROM);
    const [job] = r.takeDue(minuteOf('2026-01-05T09:00:00Z'));
    if (job === undefined) throw new Error('no job');
    expect(r.reschedule(job, job.fireAt)?.localDate).toBe('2026-01-06');
    expect(r.reschedule(job, job.fireAt)).toBeUndefined();
    expect(r.bucketSizes()).toEqual([[minuteOf('2026-01-06T09:00:00Z'), 1]]);
  });
});
