import { describe, expect, it } from 'vitest';
import { epochMinute } from '../../src/core/fire-time.js';
import type { Job } from '../../src/core/job-registry.js';
import { JobRegistry } from '../../src/core/job-registry.js';
import { MinuteScheduler } from '../../src/core/minute-scheduler.js';
import type { UserRecord } from '../../src/core/types.js';
import { ErrorCodes } from '../../src/errors.js';
import { mwError } from '../helpers/errors.js';
import { FakeClock, flushMicrotasks } from '../helpers/fake-clock.js';

const ms = (iso: string): number => Date.parse(iso);
const iso = (t: number): string => new Date(t).toISOString();
const minuteIso = (minute: number): string => iso(minute * 60_000);
const MIN = 60_000;

function user(id: string, times: string[], timezone = 'UTC'): UserRecord {
  return { id, email: `${id}@example.test`, name: undefined, timezone, times, days: undefined };
}

interface Call {
  minute: string;
  at: string;
  jobs: string[];
}

function setup(startIso: string, users: UserRecord[], onDue?: (jobs: Job[], minute: number) => void | Promise<void>) {
  const clock = new FakeClock(startIso);
  const registry = new JobRegistry();
  for (const u of users) registry.upsertUser(u, clock.now());
  const calls: Call[] = [];
  const scheduler = new MinuteScheduler({
    registry,
    clock,
    onDue: async (jobs, minute) => {
      calls.push({ minute: minuteIso(minute), at: iso(clock.now()), jobs: jobs.map((j) => `${j.id}@${j.localDate}`).sort() });
      await onDue?.(jobs, minute);
    },
  });
  return { clock, registry, scheduler, calls };
}

/** Resolves after `ms` of fake time. */
const sleep = (clock: FakeClock, delay: number): Promise<void> =>
  new Promise((resolve) => {
    clock.setTimeout(resolve, delay);
  });

