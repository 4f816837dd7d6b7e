/**
 * Realistic test users for `mailwheel seed-users` and the demo. Pure: no I/O, no clock, no global
 * randomness. The same options (seed and `nowMs` included) always give the same documents, so a
 * test or a bug report can reproduce a data set exactly.
 *
 * The share of inactive and invalid documents is exact (`Math.round(count * ratio)`), not sampled:
 * a run of 10,000 users with `invalidRatio: 0.01` has exactly 100 invalid documents, placed at
 * seeded random positions. Documents use the configured field names (applications differ), so
 * what is written is what the daemon will read.
 */
import { DateTime } from 'luxon';
import { ObjectId } from 'mongodb';
import type { FieldMap } from '../core/validate-user.js';

/**
 * Every generated document carries this field, so `seed-users --drop` can tell the documents it
 * made from an application's real users (and refuse to drop those without `--yes`). A fixed name,
 * outside the configured field map: no application field is expected to be called this.
 */
export const SEED_MARK_FIELD = '_seededBy';
export const SEED_MARK_VALUE = 'mailwheel';

/** What a generated document is meant to be, as `checkUser` will classify it. */
export type SeedKind = 'active' | 'inactive' | 'invalid';

/** The kinds of malformed document, one reason each; all are `active: true` so they reach validation. */
export const INVALID_KINDS = [
  'bad-email',
  'unknown-timezone',
  'bad-time',
  'missing-times',
  'times-not-array',
  'name-crlf',
  'email-crlf',
] as const;
export type InvalidKind = (typeof INVALID_KINDS)[number];

export interface SeedUser {
  /** The document to insert, keyed by the configured field names. */
  doc: Record<string, unknown>;
  kind: SeedKind;
  /** Set when `kind` is 'invalid'. */
  invalid?: InvalidKind;
}

export interface GenerateUsersOptions {
  /** Number of documents, invalid and inactive ones included. */
  count: number;
  /** PRNG seed (any 32-bit integer; see {@link seedFromString} for text seeds). */
  seed: number;
  /** Share 0..1 of documents that are inactive (`active: false`, or unsubscribed). */
  inactiveRatio: number;
  /** Share 0..1 of documents that are malformed. `inactiveRatio + invalidRatio` must be <= 1. */
  invalidRatio: number;
  /** "Now", ms since the epoch: `updatedAt`, ObjectId timestamps, and the `soonMinutes` window. */
  nowMs: number;
  /** Field names to write (config `users.fields`); dotted paths create nested objects. */
  fields: FieldMap;
  /**
   * Demo mode: each user's first time is the local `HH:MM` of one of the next `soonMinutes` whole
   * minutes after the minute of `nowMs` (spread evenly over them), and `emailDays` is left out so
   * that every user fires today.
   */
  soonMinutes?: number;
  /** Number of the first user (`user000000@example.test`); lets a second run continue the numbering. */
  firstIndex?: number;
}

export interface SeedCounts {
  total: number;
  active: number;
  inactive: number;
  invalid: number;
}

/** Exact counts for a run; throws RangeError on ratios outside 0..1 or summing above 1. */
export function planCounts(count: number, inactiveRatio: number, invalidRatio: number): SeedCounts {
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`count must be a non-negative integer, got ${count}`);
  for (const [name, r] of [['inactiveRatio', inactiveRatio], ['invalidRatio', invalidRatio]] as const) {
    if (!(r >= 0 && r <= 1)) throw new RangeError(`${name} must be between 0 and 1, got ${r}`);
  }
  if (inactiveRatio + invalidRatio > 1) throw new RangeError(`inactiveRatio + invalidRatio must not exceed 1, got ${inactiveRatio + invalidRatio}`);
  const invalid = Math.round(count * invalidRatio);
  // min(): rounding both up (e.g. 0.5 + 0.5 of an odd count) must not exceed the total.
  const inactive = Math.min(Math.round(count * inactiveRatio), count - invalid);
  return { total: count, active: count - invalid - inactive, inactive, invalid };
}

