/**
 * Fire-time rule tests. Expected instants are worked out by hand from the zones' published offsets
 * and written as UTC literals; luxon appears here only to check the tz database agrees with those
 * offsets (and, in the brute-force check, as the "offset at instant t" oracle the rule is defined on).
 */
import { IANAZone } from 'luxon';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  epochMinute,
  fireInstant,
  isValidZone,
  nextFire,
  nextFires,
  parseHHMM,
} from '../../src/core/fire-time.js';

const ms = (iso: string): number => {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) throw new Error(`bad literal ${iso}`);
  return t;
};
const iso = (t: number): string => new Date(t).toISOString();
const fire = (zone: string, date: string, time: string): string => iso(fireInstant(zone, date, time));
/** Offset in minutes of `zone` at instant `at` (luxon), for verifying tz facts. */
const offsetAt = (zone: string, at: string): number => IANAZone.create(zone).offset(ms(at));

describe('fireInstant: ordinary times', () => {
  it('subtracts the offset in force', () => {
    expect(fire('UTC', '2026-01-05', '09:00')).toBe('2026-01-05T09:00:00.000Z');
    expect(fire('America/New_York', '2026-01-05', '09:00')).toBe('2026-01-05T14:00:00.000Z'); // EST -5
    expect(fire('America/New_York', '2026-07-01', '09:00')).toBe('2026-07-01T13:00:00.000Z'); // EDT -4
    expect(fire('Europe/London', '2026-07-01', '09:00')).toBe('2026-07-01T08:00:00.000Z'); // BST +1
  });

  it('Asia/Kathmandu (+05:45): 09:00 fires at 03:15Z', () => {
    expect(fire('Asia/Kathmandu', '2026-01-01', '09:00')).toBe('2026-01-01T03:15:00.000Z');
    expect(fire('Asia/Kathmandu', '2026-06-15', '00:00')).toBe('2026-06-14T18:15:00.000Z');
  });

  it('midnight and 23:59 are slots of their own date', () => {
    expect(fire('America/New_York', '2026-01-05', '00:00')).toBe('2026-01-05T05:00:00.000Z');
    expect(fire('America/New_York', '2026-01-05', '23:59')).toBe('2026-01-06T04:59:00.000Z');
  });
});

describe('fireInstant: DST gaps fire when the gap ends', () => {
  it('America/New_York 2026-03-08 02:30 (gap 02:00-03:00) fires at 03:00 EDT = 07:00Z, not 03:30', () => {
    expect(fire('America/New_York', '2026-03-08', '02:30')).toBe('2026-03-08T07:00:00.000Z');
    expect(fire('America/New_York', '2026-03-08', '02:00')).toBe('2026-03-08T07:00:00.000Z');
    expect(fire('America/New_York', '2026-03-08', '02:59')).toBe('2026-03-08T07:00:00.000Z');
    // Either side of the gap is ordinary.
    expect(fire('America/New_York', '2026-03-08', '01:59')).toBe('2026-03-08T06:59:00.000Z'); // EST
    expect(fire('America/New_York', '2026-03-08', '03:00')).toBe('2026-03-08T07:00:00.000Z'); // EDT
    expect(fire('America/New_York', '2026-03-08', '03:01')).toBe('2026-03-08T07:01:00.000Z');
  });

  it('Europe/London 2026-03-29 01:30 (gap 01:00-02:00) fires at 02:00 BST = 01:00Z', () => {
    expect(fire('Europe/London', '2026-03-29', '01:30')).toBe('2026-03-29T01:00:00.000Z');
    expect(fire('Europe/London', '2026-03-29', '00:59')).toBe('2026-03-29T00:59:00.000Z');
    expect(fire('Europe/London', '2026-03-29', '02:00')).toBe('2026-03-29T01:00:00.000Z');
  });
});

describe('fireInstant: ambiguous times fire once, at the first occurrence', () => {
  it('America/New_York 2026-11-01 01:30 fires at 01:30 EDT = 05:30Z (not 06:30Z EST)', () => {
    expect(fire('America/New_York', '2026-11-01', '01:30')).toBe('2026-11-01T05:30:00.000Z');
    expect(fire('America/New_York', '2026-11-01', '01:00')).toBe('2026-11-01T05:00:00.000Z');
    expect(fire('America/New_York', '2026-11-01', '01:59')).toBe('2026-11-01T05:59:00.000Z');
    expect(fire('America/New_York', '2026-11-01', '02:00')).toBe('2026-11-01T07:00:00.000Z'); // EST
  });

  it('fires once: the next fire after it is the next day, not the second 01:30', () => {
    const next = nextFire('America/New_York', '01:30', undefined, ms('2026-11-01T05:30:00.001Z'));
    expect(next).toEqual({ at: ms('2026-11-02T06:30:00Z'), localDate: '2026-11-02' });
    // Same from inside the repeated hour and from exactly the second occurrence.
    expect(nextFire('America/New_York', '01:30', undefined, ms('2026-11-01T06:30:00Z'))?.at).toBe(
      ms('2026-11-02T06:30:00Z'),
    );
  });

  it('Europe/London 2026-10-25 01:30 fires at 01:30 BST = 00:30Z', () => {
    expect(fire('Europe/London', '2026-10-25', '01:30')).toBe('2026-10-25T00:30:00.000Z');
    expect(fire('Europe/London', '2026-10-25', '02:00')).toBe('2026-10-25T02:00:00.000Z'); // GMT
  });
});

