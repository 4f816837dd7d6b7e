/**
 * The seed generator is test infrastructure for everything else (integration tests, the demo,
 * benchmarks), so it is checked against the same `checkUser` the daemon uses: a "valid" seeded
 * user that the daemon rejects, or an "invalid" one it accepts, would make those tests lie.
 */
import { readFileSync } from 'node:fs';
import { DateTime } from 'luxon';
import { describe, expect, it } from 'vitest';
import { checkUser, getField, type FieldMap } from '../../src/core/validate-user.js';
import {
  INVALID_KINDS,
  generateUsers,
  mulberry32,
  planCounts,
  seedFromString,
  type GenerateUsersOptions,
  type SeedUser,
} from '../../src/seed/generate-users.js';

const defaults = JSON.parse(readFileSync(new URL('../../config/default.json', import.meta.url), 'utf8')) as {
  users: { fields: FieldMap };
};
const fields = defaults.users.fields;
// A Tuesday, mid-morning UTC; fixed so every run sees the same documents.
const NOW = Date.parse('2026-03-10T10:17:42Z');

function gen(over: Partial<GenerateUsersOptions> = {}): SeedUser[] {
  return [...generateUsers({ count: 2000, seed: 42, inactiveRatio: 0.05, invalidRatio: 0.1, nowMs: NOW, fields, ...over })];
}

describe('generateUsers: determinism', () => {
  it('gives identical documents for the same seed and now', () => {
    expect(gen()).toEqual(gen());
  });

  it('gives different documents for another seed', () => {
    const a = gen({ seed: 1 }).map((u) => JSON.stringify(u.doc));
    const b = gen({ seed: 2 }).map((u) => JSON.stringify(u.doc));
    expect(a).not.toEqual(b);
  });

  it('mulberry32 is reproducible and within [0, 1)', () => {
    const r1 = mulberry32(7);
    const r2 = mulberry32(7);
    for (let i = 0; i < 1000; i++) {
      const v = r1();
      expect(v).toBe(r2());
      expect(v).toBeGreaterThanOrEqual(0);
      expect(v).toBeLessThan(1);
    }
  });

  it('seedFromString takes integers as is and hashes text', () => {
    expect(seedFromString('123')).toBe(123);
    expect(seedFromString('demo')).toBe(seedFromString('demo'));
    expect(seedFromString('demo')).not.toBe(seedFromString('demo2'));
  });
});

describe('generateUsers: exact shares', () => {
  it.each([
    [2000, 0.05, 0.1],
    [10_000, 0.05, 0],
    [999, 0.333, 0.017],
    [7, 0.5, 0.5],
    [1, 0.05, 0],
  ])('n=%i inactive=%f invalid=%f', (count, inactiveRatio, invalidRatio) => {
    const users = gen({ count, inactiveRatio, invalidRatio });
    const plan = planCounts(count, inactiveRatio, invalidRatio);
    expect(users).toHaveLength(count);
    expect(plan.invalid).toBe(Math.round(count * invalidRatio));
    expect(users.filter((u) => u.kind === 'invalid')).toHaveLength(plan.invalid);
    expect(users.filter((u) => u.kind === 'inactive')).toHaveLength(plan.inactive);
    expect(users.filter((u) => u.kind === 'active')).toHaveLength(plan.active);
    expect(plan.active + plan.inactive + plan.invalid).toBe(count);
  });

  it('uses Math.round of each ratio', () => {
    expect(planCounts(10_000, 0.05, 0.01)).toEqual({ total: 10_000, active: 9_400, inactive: 500, invalid: 100 });
  });

  it('rejects ratios outside 0..1 or summing above 1', () => {
    expect(() => planCounts(10, -0.1, 0)).toThrow(RangeError);
    expect(() => planCounts(10, 0, 1.5)).toThrow(RangeError);
    expect(() => planCounts(10, Number.NaN, 0)).toThrow(RangeError);
    expect(() => planCounts(10, 0.6, 0.6)).toThrow(RangeError);
  });

  it('spreads invalid documents over the run rather than bunching them at one end', () => {
    const users = gen({ count: 2000, invalidRatio: 0.1 });
    const firstHalf = users.slice(0, 1000).filter((u) => u.kind === 'invalid').length;
    expect(firstHalf).toBeGreaterThan(50);
    expect(firstHalf).toBeLessThan(150);
  });
});

