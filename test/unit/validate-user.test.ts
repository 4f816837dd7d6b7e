/**
 * checkUser: one raw user document in, a served user or a reason out. Uses the field map shipped
 * in config/default.json, plus a custom mapping as an application with other field names would.
 */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { checkRecipient, checkUser, type FieldMap } from '../../src/core/validate-user.js';
import type { RawUser } from '../../src/ports/index.js';

const fields: FieldMap = loadConfig({ env: {} }).config.users.fields;

function base(over: RawUser = {}): RawUser {
  return { _id: 'u1', email: 'ada@example.test', name: 'Ada', active: true, emailTimes: ['09:00'], ...over };
}

/** The reason of an invalid result; fails the test when the document was not rejected. */
function reasonOf(doc: RawUser, f: FieldMap = fields): string {
  const r = checkUser(doc, f);
  if (r.kind !== 'invalid') throw new Error(`expected invalid, got ${JSON.stringify(r)}`);
  return r.reason;
}

/** A minimal stand-in for a BSON ObjectId: only toHexString matters to checkUser. */
class FakeObjectId {
  constructor(readonly hex: string) {}
  toHexString(): string {
    return this.hex;
  }
}

describe('checkUser: valid users', () => {
  it('normalises times (deduplicated, sorted), days (sorted) and defaults the zone to UTC', () => {
    const r = checkUser(base({ emailTimes: ['18:30', '07:05', '18:30', '00:00'], emailDays: [5, 1, 3, 1] }), fields);
    expect(r).toEqual({
      kind: 'valid',
      user: {
        id: 'u1',
        email: 'ada@example.test',
        name: 'Ada',
        timezone: 'UTC',
        times: ['00:00', '07:05', '18:30'],
        days: [1, 3, 5],
      },
    });
  });

  it('keeps a known IANA zone and leaves days undefined when the field is absent', () => {
    const r = checkUser(base({ timezone: 'Asia/Kathmandu', emailTimes: ['23:59'] }), fields);
    expect(r.kind).toBe('valid');
    if (r.kind !== 'valid') return;
    expect(r.user.timezone).toBe('Asia/Kathmandu');
    expect(r.user.days).toBeUndefined();
    expect(r.user.times).toEqual(['23:59']);
  });

  it('treats a missing, null or empty name as no name', () => {
    for (const name of [undefined, null, '']) {
      const r = checkUser(base({ name }), fields);
      expect(r.kind).toBe('valid');
      if (r.kind === 'valid') expect(r.user.name).toBeUndefined();
    }
  });

  it('turns ObjectId-like and numeric ids into strings', () => {
    const hex = '65f0a1b2c3d4e5f6a7b8c9d0';
    const r = checkUser(base({ _id: new FakeObjectId(hex) }), fields);
    expect(r.kind === 'valid' && r.user.id).toBe(hex);
    const n = checkUser(base({ _id: 42 }), fields);
    expect(n.kind === 'valid' && n.user.id).toBe('n:42');
  });

  it('gives ids that print alike different ids: 1 and "1", an ObjectId and its hex string', () => {
    const hex = '65f0a1b2c3d4e5f6a7b8c9d0';
    const ids = [1, '1', new FakeObjectId(hex), hex].map((_id) => {
      const r = checkUser(base({ _id }), fields);
      return r.kind === 'valid' ? r.user.id : r.kind;
    });
    expect(ids).toEqual(['n:1', '1', hex, `s:${hex}`]);
  });

  it('accepts an id of 4,096 bytes; a longer one is invalid, reported by a short digest', () => {
    expect(checkUser(base({ _id: 'x'.repeat(4096) }), fields).kind).toBe('valid');
    const r = checkUser(base({ _id: 'y'.repeat(100_000) }), fields);
    expect(r.kind).toBe('invalid');
    if (r.kind !== 'invalid') return;
    expect(r.id).toMatch(/^h:[\w-]{43}$/);
    expect(r.reason).toMatch(/^_id: 100000 bytes long, more than 4096/);
  });

  it('accepts exactly 24 distinct times', () => {
    const times = Array.from({ length: 24 }, (_, h) => `${String(h).padStart(2, '0')}:00`);
    const r = checkUser(base({ emailTimes: [...times].reverse() }), fields);
    expect(r.kind === 'valid' && r.user.times).toEqual(times);
  });
});

