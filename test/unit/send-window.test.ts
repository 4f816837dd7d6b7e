/**
 * The send-window rule (core/send-window.ts): when a broadcast may go to a recipient in a zone.
 * Expected instants are worked out by hand from the zones' published offsets and written as UTC
 * literals (2026: US DST starts 8 March at 02:00 local, ends 1 November at 02:00; EU DST starts
 * 29 March at 01:00 UTC, ends 25 October at 01:00 UTC).
 */
import { describe, expect, it } from 'vitest';
import { insideWindow, quietWindowEnd, sendInstant, SendWindow, type QuietHours, type SendRule } from '../../src/core/send-window.js';

const ms = (iso: string): number => {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) throw new Error(`bad literal ${iso}`);
  return t;
};
const iso = (t: number | undefined): string | undefined => (t === undefined ? undefined : new Date(t).toISOString());
const NIGHT: QuietHours = { start: '21:00', end: '08:00', maxHoldMinutes: 720 };

/** The instant as an ISO string, or `missed`. */
function when(zone: string, rule: SendRule, now: string): string {
  const r = sendInstant(zone, rule, ms(now));
  return r.kind === 'missed' ? 'missed' : (iso(r.at) ?? '');
}

describe('insideWindow', () => {
  it('a same-day window is [start, end)', () => {
    expect(insideWindow(12 * 60, 12 * 60, 14 * 60)).toBe(true);
    expect(insideWindow(14 * 60, 12 * 60, 14 * 60)).toBe(false);
    expect(insideWindow(11 * 60 + 59, 12 * 60, 14 * 60)).toBe(false);
  });
  it('a window crossing midnight holds both sides of it', () => {
    expect(insideWindow(21 * 60, 21 * 60, 8 * 60)).toBe(true);
    expect(insideWindow(23 * 60 + 59, 21 * 60, 8 * 60)).toBe(true);
    expect(insideWindow(0, 21 * 60, 8 * 60)).toBe(true);
    expect(insideWindow(7 * 60 + 59, 21 * 60, 8 * 60)).toBe(true);
    expect(insideWindow(8 * 60, 21 * 60, 8 * 60)).toBe(false);
    expect(insideWindow(20 * 60 + 59, 21 * 60, 8 * 60)).toBe(false);
  });
});

