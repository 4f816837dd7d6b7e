/**
 * `broadcast send --local-time HH:MM [--on DATE]` parsing (cli/local-time-option.ts) and the
 * per-zone view of `broadcast status` (cli/broadcast-view.ts zoneRows): what is refused with
 * exit 64 and why, the default date, the wave's first and last instants; done / due / waiting.
 */
import { describe, expect, it } from 'vitest';
import { statusBlock, zoneRows } from '../../src/cli/broadcast-view.js';
import { parseLocalTime } from '../../src/cli/local-time-option.js';
import { MailwheelError } from '../../src/errors.js';
import type { BroadcastDoc } from '../../src/ports/broadcasts.js';

const NOW = Date.parse('2026-03-28T09:00:00Z');

function refused(opts: Parameters<typeof parseLocalTime>[0]): string {
  try {
    parseLocalTime(opts, NOW);
  } catch (err) {
    expect(err).toBeInstanceOf(MailwheelError);
    expect((err as MailwheelError).code).toBe('MW_BAD_ARGUMENT');
    return (err as Error).message;
  }
  throw new Error('not refused');
}

describe('--local-time / --on', () => {
  it('default date: tomorrow (UTC); first instant at UTC+14, last at UTC-12', () => {
    const w = parseLocalTime({ localTime: '09:00' }, NOW);
    expect(w?.wave).toEqual({ time: '09:00', date: '2026-03-29' });
    expect(new Date(w?.first ?? 0).toISOString()).toBe('2026-03-28T19:00:00.000Z');
    expect(new Date(w?.last ?? 0).toISOString()).toBe('2026-03-29T21:00:00.000Z');
  });
  it('without --local-time: none; --on alone is refused', () => {
    expect(parseLocalTime({}, NOW)).toBeUndefined();
    expect(refused({ on: '2026-03-29' })).toMatch(/--on: only with --local-time/);
  });
  it('refuses a bad time, a bad date, --at beside it, and a wave passed everywhere', () => {
    expect(refused({ localTime: '24:00' })).toMatch(/--local-time: "24:00" is not HH:MM/);
    expect(refused({ localTime: '9:00' })).toMatch(/is not HH:MM/);
    expect(refused({ localTime: '09:00', on: '2026-02-30' })).toMatch(/--on: "2026-02-30" is not a date/);
    expect(refused({ localTime: '09:00', on: '29/03/2026' })).toMatch(/is not a date/);
    expect(refused({ localTime: '09:00', at: '2026-03-29T09:00:00Z' })).toMatch(/--local-time and --at: give one of them/);
    expect(refused({ localTime: '09:00', on: '2026-03-26' })).toMatch(/has passed in every time zone/);
  });
  it('a wave passed only in the east is accepted (the CLI warns)', () => {
    const w = parseLocalTime({ localTime: '09:00', on: '2026-03-28' }, NOW);
    expect(w !== undefined && w.first <= NOW && w.last > NOW).toBe(true);
  });
});

describe('zone rows', () => {
  const doc = (status: BroadcastDoc['status']): BroadcastDoc => ({
    _id: 'b1', subject: 's', text: 't', segment: '{}', status, gen: 1, createdAt: new Date(0), updatedAt: new Date(0),
    counters: { sent: 10, failed: 0, skipped: 0, suppressed: 0, missed: 0 },
    localTime: { time: '09:00', date: '2026-03-29' },
    nextAt: new Date('2026-03-29T09:00:00Z'),
    zones: [
      { zone: 'Asia/Tokyo', at: new Date('2026-03-29T00:00:00Z'), users: 10, done: 10 },
      { zone: 'Asia/Kolkata', at: new Date('2026-03-29T03:30:00Z'), users: 7, done: 2 },
      { zone: 'UTC', at: new Date('2026-03-29T09:00:00Z'), users: 5, done: 0 },
    ],
  });
  it('done, due now (instant passed), waiting (instant ahead)', () => {
    const rows = zoneRows(doc('running'), Date.parse('2026-03-29T04:00:00Z'));
    expect(rows.map((r) => [r.zone, r.done, r.due, r.waiting])).toEqual([
      ['Asia/Tokyo', 10, 0, 0],
      ['Asia/Kolkata', 2, 5, 0],
      ['UTC', 0, 0, 5],
    ]);
    // A finished broadcast has nothing due or waiting.
    expect(zoneRows(doc('cancelled'), 0).every((r) => r.due === 0 && r.waiting === 0)).toBe(true);
  });
  it('status shows the local time, the next wave and a line per zone', () => {
    const text = statusBlock(doc('running'), undefined);
    expect(text).toMatch(/local time 09:00 on 2026-03-29 in each recipient's zone/);
    expect(text).toMatch(/next wave {2}2026-03-29T09:00:00.000Z/);
    expect(text).toMatch(/missed {5}0/);
    expect(text).toMatch(/zones {6}3: /);
    expect(text).toMatch(/ {2}Asia\/Kolkata +2026-03-29 03:30 +7 +2 /);
  });
});