describe('checkUser: inactive users', () => {
  it.each([
    ['active: false', { active: false }],
    ['active missing', { active: undefined }],
    ['active is the string "true"', { active: 'true' }],
    ['unsubscribed: true', { unsubscribed: true }],
  ])('%s -> inactive', (_label, over) => {
    expect(checkUser(base(over), fields)).toEqual({ kind: 'inactive', id: 'u1' });
  });

  it('an inactive user is not validated further (a bad email does not make it invalid)', () => {
    expect(checkUser(base({ active: false, email: 'nope' }), fields)).toEqual({ kind: 'inactive', id: 'u1' });
  });

  it('unsubscribed: false, null or absent is still served', () => {
    for (const unsubscribed of [false, null, undefined]) expect(checkUser(base({ unsubscribed }), fields).kind, String(unsubscribed)).toBe('valid');
  });

  it.each<[string, unknown, string]>([
    ['"true"', 'true', '"true"'],
    ['"false" (a string is not false)', 'false', '"false"'],
    ['"yes"', 'yes', '"yes"'],
    ['1', 1, '1'],
    ['0', 0, '0'],
    ['{}', {}, 'an object'],
    ['[]', [], 'an array'],
    ['""', '', '""'],
  ])('unsubscribed: %s is never served, and is invalid naming the field', (_label, unsubscribed, shown) => {
    const r = checkUser(base({ unsubscribed }), fields);
    expect(r.kind).toBe('invalid');
    expect(reasonOf(base({ unsubscribed }))).toBe(`unsubscribed: ${shown} is not true or false; treated as unsubscribed (no mail)`);
    // Broadcasts go through the same check.
    expect(checkRecipient(base({ unsubscribed }), fields).kind).toBe('invalid');
  });

  it('an inactive user with an odd unsubscribed value is just inactive (not served either way)', () => {
    expect(checkUser(base({ active: false, unsubscribed: 'true' }), fields)).toEqual({ kind: 'inactive', id: 'u1' });
  });
});

describe('checkUser: invalid users name the field', () => {
  it.each<[string, RawUser, string]>([
    ['email missing', { email: undefined }, 'email'],
    ['email not a string', { email: 12 }, 'email'],
    ['email without @', { email: 'ada.example.test' }, 'email'],
    ['email with two @', { email: 'ada@b@example.test' }, 'email'],
    ['email with a space', { email: 'ada lovelace@example.test' }, 'email'],
    ['email without a dot in the domain', { email: 'ada@localhost' }, 'email'],
    ['email with CRLF header injection', { email: 'ada@example.test\r\nBcc: victim@example.test' }, 'email'],
    ['email with a bare LF', { email: 'ada@example.test\nBcc: v@example.test' }, 'email'],
    ['email with a NUL', { email: 'ada\u0000@example.test' }, 'email'],
    ['name with CRLF header injection', { name: 'Eve\r\nBcc: victim@example.test' }, 'name'],
    ['name with a tab (control character)', { name: 'Eve\tX' }, 'name'],
    ['name with DEL', { name: 'Eve\u007f' }, 'name'],
    ['name not a string', { name: 7 }, 'name'],
    ['unknown zone', { timezone: 'Mars/Olympus_Mons' }, 'timezone'],
    ['zone not a string', { timezone: 5 }, 'timezone'],
    ['times missing', { emailTimes: undefined }, 'emailTimes'],
    ['times empty', { emailTimes: [] }, 'emailTimes'],
    ['times not an array', { emailTimes: '09:00' }, 'emailTimes'],
    ['time 24:00', { emailTimes: ['24:00'] }, 'emailTimes'],
    ['time 9:00 (one-digit hour)', { emailTimes: ['9:00'] }, 'emailTimes'],
    ['time 09:60', { emailTimes: ['09:60'] }, 'emailTimes'],
    ['time 09:00:00', { emailTimes: ['09:00:00'] }, 'emailTimes'],
    ['time with spaces', { emailTimes: [' 09:00'] }, 'emailTimes'],
    ['time as a number', { emailTimes: [900] }, 'emailTimes'],
    ['one bad time among good ones', { emailTimes: ['08:00', '25:00'] }, 'emailTimes'],
    ['more than 24 times', { emailTimes: Array.from({ length: 25 }, (_, i) => `10:${String(i).padStart(2, '0')}`) }, 'emailTimes'],
    ['day 7', { emailDays: [7] }, 'emailDays'],
    ['day -1', { emailDays: [-1] }, 'emailDays'],
    ['day 1.5', { emailDays: [1.5] }, 'emailDays'],
    ['day as a string', { emailDays: ['1'] }, 'emailDays'],
    ['days empty', { emailDays: [] }, 'emailDays'],
    ['days not an array', { emailDays: 3 }, 'emailDays'],
  ])('%s -> names %s', (_label, over, field) => {
    const reason = reasonOf(base(over));
    expect(reason.startsWith(`${field}:`), reason).toBe(true);
  });

  it('keeps the user id on an invalid result, so the event can name the user', () => {
    expect(checkUser(base({ email: 'x' }), fields)).toMatchObject({ kind: 'invalid', id: 'u1' });
  });

  it('a missing or unusable id is reported as the id field', () => {
    for (const _id of [undefined, null, '', { not: 'an id' }, Number.NaN]) {
      const r = checkUser(base({ _id }), fields);
      expect(r.kind).toBe('invalid');
      if (r.kind === 'invalid') expect(r.reason).toMatch(/^_id:/);
    }
  });

  it('an id with CR/LF is rejected and never returned raw', () => {
    const r = checkUser(base({ _id: 'u1\r\nX-Evil: 1' }), fields);
    expect(r.kind).toBe('invalid');
    if (r.kind !== 'invalid') return;
    expect(r.reason).toMatch(/^_id:/);
    expect(r.id).not.toMatch(/[\r\n]/);
  });

  it('an address longer than 254 characters is rejected', () => {
    const local = 'a'.repeat(60);
    const domain = `${Array.from({ length: 4 }, () => 'b'.repeat(60)).join('.')}.test`;
    const email = `${local}@${domain}`;
    expect(email.length).toBeGreaterThan(254);
    expect(reasonOf(base({ email }))).toMatch(/^email:/);
  });
});

