/**
 * Fire-time math: when does a user's slot `HH:MM` on local date D fire?
 *
 * THE RULE (docs/ARCHITECTURE.md): a slot HH:MM on local date D fires at the earliest instant at which the
 * user's local clock, on date D, reads HH:MM or later. So a time inside a DST gap fires when the
 * gap ends, and an ambiguous time (DST fall-back) fires once, at its first occurrence.
 *
 * luxon is used only for one question, "what is the zone's UTC offset at instant t"; its own
 * gap/overlap resolution (which moves 02:30 in a spring-forward gap to 03:30) is NOT used.
 * No I/O here.
 */
import { DateTime, IANAZone } from 'luxon';
import { Errors } from '../errors.js';
import { DAY_MS, MINUTE_MS } from './time.js';

/** One occurrence of a slot: the instant it fires and the local date D it belongs to. */
export interface FireSlot {
  /** Fire instant, ms since the epoch. */
  at: number;
  /** The local date D (`YYYY-MM-DD`) of the slot; used in the delivery key even when the fire
   * instant itself falls on D+1 (a gap that crosses midnight). */
  localDate: string;
}

/** One upcoming fire of one of a user's slots, for `mailwheel schedule show`. */
export interface UpcomingFire extends FireSlot {
  /** The slot, `HH:MM`. */
  time: string;
  /** The fire instant in the user's zone, ISO 8601 with offset, e.g. `2026-03-08T03:00:00.000-04:00`
   * (luxon writes `Z` for UTC zones). */
  localIso: string;
}

/** The epoch minute an instant falls in (the registry's bucket key); kept here for its importers. */
export { epochMinute } from './time.js';

/** True when `zone` is an IANA zone name the runtime's tz database knows. */
export function isValidZone(zone: unknown): zone is string {
  // IANAZone.create caches the zone and its validity; IANAZone.isValidZone builds an Intl formatter
  // on every call (~0.1 ms), too slow for a full sync.
  return typeof zone === 'string' && zone.length > 0 && IANAZone.create(zone).isValid;
}

const HHMM = /^([01]\d|2[0-3]):([0-5]\d)$/;

/** Strict `HH:MM` parser: 00:00..23:59, exactly two digits each, nothing around it. */
export function parseHHMM(s: unknown): { h: number; m: number } | undefined {
  if (typeof s !== 'string') return undefined;
  const match = HHMM.exec(s);
  if (!match) return undefined;
  return { h: Number(match[1]), m: Number(match[2]) };
}

/**
 * The instant slot `time` on local date `localDate` fires in `zone`, ms since the epoch.
 * @throws RangeError on an unknown zone, a malformed/nonexistent date, or a malformed time.
 */
export function fireInstant(zone: string, localDate: string, time: string): number {
  const offsetOf = offsetFn(zone);
  const day = parseLocalDate(localDate);
  const hm = parseHHMM(time);
  if (hm === undefined) throw new RangeError(`invalid time "${String(time)}" (expected HH:MM, 00:00..23:59)`);
  return fireOnDay(zone, offsetOf, day, hm.h * 60 + hm.m);
}

/**
 * The earliest fire of slot `time` at or after `fromMs` (inclusive), over local dates starting at
 * (the local date of `fromMs`) - 1 day (a slot of D can fire on D+1 when a gap crosses midnight),
 * skipping dates whose local weekday (0 = Sunday) is not in `days` when `days` is given.
 *
 * `afterLocalDate` (`YYYY-MM-DD`, exclusive) additionally restricts the search to later dates; the
 * registry passes the date just fired so one date is never fired twice, even in the theoretical
 * case of a gap of 24 h or more that makes two dates share a fire instant.
 *
 * Returns `undefined` only when `days` allows no weekday at all (e.g. `[]`).
 * @throws RangeError on an unknown zone or a malformed time/date.
 */
export function nextFire(
  zone: string,
  time: string,
  days: readonly number[] | undefined,
  fromMs: number,
  afterLocalDate?: string,
): FireSlot | undefined {
  const offsetOf = offsetFn(zone);
  const hm = parseHHMM(time);
  if (hm === undefined) throw new RangeError(`invalid time "${String(time)}" (expected HH:MM, 00:00..23:59)`);
  if (!Number.isFinite(fromMs)) throw new RangeError(`invalid fromMs ${fromMs}`);
  const allowed = weekdayMask(days);
  if (allowed === 0) return undefined;
  const minutes = hm.h * 60 + hm.m;

  let start = localDayAt(zone, offsetOf, fromMs) - 1;
  if (afterLocalDate !== undefined) start = Math.max(start, parseLocalDate(afterLocalDate) + 1);
  // Fire instants are non-decreasing in D, so the first allowed date whose fire is >= fromMs is the
  // answer. D0-1 .. D0+8 covers every weekday after D0 with room to spare.
  for (let day = start; day < start + 10; day++) {
    if ((allowed & (1 << weekdayOfDay(day))) === 0) continue;
    const at = fireOnDay(zone, offsetOf, day, minutes);
    if (at >= fromMs) return { at, localDate: formatDay(day) };
  }
  /* c8 ignore next */
  throw new Errors.INTERNAL(`nextFire: no fire found for ${zone} ${time} from ${new Date(fromMs).toISOString()}`);
}

/**
 * The next `count` fire instants of a user across all their slots, sorted by instant (then slot),
 * starting at `fromMs` (inclusive). Used by `mailwheel schedule show`.
 * @throws RangeError on an unknown zone or a malformed time.
 */