describe('MinuteScheduler', () => {
  it('arms one timer for the next minute boundary and fires due buckets on time', async () => {
    const { clock, scheduler, calls } = setup('2026-01-05T08:59:30Z', [user('a', ['09:00', '09:02']), user('b', ['09:00'])]);
    scheduler.start();
    scheduler.start(); // no-op
    expect(clock.pending).toBe(1);
    expect(clock.nextTimerAt()).toBe(ms('2026-01-05T09:00:00Z'));

    await clock.advanceAsync(29_999);
    expect(calls).toEqual([]);
    await clock.advanceAsync(1);
    expect(calls).toEqual([
      { minute: '2026-01-05T09:00:00.000Z', at: '2026-01-05T09:00:00.000Z', jobs: ['a|09:00@2026-01-05', 'b|09:00@2026-01-05'] },
    ]);
    expect(clock.pending).toBe(1);
    expect(clock.nextTimerAt()).toBe(ms('2026-01-05T09:01:00Z'));

    await clock.advanceAsync(3 * MIN);
    expect(calls.map((c) => [c.minute, c.at])).toEqual([
      ['2026-01-05T09:00:00.000Z', '2026-01-05T09:00:00.000Z'],
      ['2026-01-05T09:02:00.000Z', '2026-01-05T09:02:00.000Z'],
    ]);
    expect(scheduler.lastProcessedMinute).toBe(epochMinute(ms('2026-01-05T09:03:00Z')));
    await scheduler.stop();
    expect(clock.pending).toBe(0);
  });

  it('catches up every missed minute, in order, after a late timer', async () => {
    const { clock, scheduler, calls } = setup('2026-01-05T08:59:30Z', [
      user('a', ['09:00']),
      user('b', ['09:01']),
      user('c', ['09:02']),
      user('d', ['09:04']),
    ]);
    scheduler.start();
    clock.jump(3 * MIN); // event loop blocked: now 09:02:30, the 09:00 timer has not run
    await clock.advanceAsync(0);
    expect(calls).toEqual([
      { minute: '2026-01-05T09:00:00.000Z', at: '2026-01-05T09:02:30.000Z', jobs: ['a|09:00@2026-01-05'] },
      { minute: '2026-01-05T09:01:00.000Z', at: '2026-01-05T09:02:30.000Z', jobs: ['b|09:01@2026-01-05'] },
      { minute: '2026-01-05T09:02:00.000Z', at: '2026-01-05T09:02:30.000Z', jobs: ['c|09:02@2026-01-05'] },
    ]);
    expect(clock.nextTimerAt()).toBe(ms('2026-01-05T09:03:00Z'));
    await clock.advanceAsync(2 * MIN);
    expect(calls.at(-1)).toEqual({
      minute: '2026-01-05T09:04:00.000Z',
      at: '2026-01-05T09:04:00.000Z',
      jobs: ['d|09:04@2026-01-05'],
    });
    await scheduler.stop();
  });

  it('fires at once on start when buckets are already due (start-up backfill)', async () => {
    const clock = new FakeClock('2026-01-05T09:00:40Z');
    const registry = new JobRegistry();
    registry.upsertUser(user('a', ['08:58']), ms('2026-01-05T08:50:00Z'));
    const seen: string[] = [];
    const scheduler = new MinuteScheduler({ registry, clock, onDue: (_jobs, m) => void seen.push(minuteIso(m)) });
    scheduler.start();
    expect(clock.nextTimerAt()).toBe(clock.now());
    await clock.advanceAsync(0);
    expect(seen).toEqual(['2026-01-05T08:58:00.000Z']);
    expect(registry.get('a|08:58')?.localDate).toBe('2026-01-06');
    await scheduler.stop();
  });

  it('never overlaps onDue calls; the backlog is processed after a slow onDue finishes', async () => {
    let running = 0;
    let maxRunning = 0;
    const { clock, scheduler, calls } = setup(
      '2026-01-05T08:59:30Z',
      [user('a', ['09:00']), user('b', ['09:01']), user('c', ['09:02']), user('d', ['09:06'])],
      async (jobs) => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        // The first delivery takes 150 s; the others 10 s.
        await sleep(clock, jobs[0]?.time === '09:00' ? 150_000 : 10_000);
        running--;
      },
    );
    scheduler.start();
    await clock.advanceAsync(10 * MIN);
    expect(maxRunning).toBe(1);
    expect(calls.map((c) => [c.minute, c.at])).toEqual([
      ['2026-01-05T09:00:00.000Z', '2026-01-05T09:00:00.000Z'],
      ['2026-01-05T09:01:00.000Z', '2026-01-05T09:02:30.000Z'],
      ['2026-01-05T09:02:00.000Z', '2026-01-05T09:02:40.000Z'],
      ['2026-01-05T09:06:00.000Z', '2026-01-05T09:06:00.000Z'],
    ]);
    await scheduler.stop();
  });

  it('stop() waits for a running onDue, processes nothing more, and is idempotent', async () => {
    let release: () => void = () => {};
    let finished = false;
    const { clock, scheduler, calls } = setup('2026-01-05T08:59:30Z', [user('a', ['09:00']), user('b', ['09:01'])], async () => {
      await new Promise<void>((resolve) => {
        release = resolve;
      });
      finished = true;
    });
    scheduler.start();
    await clock.advanceAsync(30_000);
    expect(calls).toHaveLength(1);
    expect(scheduler.busy).toBe(true);

    let stopped = false;
    const p1 = scheduler.stop();
    const p2 = scheduler.stop();
    expect(p2).toBe(p1);
    void p1.then(() => {
      stopped = true;
    });
    await clock.advanceAsync(5 * MIN);
    expect(stopped).toBe(false);

    release();
    await p1;
    expect(finished).toBe(true);
    expect(stopped).toBe(true);
    await clock.advanceAsync(5 * MIN);
    expect(calls).toHaveLength(1); // the 09:01 bucket was not processed after stop
    expect(clock.pending).toBe(0);
    expect(() => scheduler.start()).toThrow(mwError(ErrorCodes.INTERNAL, /after stop/));
  });

  it('an onDue failure is reported and the scheduler carries on', async () => {
    const clock = new FakeClock('2026-01-05T08:59:30Z');
    const registry = new JobRegistry();
    registry.upsertUser(user('a', ['09:00', '09:01']), clock.now());
    const errors: Array<[string, number]> = [];
    const scheduler = new MinuteScheduler({
      registry,
      clock,
      onDue: (_jobs, minute) => {
        if (minuteIso(minute).startsWith('2026-01-05T09:00')) throw new Error('boom');
      },
      onError: (err, minute) => errors.push([(err as Error).message, minute]),
    });
    scheduler.start();
    await clock.advanceAsync(2 * MIN);
    expect(errors).toEqual([['boom', epochMinute(ms('2026-01-05T09:00:00Z'))]]);
    expect(scheduler.errorCount).toBe(1);
    expect(scheduler.firedJobs).toBe(2);
    expect(registry.get('a|09:00')?.localDate).toBe('2026-01-06'); // rescheduled despite the failure
    await scheduler.stop();
  });

  it('each slot fires exactly once per local day over 3 days, across DST transitions', async () => {
    // New York: 02:30 falls in the 2026-03-08 gap; 01:30 is repeated on 2026-11-01.
    const spring = setup('2026-03-07T00:00:00Z', [user('ny', ['02:30', '09:00'], 'America/New_York'), user('k', ['09:00'], 'Asia/Kathmandu')]);
    spring.scheduler.start();
    await spring.clock.advanceAsync(3 * 24 * 60 * MIN);
    await spring.scheduler.stop();
    const springFires = spring.calls.flatMap((c) => c.jobs.map((j) => `${j} ${c.at}`)).sort();
    expect(springFires).toEqual([
      'k|09:00@2026-03-07 2026-03-07T03:15:00.000Z',
      'k|09:00@2026-03-08 2026-03-08T03:15:00.000Z',
      'k|09:00@2026-03-09 2026-03-09T03:15:00.000Z',
      'ny|02:30@2026-03-07 2026-03-07T07:30:00.000Z', // EST
      'ny|02:30@2026-03-08 2026-03-08T07:00:00.000Z', // gap: 03:00 EDT
      'ny|02:30@2026-03-09 2026-03-09T06:30:00.000Z', // EDT
      'ny|09:00@2026-03-07 2026-03-07T14:00:00.000Z',
      'ny|09:00@2026-03-08 2026-03-08T13:00:00.000Z',
      'ny|09:00@2026-03-09 2026-03-09T13:00:00.000Z',
    ]);

    const fall = setup('2026-10-31T00:00:00Z', [user('ny', ['01:30'], 'America/New_York')]);
    fall.scheduler.start();
    await fall.clock.advanceAsync(3 * 24 * 60 * MIN);
    await fall.scheduler.stop();
    expect(fall.calls.map((c) => `${c.jobs.join(',')} ${c.at}`)).toEqual([
      'ny|01:30@2026-10-31 2026-10-31T05:30:00.000Z', // EDT
      'ny|01:30@2026-11-01 2026-11-01T05:30:00.000Z', // first 01:30 (EDT); the second is skipped
      'ny|01:30@2026-11-02 2026-11-02T06:30:00.000Z', // EST
    ]);
  }, 60_000);

  it('runMinute delivers exactly that minute once, even when empty', async () => {
    const clock = new FakeClock('2026-01-05T09:00:00Z');
    const registry = new JobRegistry();
    registry.upsertUser(user('a', ['09:00', '09:01']), clock.now());
    registry.upsertUser(user('b', ['09:00']), clock.now());
    const seen: Array<[string, string[]]> = [];
    const scheduler = new MinuteScheduler({
      registry,
      clock,
      onDue: (jobs, m) => void seen.push([minuteIso(m), jobs.map((j) => j.id).sort()]),
    });
    expect(await scheduler.runMinute(epochMinute(ms('2026-01-05T09:00:00Z')))).toBe(2);
    expect(await scheduler.runMinute(epochMinute(ms('2026-01-05T09:00:00Z')))).toBe(0);
    expect(seen).toEqual([
      ['2026-01-05T09:00:00.000Z', ['a|09:00', 'b|09:00']],
      ['2026-01-05T09:00:00.000Z', []],
    ]);
    expect(registry.get('a|09:01')?.localDate).toBe('2026-01-05'); // other minutes untouched
    expect(registry.get('b|09:00')?.localDate).toBe('2026-01-06');
    await flushMicrotasks();
  });
});