describe('checkUser: custom field mapping', () => {
  const custom: FieldMap = {
    ...fields,
    id: 'uid',
    email: 'profile.mail',
    name: 'profile.displayName',
    active: 'enabled',
    timezone: 'prefs.tz',
    emailTimes: 'prefs.sendAt',
    emailDays: 'prefs.weekdays',
    unsubscribed: 'optedOut',
  };

  it('reads dotted paths', () => {
    const doc: RawUser = {
      uid: 'app-7',
      enabled: true,
      optedOut: false,
      profile: { mail: 'grace@example.test', displayName: 'Grace' },
      prefs: { tz: 'Europe/Berlin', sendAt: ['12:00', '06:15'], weekdays: [6, 0] },
      // The default field names must be ignored under a custom mapping.
      email: 'wrong@example.test',
      active: false,
    };
    expect(checkUser(doc, custom)).toEqual({
      kind: 'valid',
      user: { id: 'app-7', email: 'grace@example.test', name: 'Grace', timezone: 'Europe/Berlin', times: ['06:15', '12:00'], days: [0, 6] },
    });
  });

  it('names the mapped (dotted) field in reasons', () => {
    const doc: RawUser = { uid: 'app-8', enabled: true, profile: { mail: 'bad address' }, prefs: { sendAt: ['09:00'] } };
    expect(reasonOf(doc, custom)).toMatch(/^profile\.mail:/);
    const noProfile: RawUser = { uid: 'app-9', enabled: true, prefs: { sendAt: ['09:00'] } };
    expect(reasonOf(noProfile, custom)).toMatch(/^profile\.mail:/);
    const badTime: RawUser = { uid: 'app-10', enabled: true, profile: { mail: 'ok@example.test' }, prefs: { sendAt: ['7am'] } };
    expect(reasonOf(badTime, custom)).toMatch(/^prefs\.sendAt:/);
  });

  it('a dotted path through a non-object reads as missing', () => {
    const doc: RawUser = { uid: 'app-11', enabled: true, profile: 'not an object', prefs: { sendAt: ['09:00'] } };
    expect(reasonOf(doc, custom)).toMatch(/^profile\.mail:/);
  });

  it('uses the mapped active and unsubscribed fields', () => {
    const doc: RawUser = { uid: 'app-12', enabled: true, optedOut: true, profile: { mail: 'a@example.test' }, prefs: { sendAt: ['09:00'] } };
    expect(checkUser(doc, custom)).toEqual({ kind: 'inactive', id: 'app-12' });
  });

  it('reads own properties only: a field named like an Object.prototype member is missing unless the document has it', () => {
    const protoNamed: FieldMap = { ...custom, name: 'constructor', unsubscribed: 'prefs.valueOf' };
    const doc: RawUser = { uid: 'app-13', enabled: true, profile: { mail: 'a@example.test' }, prefs: { sendAt: ['09:00'] } };
    // Before: `constructor` read Object (name "not a string") and `prefs.valueOf` a function.
    expect(checkUser(doc, protoNamed)).toMatchObject({ kind: 'valid', user: { id: 'app-13', name: undefined } });
    // A document from MongoDB keeps a `__proto__` key as an own property (js-bson): read as data.
    const withProtoKey = JSON.parse('{"uid": "app-14", "enabled": true, "profile": {"mail": "b@example.test", "__proto__": {"displayName": "Eve"}}, "prefs": {"sendAt": ["09:00"]}}') as RawUser;
    expect(checkUser(withProtoKey, custom)).toMatchObject({ kind: 'valid', user: { name: undefined } });
  });
});