export function nextFires(
  zone: string,
  times: readonly string[],
  days: readonly number[] | undefined,
  fromMs: number,
  count: number,
): UpcomingFire[] {
  const out: UpcomingFire[] = [];
  if (!(count > 0)) return out;
  for (const time of new Set(times)) {
    let slot = nextFire(zone, time, days, fromMs);
    // Each slot contributes at most `count` items; the merge below keeps the earliest overall.
    for (let i = 0; i < count && slot !== undefined; i++) {
      out.push({ ...slot, time, localIso: DateTime.fromMillis(slot.at, { zone }).toISO() ?? '' });
      slot = nextFire(zone, time, days, slot.at, slot.localDate);
    }
  }
  out.sort((a, b) => a.at - b.at || (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
  return out.slice(0, count);
}

// ---------------------------------------------------------------------------------------------
// Internals. Dates are handled as "day numbers": days since 1970-01-01 of the local calendar date.

type OffsetFn = (t: number) => number;

/** Offset of `zone` at instant t, in ms (rounded: luxon reports fractional minutes for LMT). */
function offsetFn(zone: string): OffsetFn {
  if (!isValidZone(zone)) throw new RangeError(`unknown time zone "${String(zone)}"`);
  const z = IANAZone.create(zone);
  return (t) => Math.round(z.offset(t) * MINUTE_MS);
}

const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;

function parseLocalDate(s: string): number {
  const m = typeof s === 'string' ? DATE_RE.exec(s) : null;
  if (m) {
    const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
    const ms = Date.UTC(y, mo - 1, d);
    const back = new Date(ms);
    // Round-trip check rejects 2026-02-30 and friends (Date.UTC would roll them over).
    if (back.getUTCFullYear() === y && back.getUTCMonth() === mo - 1 && back.getUTCDate() === d) {
      return ms / DAY_MS;
    }
  }
  throw new RangeError(`invalid local date "${String(s)}" (expected YYYY-MM-DD)`);
}

function formatDay(day: number): string {
  return new Date(day * DAY_MS).toISOString().slice(0, 10);
}

/** Weekday of a day number, 0 = Sunday (1970-01-01 was a Thursday). */
function weekdayOfDay(day: number): number {
  return (((day + 4) % 7) + 7) % 7;
}

function weekdayMask(days: readonly number[] | undefined): number {
  if (days === undefined) return 0x7f;
  let mask = 0;
  for (const d of days) if (Number.isInteger(d) && d >= 0 && d <= 6) mask |= 1 << d;
  return mask;
}

// Small memo caches. A full sync computes the same (zone, date, time) for many users, and each
// offset lookup costs ~5 us of Intl formatting; the functions are pure, so memoising is exact.
const FIRE_CACHE_MAX = 100_000;
const fireCache = new Map<string, number>();
const localDayCache = new Map<string, { t: number; day: number }>();

function localDayAt(zone: string, offsetOf: OffsetFn, t: number): number {
  const hit = localDayCache.get(zone);
  if (hit !== undefined && hit.t === t) return hit.day;
  const day = Math.floor((t + offsetOf(t)) / DAY_MS);
  if (localDayCache.size > 1_000) localDayCache.clear();
  localDayCache.set(zone, { t, day });
  return day;
}

function fireOnDay(zone: string, offsetOf: OffsetFn, day: number, minutes: number): number {
  const key = `${zone}\u0000${day}\u0000${minutes}`;
  const hit = fireCache.get(key);
  if (hit !== undefined) return hit;
  const at = computeFire(offsetOf, day * DAY_MS + minutes * MINUTE_MS);
  if (fireCache.size >= FIRE_CACHE_MAX) fireCache.clear();
  fireCache.set(key, at);
  return at;
}

/**
 * Earliest instant t with local(t) >= W, where local(t) = t + offset(t) and W is the wall time
 * written as if it were UTC.
 *
 * 1. Exact matches: for each offset o in force around W (sampled at W-1d, W, W+1d, and the offsets
 *    found at the candidates themselves), t = W - o is a match when t + offset(t) === W. The
 *    smallest match is the first occurrence of an ambiguous time.
 * 2. No match means W is inside a gap: binary-search (to the millisecond) the earliest t with
 *    local(t) >= W between W - max(o) (where local < W) and W - min(o) (where local >= W).
 *
 * Assumes at most one transition in the 2-day window around W, as in every real tz rule.
 */
function computeFire(offsetOf: OffsetFn, W: number): number {
  const before = offsetOf(W - DAY_MS);
  const after = offsetOf(W + DAY_MS);
  if (before === after) {
    // Fast path: no transition nearby (the common case), one check suffices.
    const t = W - before;
    if (offsetOf(t) === before) return t;
  }
  const offsets = [before, offsetOf(W), after];
  let best: number | undefined;
  for (let i = 0; i < offsets.length && i < 8; i++) {
    const o = offsets[i] as number;
    if (offsets.indexOf(o) !== i) continue; // already tried
    const t = W - o;
    const ot = offsetOf(t);
    if (t + ot === W && (best === undefined || t < best)) best = t;
    if (!offsets.includes(ot)) offsets.push(ot);
  }
  if (best !== undefined) return best;

  const reaches = (t: number): boolean => t + offsetOf(t) >= W;
  let lo = W - Math.max(...offsets) - 1;
  let hi = W - Math.min(...offsets);
  if (reaches(lo) || !reaches(hi)) {
    // Offsets outside the sampled range (not seen in real data): fall back to a wide window.
    lo = W - 2 * DAY_MS;
    hi = W + 2 * DAY_MS;
    /* c8 ignore next */
    if (reaches(lo) || !reaches(hi)) throw new Errors.INTERNAL(`fire time search failed near ${new Date(W).toISOString()}`);
  }
  // Invariant: !reaches(lo) && reaches(hi).
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (reaches(mid)) hi = mid;
    else lo = mid;
  }
  return hi;
}