/** mulberry32: a tiny, fast 32-bit PRNG; plenty for test data, and reproducible everywhere. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A 32-bit seed from `--seed`: an integer is used as is, any other text is hashed (FNV-1a). */
export function seedFromString(s: string): number {
  if (/^-?\d+$/.test(s) && Number.isSafeInteger(Number(s))) return Number(s) >>> 0;
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The documents of one run, lazily: a million users need not be held in memory at once. */
export function* generateUsers(opts: GenerateUsersOptions): Generator<SeedUser> {
  const counts = planCounts(opts.count, opts.inactiveRatio, opts.invalidRatio);
  if (opts.soonMinutes !== undefined && !(Number.isInteger(opts.soonMinutes) && opts.soonMinutes >= 1 && opts.soonMinutes <= 1440)) {
    throw new RangeError(`soonMinutes must be an integer 1..1440, got ${opts.soonMinutes}`);
  }
  const rng = mulberry32(opts.seed);
  const kinds = shuffledKinds(counts, rng);
  const idMiddle = Math.floor(rng() * 0x1_0000_0000);
  const firstIndex = opts.firstIndex ?? 0;
  const minuteStart = Math.floor(opts.nowMs / 60_000) * 60_000;
  const updatedAt = new Date(opts.nowMs);
  let invalidOrdinal = 0;
  let inactiveOrdinal = 0;

  for (let i = 0; i < counts.total; i++) {
    const n = firstIndex + i;
    const kind: SeedKind = kinds[i] === 0 ? 'active' : kinds[i] === 1 ? 'inactive' : 'invalid';
    const f = opts.fields;
    const doc: Record<string, unknown> = { [SEED_MARK_FIELD]: SEED_MARK_VALUE };
    const id = objectIdFor(opts.nowMs, idMiddle, n);
    // With the default mapping the id is the document's `_id`; with another id field the driver
    // still makes an `_id`, and the mapped field gets the same value as a string.
    setField(doc, f.id, f.id === '_id' ? id : id.toHexString());
    const email = `user${String(n).padStart(6, '0')}@example.test`;
    setField(doc, f.email, email);
    const name = pickName(rng);
    if (name !== undefined) setField(doc, f.name, name);
    setField(doc, f.active, true);
    const zone = pickWeighted(ZONES, rng);
    if (zone !== null) setField(doc, f.timezone, zone);

    let times: string[];
    if (opts.soonMinutes !== undefined) {
      // Round-robin over the window rather than random: every minute of it gets its share.
      const at = minuteStart + (1 + (i % opts.soonMinutes)) * 60_000;
      const first = DateTime.fromMillis(at, { zone: zone ?? 'UTC' }).toFormat('HH:mm');
      times = [first, ...pickTimes(rng, 0, 2, first)];
    } else {
      times = pickTimes(rng, 1, 3);
    }
    setField(doc, f.emailTimes, times);
    const days = opts.soonMinutes === undefined ? pickDays(rng) : undefined;
    if (days !== undefined) setField(doc, f.emailDays, days);
    setField(doc, f.updatedAt, updatedAt);

    if (kind === 'inactive') {
      // Most leave by deactivation; some by unsubscribing, which checkUser also treats as inactive.
      if (inactiveOrdinal++ % 5 === 4) setField(doc, f.unsubscribed, true);
      else setField(doc, f.active, false);
      yield { doc, kind };
    } else if (kind === 'invalid') {
      // Round-robin, so every kind is present as soon as there are 7 invalid documents.
      const invalid = INVALID_KINDS[invalidOrdinal++ % INVALID_KINDS.length] as InvalidKind;
      corrupt(doc, f, invalid, email, name ?? 'Mallory', times, rng);
      yield { doc, kind, invalid };
    } else {
      yield { doc, kind };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Internals

/** 0 = active, 1 = inactive, 2 = invalid, exactly as planned, in a seeded random order. */
function shuffledKinds(c: SeedCounts, rng: () => number): Uint8Array {
  const kinds = new Uint8Array(c.total);
  kinds.fill(1, c.active, c.active + c.inactive);
  kinds.fill(2, c.active + c.inactive);
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = kinds[i] as number;
    kinds[i] = kinds[j] as number;
    kinds[j] = t;
  }
  return kinds;
}

/** Timestamp (s) + a per-run random middle + the user number: deterministic and unique per run. */
function objectIdFor(nowMs: number, middle: number, n: number): ObjectId {
  const hex = (v: number) => (v >>> 0).toString(16).padStart(8, '0');
  return ObjectId.createFromHexString(hex(Math.floor(nowMs / 1000)) + hex(middle) + hex(n));
}

function setField(doc: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let cur = doc;
  for (const part of parts.slice(0, -1)) {
    const next = cur[part];
    if (typeof next === 'object' && next !== null && !Array.isArray(next) && !(next instanceof Date)) {
      cur = next as Record<string, unknown>;
    } else {
      const created: Record<string, unknown> = {};
      cur[part] = created;
      cur = created;
    }
  }
  cur[parts[parts.length - 1] as string] = value;
}

function deleteField(doc: Record<string, unknown>, path: string): void {
  const parts = path.split('.');
  let cur: unknown = doc;
  for (const part of parts.slice(0, -1)) {
    if (typeof cur !== 'object' || cur === null) return;
    cur = (cur as Record<string, unknown>)[part];
  }
  if (typeof cur === 'object' && cur !== null) delete (cur as Record<string, unknown>)[parts[parts.length - 1] as string];
}

function pick<T>(items: readonly T[], rng: () => number): T {
  return items[Math.floor(rng() * items.length)] as T;
}

function pickWeighted<T>(items: ReadonlyArray<readonly [T, number]>, rng: () => number): T {
  let total = 0;
  for (const [, w] of items) total += w;
  let r = rng() * total;
  for (const [v, w] of items) {
    r -= w;
    if (r < 0) return v;
  }
  return (items[items.length - 1] as readonly [T, number])[0];
}

/**
 * Roughly where the users of a global consumer app live, plus a tail of zones that break naive
 * time math: 45-minute offsets (Kathmandu, Chatham), a 30-minute DST shift (Lord Howe), UTC+14,
 * negative DST (Dublin), DST suspended for Ramadan (Casablanca). `null` = no timezone field
 * (the design's default, UTC).
 */
const ZONES: ReadonlyArray<readonly [string | null, number]> = [
  ['America/New_York', 16],
  ['America/Chicago', 9],
  ['America/Denver', 3],
  ['America/Los_Angeles', 10],
  ['America/Sao_Paulo', 6],
  ['America/Mexico_City', 2],
  ['Europe/London', 9],
  ['Europe/Berlin', 8],
  ['Europe/Paris', 4],
  ['Asia/Kolkata', 9],
  ['Asia/Tokyo', 5],
  ['Asia/Singapore', 2],
  ['Australia/Sydney', 4],
  ['Africa/Lagos', 2],
  ['UTC', 3],
  [null, 2],
  ['Europe/Dublin', 1],
  ['America/St_Johns', 0.5],
  ['Asia/Kathmandu', 0.5],
  ['Asia/Tehran', 0.5],
  ['Africa/Casablanca', 0.5],
  ['America/Santiago', 0.5],
  ['Australia/Adelaide', 0.5],
  ['Australia/Lord_Howe', 0.3],
  ['Pacific/Chatham', 0.3],
  ['Pacific/Kiritimati', 0.2],
  ['Pacific/Pago_Pago', 0.2],
  ['Asia/Kabul', 0.2],
];

/** Preferred times cluster on the hour in the morning (the old design's 09:00 stampede). */
const TIMES: ReadonlyArray<readonly [string, number]> = [
  ['07:00', 16],
  ['08:00', 20],
  ['09:00', 18],
  ['06:00', 3],
  ['06:30', 3],
  ['07:30', 5],
  ['08:30', 5],
  ['07:15', 1.5],
  ['08:15', 1.5],
  ['09:30', 2],
  ['12:00', 4],
  ['17:30', 2],
  ['18:00', 4],
  ['20:00', 3],
  ['21:00', 3],
  ['22:00', 1],
];
/** Share of times drawn uniformly over the day instead of from TIMES. */
const SPREAD_SHARE = 0.1;

function pickTimes(rng: () => number, min: number, max: number, exclude?: string): string[] {
  // 60 % one time, 30 % two, 10 % three, squeezed into min..max.
  const r = rng();
  const want = Math.min(max, Math.max(min, min + (r < 0.6 ? 0 : r < 0.9 ? 1 : 2)));
  const out = new Set<string>();
  while (out.size < want) {
    let t: string;
    if (rng() < SPREAD_SHARE) {
      const minute = Math.floor(rng() * 1440);
      t = `${String(Math.floor(minute / 60)).padStart(2, '0')}:${String(minute % 60).padStart(2, '0')}`;
    } else {
      t = pickWeighted(TIMES, rng);
    }
    if (t !== exclude) out.add(t);
  }
  return [...out];
}

/** Most users every day; some weekdays only, some weekends only, a few a custom set. */
function pickDays(rng: () => number): number[] | undefined {
  const r = rng();
  if (r < 0.72) return undefined;
  if (r < 0.9) return [1, 2, 3, 4, 5];
  if (r < 0.95) return [0, 6];
  const days: number[] = [];
  for (let d = 0; d < 7; d++) if (rng() < 0.5) days.push(d);
  return days.length > 0 ? days : [1, 3, 5];
}

const FIRST_NAMES = [
  'James', 'Mary', 'Robert', 'Patricia', 'Michael', 'Jennifer', 'David', 'Linda', 'Emily', 'Daniel',
  'Sarah', 'Chris', 'Olivia', 'Liam', 'Emma', 'Noah', 'Ava', 'Sophia', 'Lucas', 'Mia',
  'Priya', 'Arjun', 'Ananya', 'Rahul', 'Wei', 'Mei', 'Hiroshi', 'Yuki', 'Min-jun', 'Ji-woo',
  'Ahmed', 'Fatima', 'Omar', 'Aisha', 'Chinedu', 'Ngozi', 'Kwame', 'Amara', 'Ivan', 'Olga',
  // Non-ASCII letters: names are headers too, and must survive encoding end to end.
  'José', 'María', 'Zoë', 'Chloé', 'François', 'Søren', 'Bjørn', 'Łukasz', 'Małgorzata', 'Jürgen',
  'Ömer', 'İbrahim', 'Şebnem', 'João', 'Inês', 'Nguyễn', 'Thảo', 'Siobhán', 'Ólafur', 'Ærwyn',
];
const LAST_NAMES = [
  'Smith', 'Johnson', 'Williams', 'Brown', 'Jones', 'Garcia', 'Miller', 'Davis', 'Wilson', 'Taylor',
  'Anderson', 'Thomas', 'Moore', 'Martin', 'Lee', 'Walker', 'Hall', 'Young', 'King', 'Wright',
  'Patel', 'Sharma', 'Singh', 'Gupta', 'Chen', 'Wang', 'Tanaka', 'Sato', 'Kim', 'Park',
  'Okafor', 'Mensah', 'Hassan', 'Ali', 'Ivanov', 'Novak', "O'Brien", 'Smith-Jones', 'van der Berg', 'de la Cruz',
  'Müller', 'Schröder', 'Núñez', 'Peña', 'Gonçalves', 'Dvořák', 'Kowalczyk', 'Wójcik', 'Øvergaard', 'Åberg',
  'Yılmaz', 'Çelik', 'Lefèvre', 'Brontë', 'Þórsson', 'Trần', 'Nakamura', 'Ó Súilleabháin', 'Grünewald', 'Straße',
];

/** A first + last name; 3 % have none (the field is optional in the design). */
function pickName(rng: () => number): string | undefined {
  const first = pick(FIRST_NAMES, rng);
  const last = pick(LAST_NAMES, rng);
  return rng() < 0.03 ? undefined : `${first} ${last}`;
}

/** Breaks one field of an otherwise valid document, so checkUser's reason names that field. */
function corrupt(
  doc: Record<string, unknown>,
  f: FieldMap,
  kind: InvalidKind,
  email: string,
  name: string,
  times: string[],
  rng: () => number,
): void {
  switch (kind) {
    case 'bad-email': {
      const local = email.slice(0, email.indexOf('@'));
      setField(doc, f.email, pick([`${local}.example.test`, `${local}@`, `${local} x@example.test`, `${local}@@example.test`, `${local}@example`], rng));
      return;
    }
    case 'unknown-timezone':
      setField(doc, f.timezone, pick(['Mars/Olympus_Mons', 'America/Springfield', 'Europe/Atlantis', 'GMT+25', 'EST-5'], rng));
      return;
    case 'bad-time': {
      const bad = pick(['25:00', '9:00', '24:00', '12:60', '9am', '08:00:00'], rng);
      setField(doc, f.emailTimes, [...times.slice(1), bad]);
      return;
    }
    case 'missing-times':
      deleteField(doc, f.emailTimes);
      return;
    case 'times-not-array':
      setField(doc, f.emailTimes, times.join(','));
      return;
    case 'name-crlf':
      setField(doc, f.name, `${name}\r\nBcc: everyone@example.test`);
      return;
    case 'email-crlf':
      setField(doc, f.email, `${email}\r\nBcc: everyone@example.test`);
      return;
  }
}