describe('fireInstant: Australia/Lord_Howe (30-minute DST shift)', () => {
  // Facts assumed: standard +10:30 (630 min), DST +11:00 (660 min).
  // DST starts 2026-10-04 (first Sunday of October) at 02:00 local standard = 2026-10-03T15:30Z.
  // DST ends 2026-04-05 (first Sunday of April) at 02:00 local DST = 2026-04-04T15:00Z.
  beforeAll(() => {
    const z = 'Australia/Lord_Howe';
    const facts: Array<[string, number]> = [
      ['2026-10-03T15:29:00Z', 630],
      ['2026-10-03T15:30:00Z', 660],
      ['2026-04-04T14:59:00Z', 660],
      ['2026-04-04T15:00:00Z', 630],
      ['2026-07-01T00:00:00Z', 630],
      ['2026-01-01T00:00:00Z', 660],
    ];
    for (const [at, expected] of facts) {
      const actual = offsetAt(z, at);
      if (actual !== expected) {
        throw new Error(
          `tz database disagrees with this test's Lord Howe facts: offset at ${at} is ${actual} min, expected ${expected}`,
        );
      }
    }
    if (new Date(ms('2026-10-04T00:00:00Z')).getUTCDay() !== 0 || new Date(ms('2026-04-05T00:00:00Z')).getUTCDay() !== 0) {
      throw new Error('calendar facts wrong: 2026-10-04 and 2026-04-05 should be Sundays');
    }
  });

  it('02:15 on 2026-10-04 (gap 02:00-02:30) fires at 02:30 local = 2026-10-03T15:30Z', () => {
    expect(fire('Australia/Lord_Howe', '2026-10-04', '02:15')).toBe('2026-10-03T15:30:00.000Z');
    expect(fire('Australia/Lord_Howe', '2026-10-04', '02:30')).toBe('2026-10-03T15:30:00.000Z');
    expect(fire('Australia/Lord_Howe', '2026-10-04', '01:59')).toBe('2026-10-03T15:29:00.000Z');
  });

  it('01:45 on 2026-04-05 (repeated 01:30-02:00) fires at its first occurrence, +11:00 = 2026-04-04T14:45Z', () => {
    expect(fire('Australia/Lord_Howe', '2026-04-05', '01:45')).toBe('2026-04-04T14:45:00.000Z');
    expect(fire('Australia/Lord_Howe', '2026-04-05', '01:29')).toBe('2026-04-04T14:29:00.000Z');
    expect(fire('Australia/Lord_Howe', '2026-04-05', '02:00')).toBe('2026-04-04T15:30:00.000Z'); // +10:30
  });
});

describe('fireInstant: a gap that crosses midnight (Pacific/Apia skipped 2011-12-30)', () => {
  // Samoa moved from -10:00 to +14:00: 2011-12-29T23:59:59-10:00 was followed by 2011-12-31T00:00+14:00,
  // the instant 2011-12-30T10:00Z. No local clock ever read 2011-12-30.
  beforeAll(() => {
    const before = offsetAt('Pacific/Apia', '2011-12-30T09:59:00Z');
    const after = offsetAt('Pacific/Apia', '2011-12-30T10:00:00Z');
    if (before !== -600 || after !== 840) {
      throw new Error(`tz database lacks the Samoa 2011 date-line move (offsets ${before}, ${after})`);
    }
  });

  it('a slot of the skipped date fires at the gap end, whose local date is the next day', () => {
    expect(fire('Pacific/Apia', '2011-12-30', '09:00')).toBe('2011-12-30T10:00:00.000Z');
    expect(nextFire('Pacific/Apia', '09:00', undefined, ms('2011-12-29T20:00:00Z'))).toEqual({
      at: ms('2011-12-30T10:00:00Z'),
      localDate: '2011-12-30', // the key keeps date D
    });
  });

  it('two dates can share one instant; each date still fires exactly once', () => {
    const from = ms('2011-12-30T09:00:00Z'); // local 2011-12-29 23:00 -10:00
    const first = nextFire('Pacific/Apia', '00:00', undefined, from);
    expect(first).toEqual({ at: ms('2011-12-30T10:00:00Z'), localDate: '2011-12-30' });
    const second = nextFire('Pacific/Apia', '00:00', undefined, first?.at ?? 0, first?.localDate);
    expect(second).toEqual({ at: ms('2011-12-30T10:00:00Z'), localDate: '2011-12-31' });
    const third = nextFire('Pacific/Apia', '00:00', undefined, second?.at ?? 0, second?.localDate);
    expect(third).toEqual({ at: ms('2011-12-31T10:00:00Z'), localDate: '2012-01-01' });
  });

  it('searches from the day before the local date of fromMs', () => {
    // fromMs is the gap end itself; its local date is 2011-12-31, but 2011-12-30's slot fires now.
    expect(nextFire('Pacific/Apia', '12:00', undefined, ms('2011-12-30T10:00:00Z'))).toEqual({
      at: ms('2011-12-30T10:00:00Z'),
      localDate: '2011-12-30',
    });
  });
});

