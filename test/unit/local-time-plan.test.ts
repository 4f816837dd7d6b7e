/**
 * Where a local-time broadcast falls in UTC (core/local-time-plan.ts). Expected instants are worked
 * out by hand from the zones' published offsets and written as UTC literals; luxon appears only
 * to check that the tz database agrees with those offsets.
 */
import { IANAZone } from 'luxon';
import { describe, expect, it } from 'vitest';
import { formatOffset, groupByInstant, planLocalTime, timeInWindow, usersBefore, waveMinutes } from '../../src/core/local-time-plan.js';
import type { ZoneCounts } from '../../src/ports/broadcasts.js';

const counts = (zones: Record<string, number>, missing = 0, notString = 0): ZoneCounts => ({ zones: new Map(Object.entries(zones)), missing, notString });
const iso = (t: number): string => new Date(t).toISOString();
const offsetAt = (zone: string, at: string): number => IANAZone.create(zone).offset(Date.parse(at));

describe('planLocalTime', () => {
  // 2027-03-14: North America springs forward (New York 02:00 EST -> 03:00 EDT; St. John's 02:00 NST -> 03:00 NDT).
  const wave = { time: '09:00', date: '2027-03-14' };
  const plan = planLocalTime(
    counts({ 'Asia/Kolkata': 30, 'Asia/Kathmandu': 20, 'Australia/Eucla': 4, 'Asia/Tokyo': 6, 'Europe/Berlin': 10, 'Europe/Paris': 5, 'America/St_Johns': 7, 'America/New_York': 8, 'Mars/Olympus_Mons': 3 }, 9, 2),
    wave,
  );

  it('the tz database agrees with the offsets the literals assume', () => {
    expect(offsetAt('Asia/Kolkata', '2027-03-14T03:30:00Z')).toBe(330);
    expect(offsetAt('Asia/Kathmandu', '2027-03-14T03:15:00Z')).toBe(345);
    expect(offsetAt('Australia/Eucla', '2027-03-14T00:15:00Z')).toBe(525);
    expect(offsetAt('America/St_Johns', '2027-03-14T11:30:00Z')).toBe(-150);
    expect(offsetAt('America/New_York', '2027-03-14T13:00:00Z')).toBe(-240);
    expect(offsetAt('America/New_York', '2027-03-14T06:59:00Z')).toBe(-300);
  });

  it('places each zone at HH:MM on its own clock: half- and quarter-hour zones, a DST-change day', () => {
    expect(plan.zones.map((z) => [z.zone, iso(z.at), z.offsetMinutes, z.users])).toEqual([
      ['Asia/Tokyo', '2027-03-14T00:00:00.000Z', 540, 6],
      ['Australia/Eucla', '2027-03-14T00:15:00.000Z', 525, 4],
      ['Asia/Kathmandu', '2027-03-14T03:15:00.000Z', 345, 20],
      ['Asia/Kolkata', '2027-03-14T03:30:00.000Z', 330, 30],
      ['Europe/Berlin', '2027-03-14T08:00:00.000Z', 60, 10],
      ['Europe/Paris', '2027-03-14T08:00:00.000Z', 60, 5],
      ['UTC', '2027-03-14T09:00:00.000Z', 0, 9], // a missing zone is UTC, as for scheduled mail
      ['America/St_Johns', '2027-03-14T11:30:00.000Z', -150, 7], // NDT, the new offset of that day
      ['America/New_York', '2027-03-14T13:00:00.000Z', -240, 8], // EDT
    ]);
    expect(plan.zones.every((z) => z.localTime === '09:00')).toBe(true);
    expect(plan.total).toBe(99);
  });

  it('counts an unknown zone and a non-string one apart, as "invalid zone"', () => {
    expect(plan.invalid.users).toBe(5);
    expect(plan.invalid.values).toEqual(['(not a string)', 'Mars/Olympus_Mons']);
  });

  it('sums recipients per UTC hour, with how many zones each', () => {
    expect(plan.hours.map((h) => [iso(h.hourMs), h.users, h.zones])).toEqual([
      ['2027-03-14T00:00:00.000Z', 10, 2],
      ['2027-03-14T03:00:00.000Z', 50, 2],
      ['2027-03-14T08:00:00.000Z', 15, 2],
      ['2027-03-14T09:00:00.000Z', 9, 1],
      ['2027-03-14T11:00:00.000Z', 7, 1],
      ['2027-03-14T13:00:00.000Z', 8, 1],
    ]);
    expect(plan.hours.reduce((a, h) => a + h.users, 0)).toBe(plan.total);
  });

  it('a time in a DST gap goes when the gap ends, and says what the clock reads then', () => {
    // New York: 02:30 does not exist on 2027-03-14 (02:00 EST -> 03:00 EDT, at 07:00 UTC).
    const gap = planLocalTime(counts({ 'America/New_York': 1, 'Asia/Kolkata': 1 }), { time: '02:30', date: '2027-03-14' });
    expect(gap.zones.map((z) => [z.zone, iso(z.at), z.localTime])).toEqual([
      ['Asia/Kolkata', '2027-03-13T21:00:00.000Z', '02:30'],
      ['America/New_York', '2027-03-14T07:00:00.000Z', '03:00'],
    ]);
    // Lord Howe moves by half an hour (02:00 +10:30 -> 02:30 +11:00 on 2027-10-03): 02:15 goes at 02:30 local.
    expect(offsetAt('Australia/Lord_Howe', '2027-10-02T15:30:00Z')).toBe(660);
    const half = planLocalTime(counts({ 'Australia/Lord_Howe': 2 }), { time: '02:15', date: '2027-10-03' });
    expect(half.zones.map((z) => [iso(z.at), z.localTime, z.offsetMinutes])).toEqual([['2027-10-02T15:30:00.000Z', '02:30', 660]]);
  });

  it('a repeated time (fall back) goes at its first occurrence', () => {
    // New York 2027-11-07: 01:30 EDT (05:30 UTC), then 01:30 EST (06:30 UTC).
    const rep = planLocalTime(counts({ 'America/New_York': 1 }), { time: '01:30', date: '2027-11-07' });
    expect(iso(rep.zones[0]?.at ?? 0)).toBe('2027-11-07T05:30:00.000Z');
  });

  it('refuses a malformed wave even with nobody to place', () => {
    expect(() => planLocalTime(counts({}), { time: '9:00', date: '2027-03-14' })).toThrow(RangeError);
    expect(() => planLocalTime(counts({}), { time: '09:00', date: '2027-02-30' })).toThrow(RangeError);
  });
});