describe('local-time waves (fire-time rule)', () => {
  const wave = (time: string, date: string): SendRule => ({ wave: { time, date }, dueAt: 0 });

  it('each zone at its own HH:MM, half- and quarter-hour offsets included', () => {
    const r = wave('09:00', '2026-01-15');
    expect(when('UTC', r, '2026-01-14T00:00:00Z')).toBe('2026-01-15T09:00:00.000Z');
    expect(when('Asia/Kolkata', r, '2026-01-14T00:00:00Z')).toBe('2026-01-15T03:30:00.000Z'); // +5:30
    expect(when('Asia/Kathmandu', r, '2026-01-14T00:00:00Z')).toBe('2026-01-15T03:15:00.000Z'); // +5:45
    expect(when('America/St_Johns', r, '2026-01-14T00:00:00Z')).toBe('2026-01-15T12:30:00.000Z'); // -3:30
    expect(when('Pacific/Kiritimati', r, '2026-01-14T00:00:00Z')).toBe('2026-01-14T19:00:00.000Z'); // +14
  });

  it('a time in a DST gap goes at the end of the gap; on the change day the new offset counts', () => {
    // New York 8 March 2026: 02:00 EST -> 03:00 EDT, so 02:30 does not exist: 03:00 EDT = 07:00Z.
    expect(when('America/New_York', wave('02:30', '2026-03-08'), '2026-03-01T00:00:00Z')).toBe('2026-03-08T07:00:00.000Z');
    // 09:00 that day is EDT (-4).
    expect(when('America/New_York', wave('09:00', '2026-03-08'), '2026-03-01T00:00:00Z')).toBe('2026-03-08T13:00:00.000Z');
    // Berlin 29 March: 02:00 CET -> 03:00 CEST; 02:30 goes at 03:00 CEST = 01:00Z.
    expect(when('Europe/Berlin', wave('02:30', '2026-03-29'), '2026-03-20T00:00:00Z')).toBe('2026-03-29T01:00:00.000Z');
    // London the same day: 01:00 GMT -> 02:00 BST, so 02:30 exists and is BST: 01:30Z.
    expect(when('Europe/London', wave('02:30', '2026-03-29'), '2026-03-20T00:00:00Z')).toBe('2026-03-29T01:30:00.000Z');
  });

  it('a repeated time (DST end) goes once, at its first occurrence', () => {
    // New York 1 November 2026: 01:30 happens at 05:30Z (EDT) and 06:30Z (EST).
    expect(when('America/New_York', wave('01:30', '2026-11-01'), '2026-10-30T00:00:00Z')).toBe('2026-11-01T05:30:00.000Z');
  });

  it('an instant already passed stays passed: due now', () => {
    expect(when('UTC', wave('09:00', '2026-01-15'), '2026-01-15T10:00:00Z')).toBe('2026-01-15T09:00:00.000Z');
  });

  it('an unknown zone throws (the caller skips the recipient with the reason)', () => {
    expect(() => sendInstant('Mars/Olympus', wave('09:00', '2026-01-15'), 0)).toThrow(RangeError);
    const w = new SendWindow(wave('09:00', '2026-01-15'));
    expect(w.at('Mars/Olympus', 0)).toBeInstanceOf(Error);
  });
});