describe('generateUsers: documents', () => {
  const users = gen();

  it('every active user passes checkUser', () => {
    for (const u of users.filter((x) => x.kind === 'active')) {
      const check = checkUser(u.doc, fields);
      expect(check, JSON.stringify(u.doc)).toMatchObject({ kind: 'valid' });
    }
  });

  it('every inactive user is classified inactive', () => {
    const inactive = users.filter((x) => x.kind === 'inactive');
    for (const u of inactive) expect(checkUser(u.doc, fields).kind).toBe('inactive');
    // Both ways out are represented: deactivated and unsubscribed.
    expect(inactive.some((u) => u.doc.active === false)).toBe(true);
    expect(inactive.some((u) => u.doc.active === true && u.doc.unsubscribed === true)).toBe(true);
  });

  it('every invalid document is active and fails with a reason naming the broken field', () => {
    const expectedField: Record<(typeof INVALID_KINDS)[number], string> = {
      'bad-email': fields.email,
      'email-crlf': fields.email,
      'name-crlf': fields.name,
      'unknown-timezone': fields.timezone,
      'bad-time': fields.emailTimes,
      'missing-times': fields.emailTimes,
      'times-not-array': fields.emailTimes,
    };
    const invalid = users.filter((x) => x.kind === 'invalid');
    expect(new Set(invalid.map((u) => u.invalid))).toEqual(new Set(INVALID_KINDS));
    for (const u of invalid) {
      expect(u.doc.active).toBe(true);
      const check = checkUser(u.doc, fields);
      expect(check.kind, `${u.invalid}: ${JSON.stringify(u.doc)}`).toBe('invalid');
      if (check.kind === 'invalid' && u.invalid !== undefined) {
        expect(check.reason.length).toBeGreaterThan(0);
        expect(check.reason.startsWith(`${expectedField[u.invalid]}:`), `${u.invalid}: ${check.reason}`).toBe(true);
      }
    }
  });

  it('emails are unique, ids are unique, names never contain CR/LF outside the name-crlf kind', () => {
    const emails = users.map((u) => u.doc.email);
    expect(new Set(emails).size).toBe(users.length);
    expect(new Set(users.map((u) => String(u.doc._id))).size).toBe(users.length);
    for (const u of users) {
      if (u.invalid === 'name-crlf') continue;
      const name = u.doc.name;
      if (name !== undefined) expect(String(name)).not.toMatch(/[\r\n]/);
    }
    for (const u of users.filter((x) => x.kind !== 'invalid')) expect(u.doc.email).toMatch(/^user\d{6}@example\.test$/);
  });

  it('continues the numbering from firstIndex', () => {
    const [first] = gen({ count: 1, firstIndex: 123 });
    expect(first?.doc.email).toBe('user000123@example.test');
  });

  it('looks like a real user base: names with non-ASCII letters, a zone mix, clustered times, some weekday-only', () => {
    const active = users.filter((u) => u.kind === 'active');
    expect(active.some((u) => /[^\p{ASCII}]/u.test(String(u.doc.name)))).toBe(true);
    const zones = new Set(active.map((u) => u.doc.timezone));
    expect(zones.size).toBeGreaterThanOrEqual(15);
    expect(zones.has('America/New_York')).toBe(true);
    const times = active.flatMap((u) => u.doc.emailTimes as string[]);
    const atNineish = times.filter((t) => t === '07:00' || t === '08:00' || t === '09:00').length;
    expect(atNineish / times.length).toBeGreaterThan(0.3);
    expect(times.some((t) => t.endsWith(':30'))).toBe(true);
    for (const u of active) {
      const t = u.doc.emailTimes as string[];
      expect(t.length).toBeGreaterThanOrEqual(1);
      expect(t.length).toBeLessThanOrEqual(3);
      expect(new Set(t).size).toBe(t.length);
    }
    expect(active.some((u) => JSON.stringify(u.doc.emailDays) === '[1,2,3,4,5]')).toBe(true);
    for (const u of users) expect(u.doc.updatedAt).toEqual(new Date(NOW));
  });

  it('writes the configured field names, dotted paths as nested objects', () => {
    const mapped: FieldMap = {
      ...fields,
      id: 'userId',
      email: 'contact.email',
      timezone: 'prefs.tz',
      emailTimes: 'prefs.times',
      active: 'isActive',
    };
    const mappedUsers = gen({ fields: mapped, count: 300 });
    for (const u of mappedUsers) {
      expect(u.doc.email).toBeUndefined();
      expect(typeof getField(u.doc, 'userId')).toBe('string');
      const kind = checkUser(u.doc, mapped).kind;
      expect(kind).toBe(u.kind === 'active' ? 'valid' : u.kind);
    }
  });
});

describe('generateUsers: soonMinutes (demo)', () => {
  it.each([1, 3, 10])("puts each user's first time within the next %i minutes of their own zone", (soonMinutes) => {
    const users = gen({ count: 1500, soonMinutes, invalidRatio: 0 });
    const minuteStart = Math.floor(NOW / 60_000) * 60_000;
    const perMinute = new Map<number, number>();
    for (const u of users) {
      const zone = (u.doc.timezone as string | undefined) ?? 'UTC';
      const first = (u.doc.emailTimes as string[])[0];
      let found: number | undefined;
      for (let k = 1; k <= soonMinutes; k++) {
        if (DateTime.fromMillis(minuteStart + k * 60_000, { zone }).toFormat('HH:mm') === first) found = k;
      }
      expect(found, `${zone} ${String(first)}`).toBeDefined();
      if (found !== undefined) perMinute.set(found, (perMinute.get(found) ?? 0) + 1);
      // No day filter, so every user fires today.
      expect(u.doc.emailDays).toBeUndefined();
      if (u.kind === 'active') expect(checkUser(u.doc, fields).kind).toBe('valid');
    }
    // Spread across the whole window, evenly.
    expect(perMinute.size).toBe(soonMinutes);
    for (const c of perMinute.values()) expect(Math.abs(c - 1500 / soonMinutes)).toBeLessThanOrEqual(1);
  });

  it('rejects a window outside 1..1440 minutes', () => {
    expect(() => gen({ soonMinutes: 0 })).toThrow(RangeError);
    expect(() => gen({ soonMinutes: 1441 })).toThrow(RangeError);
  });
});