describe('the views over a plan', () => {
  const plan = planLocalTime(counts({ 'Europe/Berlin': 10, 'Europe/Paris': 25, 'Asia/Kolkata': 3 }), { time: '09:00', date: '2027-01-15' });

  it('groupByInstant: zones sharing an instant on one row, busiest first', () => {
    expect(groupByInstant(plan).map((g) => [iso(g.at), g.offsetMinutes, g.users, g.zones.map((z) => z.zone)])).toEqual([
      ['2027-01-15T03:30:00.000Z', 330, 3, ['Asia/Kolkata']],
      ['2027-01-15T08:00:00.000Z', 60, 35, ['Europe/Paris', 'Europe/Berlin']],
    ]);
  });

  it('waveMinutes: per plan minute, instants outside the plan left out', () => {
    const from = Date.parse('2027-01-15T03:00:00Z');
    expect(waveMinutes(plan, from, 6 * 60)).toEqual([
      { index: 30, users: 3, zones: ['Asia/Kolkata'] },
      { index: 300, users: 35, zones: ['Europe/Berlin', 'Europe/Paris'] },
    ]);
    expect(waveMinutes(plan, from, 300)).toEqual([{ index: 30, users: 3, zones: ['Asia/Kolkata'] }]);
    expect(waveMinutes(plan, Date.parse('2027-01-15T03:31:00Z'), 60)).toEqual([]);
  });

  it('usersBefore: recipients whose instant is already past', () => {
    expect(usersBefore(plan, Date.parse('2027-01-15T05:00:00Z'))).toBe(3);
    expect(usersBefore(plan, Date.parse('2027-01-15T08:00:00.001Z'))).toBe(38);
  });

  it('formatOffset and timeInWindow', () => {
    expect([330, 345, -150, 0, -600].map(formatOffset)).toEqual(['+05:30', '+05:45', '-02:30', '+00:00', '-10:00']);
    const night = { start: '21:00', end: '08:00' };
    expect(['20:59', '21:00', '23:30', '00:00', '07:59', '08:00'].map((t) => timeInWindow(t, night))).toEqual([false, true, true, true, true, false]);
    expect(timeInWindow('12:30', { start: '12:00', end: '14:00' })).toBe(true);
    expect(timeInWindow('14:00', { start: '12:00', end: '14:00' })).toBe(false);
    expect(timeInWindow('12:30', { start: null, end: null })).toBe(false);
  });
});