describe('quiet hours', () => {
  const plain = (dueAt: string, quiet: QuietHours = NIGHT): SendRule => ({ quiet, dueAt: ms(dueAt) });

  it('outside the window: now', () => {
    expect(when('UTC', plain('2026-01-15T20:59:00Z'), '2026-01-15T20:59:00Z')).toBe('2026-01-15T20:59:00.000Z');
  });

  it('before midnight inside a window crossing it: the next local morning', () => {
    // Tokyo (+9): 20:59Z is 05:59 local, inside 21:00-08:00: held until 08:00 local = 23:00Z.
    expect(when('Asia/Tokyo', plain('2026-01-15T20:59:00Z'), '2026-01-15T20:59:00Z')).toBe('2026-01-15T23:00:00.000Z');
    // Berlin (+1): 21:30Z is 22:30 local: until 08:00 the next local date = 07:00Z on the 16th.
    expect(when('Europe/Berlin', plain('2026-01-15T21:30:00Z'), '2026-01-15T21:30:00Z')).toBe('2026-01-16T07:00:00.000Z');
  });

  it('after midnight inside the window: the same local morning; a half-hour zone ends at its own 08:00', () => {
    // Kolkata (+5:30): 20:59Z is 02:29 local on the 16th: 08:00 local = 02:30Z on the 16th.
    expect(when('Asia/Kolkata', plain('2026-01-15T20:59:00Z'), '2026-01-15T20:59:00Z')).toBe('2026-01-16T02:30:00.000Z');
  });

  it('the window start itself is inside; the end itself is outside', () => {
    expect(when('UTC', plain('2026-01-15T21:00:00Z'), '2026-01-15T21:00:00Z')).toBe('2026-01-16T08:00:00.000Z');
    expect(when('UTC', plain('2026-01-15T08:00:00Z'), '2026-01-15T08:00:00Z')).toBe('2026-01-15T08:00:00.000Z');
  });

  it('a same-day window (12:00-14:00) ends the same day', () => {
    const lunch = { start: '12:00', end: '14:00', maxHoldMinutes: 720 };
    expect(when('UTC', plain('2026-01-15T12:10:00Z', lunch), '2026-01-15T12:10:00Z')).toBe('2026-01-15T14:00:00.000Z');
    expect(when('UTC', plain('2026-01-15T14:10:00Z', lunch), '2026-01-15T14:10:00Z')).toBe('2026-01-15T14:10:00.000Z');
  });

  it('a window ending in a DST gap ends when the gap ends; a night spanning the change is an hour shorter', () => {
    // New York, night of 7-8 March 2026, quiet 21:00-02:30: 02:30 does not exist on the 8th, so the
    // window ends at 03:00 EDT = 07:00Z.
    const q = { start: '21:00', end: '02:30', maxHoldMinutes: 720 };
    expect(quietWindowEnd('America/New_York', ms('2026-03-08T03:00:00Z'), q)).toBe(ms('2026-03-08T07:00:00Z'));
    // 21:00-08:00 across the spring change: 22:00 EST (03:00Z) to 08:00 EDT (12:00Z) is 9 h, not 10.
    expect(quietWindowEnd('America/New_York', ms('2026-03-08T03:00:00Z'), NIGHT)).toBe(ms('2026-03-08T12:00:00Z'));
  });

  it('on the autumn change the window ends at 08:00 of the new offset', () => {
    // New York 1 November 2026, 23:00Z on the 1st is 18:00 EST (outside); 05:00Z is 01:00 EDT (inside): ends 08:00 EST = 13:00Z.
    expect(quietWindowEnd('America/New_York', ms('2026-11-01T05:00:00Z'), NIGHT)).toBe(ms('2026-11-01T13:00:00Z'));
    expect(quietWindowEnd('America/New_York', ms('2026-11-01T23:00:00Z'), NIGHT)).toBeUndefined();
  });

  it('held longer than maxHoldMinutes past the moment it would go: missed, with the reason', () => {
    const short = { ...NIGHT, maxHoldMinutes: 60 };
    const r = sendInstant('Asia/Tokyo', plain('2026-01-15T20:59:00Z', short), ms('2026-01-15T20:59:00Z'));
    expect(r.kind).toBe('missed');
    expect(r.kind === 'missed' ? r.reason : '').toMatch(/quiet hours 21:00-08:00 in Asia\/Tokyo \(2026-01-16 05:59 local .*\) would hold it 121 min, more than quietHours.broadcasts.maxHoldMinutes 60/);
    // Exactly at the limit is still held, not missed.
    const edge = sendInstant('Asia/Tokyo', plain('2026-01-15T22:00:00Z', short), ms('2026-01-15T22:00:00Z'));
    expect(edge).toMatchObject({ kind: 'at', at: ms('2026-01-15T23:00:00Z'), quiet: true });
  });

  it('with a wave: the wave instant first, then quiet hours at that instant', () => {
    const rule: SendRule = { wave: { time: '22:00', date: '2026-01-15' }, quiet: NIGHT, dueAt: 0 };
    // 22:00 local is inside 21:00-08:00: each zone at its own next 08:00.
    expect(when('UTC', rule, '2026-01-15T00:00:00Z')).toBe('2026-01-16T08:00:00.000Z');
    expect(when('Asia/Kolkata', rule, '2026-01-15T00:00:00Z')).toBe('2026-01-16T02:30:00.000Z');
    // A late run (now after the wave): the moment it would go is now.
    expect(when('UTC', { ...rule, wave: { time: '07:00', date: '2026-01-15' } }, '2026-01-15T09:00:00Z')).toBe('2026-01-15T07:00:00.000Z');
  });

  it('at the instant it was held until, it goes (no second hold)', () => {
    const rule = plain('2026-01-15T20:59:00Z');
    const until = sendInstant('Asia/Tokyo', rule, ms('2026-01-15T20:59:00Z'));
    expect(until.kind).toBe('at');
    const at = until.kind === 'at' ? until.at : 0;
    expect(sendInstant('Asia/Tokyo', rule, at)).toMatchObject({ kind: 'at', quiet: false });
  });
});