describe('fireInstant agrees with a brute-force reading of the rule', () => {
  // Rule, formally: fire(W) = min { t : t + offset(t) >= W } with W the wall time as if UTC.
  // Brute force over every minute t of a 3-day window (all these transitions are at whole minutes).
  const cases: Array<[string, string]> = [
    ['America/New_York', '2026-03-08'],
    ['America/New_York', '2026-11-01'],
    ['Europe/London', '2026-03-29'],
    ['Europe/London', '2026-10-25'],
    ['Australia/Lord_Howe', '2026-10-04'],
    ['Australia/Lord_Howe', '2026-04-05'],
    ['Pacific/Apia', '2011-12-30'],
    ['Pacific/Apia', '2011-12-31'],
    ['Asia/Kathmandu', '1986-01-01'], // +05:30 -> +05:45 at midnight: 00:00-00:14 did not exist
    ['America/Sao_Paulo', '2018-11-04'], // DST started at midnight: 00:00-00:59 did not exist
  ];
  for (const [zone, date] of cases) {
    it(`${zone} ${date}, every 5 minutes`, () => {
      const z = IANAZone.create(zone);
      const D = ms(`${date}T00:00:00Z`);
      const start = D - 86_400_000;
      const prefixMax: number[] = [];
      let max = -Infinity;
      for (let t = start; t < D + 2 * 86_400_000; t += 60_000) {
        max = Math.max(max, t + z.offset(t) * 60_000);
        prefixMax.push(max);
      }
      for (let minutes = 0; minutes < 1440; minutes += 5) {
        const W = D + minutes * 60_000;
        const idx = prefixMax.findIndex((v) => v >= W);
        const time = `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;
        expect(iso(fireInstant(zone, date, time)), `${zone} ${date} ${time}`).toBe(iso(start + idx * 60_000));
      }
    });
  }
});

describe('nextFire', () => {
  it('is inclusive of fromMs and otherwise moves to the next date', () => {
    const at = ms('2026-01-05T14:00:00Z'); // 09:00 EST
    expect(nextFire('America/New_York', '09:00', undefined, at)).toEqual({ at, localDate: '2026-01-05' });
    expect(nextFire('America/New_York', '09:00', undefined, at + 1)).toEqual({
      at: ms('2026-01-06T14:00:00Z'),
      localDate: '2026-01-06',
    });
    // Late in the local day of fromMs, but already the next day in UTC.
    expect(nextFire('America/New_York', '23:30', undefined, ms('2026-01-06T04:00:00Z'))).toEqual({
      at: ms('2026-01-06T04:30:00Z'),
      localDate: '2026-01-05',
    });
  });

  it('emailDays: days [1] (Monday) from a Saturday gives the next Monday', () => {
    // 2026-03-07 is a Saturday.
    expect(nextFire('UTC', '09:00', [1], ms('2026-03-07T12:00:00Z'))).toEqual({
      at: ms('2026-03-09T09:00:00Z'),
      localDate: '2026-03-09',
    });
    // From Monday after the slot: a week later.
    expect(nextFire('UTC', '09:00', [1], ms('2026-03-09T09:00:01Z'))?.localDate).toBe('2026-03-16');
  });

  it('emailDays use the LOCAL weekday, which can differ from the UTC weekday', () => {
    // Pacific/Auckland in March 2026 is NZDT, +13:00. Monday 09:00 local = Sunday 20:00Z.
    expect(nextFire('Pacific/Auckland', '09:00', [1], ms('2026-03-07T00:00:00Z'))).toEqual({
      at: ms('2026-03-08T20:00:00Z'),
      localDate: '2026-03-09',
    });
    // Pacific/Kiritimati is +14:00. Sunday 09:00 local = Saturday 19:00Z.
    expect(nextFire('Pacific/Kiritimati', '09:00', [0], ms('2026-03-07T12:00:00Z'))).toEqual({
      at: ms('2026-03-07T19:00:00Z'),
      localDate: '2026-03-08',
    });
    // America/Los_Angeles (PDT -7 from 2026-03-08): Friday 20:00 local = Saturday 03:00Z.
    expect(nextFire('America/Los_Angeles', '20:00', [5], ms('2026-03-09T00:00:00Z'))).toEqual({
      at: ms('2026-03-14T03:00:00Z'),
      localDate: '2026-03-13',
    });
  });

  it('returns undefined when no weekday is allowed', () => {
    expect(nextFire('UTC', '09:00', [], 0)).toBeUndefined();
    expect(nextFire('UTC', '09:00', [7, -1, 1.5], 0)).toBeUndefined();
  });

  it('rejects bad input with RangeError', () => {
    expect(() => nextFire('Mars/Olympus', '09:00', undefined, 0)).toThrow(RangeError);
    expect(() => nextFire('UTC', '9:00', undefined, 0)).toThrow(RangeError);
    expect(() => nextFire('UTC', '09:00', undefined, Number.NaN)).toThrow(RangeError);
    expect(() => fireInstant('UTC', '2026-02-30', '09:00')).toThrow(RangeError);
    expect(() => fireInstant('UTC', '2026-2-3', '09:00')).toThrow(RangeError);
    expect(() => fireInstant('UTC', '2026-02-03', '24:00')).toThrow(RangeError);
  });
});

describe('nextFires', () => {
  it('merges a user’s slots in instant order, with UTC and local ISO times', () => {
    const got = nextFires('America/New_York', ['09:00', '02:30'], undefined, ms('2026-03-07T12:00:00Z'), 4);
    expect(got).toEqual([
      { at: ms('2026-03-07T14:00:00Z'), localDate: '2026-03-07', time: '09:00', localIso: '2026-03-07T09:00:00.000-05:00' },
      { at: ms('2026-03-08T07:00:00Z'), localDate: '2026-03-08', time: '02:30', localIso: '2026-03-08T03:00:00.000-04:00' },
      { at: ms('2026-03-08T13:00:00Z'), localDate: '2026-03-08', time: '09:00', localIso: '2026-03-08T09:00:00.000-04:00' },
      { at: ms('2026-03-09T06:30:00Z'), localDate: '2026-03-09', time: '02:30', localIso: '2026-03-09T02:30:00.000-04:00' },
    ]);
  });

  it('respects days and count', () => {
    const got = nextFires('UTC', ['09:00'], [1, 3], ms('2026-03-07T12:00:00Z'), 3);
    expect(got.map((f) => f.localDate)).toEqual(['2026-03-09', '2026-03-11', '2026-03-16']);
    expect(nextFires('UTC', ['09:00'], [], 0, 3)).toEqual([]);
    expect(nextFires('UTC', ['09:00'], undefined, 0, 0)).toEqual([]);
  });
});

describe('parseHHMM', () => {
  it('accepts 00:00..23:59 with two digits each', () => {
    expect(parseHHMM('00:00')).toEqual({ h: 0, m: 0 });
    expect(parseHHMM('09:05')).toEqual({ h: 9, m: 5 });
    expect(parseHHMM('23:59')).toEqual({ h: 23, m: 59 });
  });

  it.each([
    '24:00', '9:00', '09:60', '09:00 ', ' 09:00', '0900', '09:0', '09:00:00', '-1:00', '', '٠٩:٠٠', '09:00\n',
  ])('rejects %j', (s) => {
    expect(parseHHMM(s)).toBeUndefined();
  });

  it.each([900, null, undefined, {}, ['09:00']])('rejects non-string %j', (v) => {
    expect(parseHHMM(v)).toBeUndefined();
  });
});

describe('isValidZone and epochMinute', () => {
  it('knows IANA names', () => {
    expect(isValidZone('America/New_York')).toBe(true);
    expect(isValidZone('UTC')).toBe(true);
    expect(isValidZone('Mars/Olympus')).toBe(false);
    expect(isValidZone('')).toBe(false);
    expect(isValidZone(42)).toBe(false);
  });

  it('floors to the minute', () => {
    expect(epochMinute(ms('2026-01-05T09:00:59.999Z'))).toBe(ms('2026-01-05T09:00:00Z') / 60_000);
    expect(epochMinute(-1)).toBe(-1);
  });
});
