/**
 * Where a local-time broadcast (`broadcast send --local-time HH:MM --on DATE`) falls in UTC: each
 * zone's recipients get it at `fireInstant(zone, DATE, HH:MM)`, the fire-time rule of scheduled
 * mail (a time in a DST gap moves to the end of the gap, a repeated time is taken at its first
 * occurrence). From the users per zone (RecipientSource.zoneCounts) this gives the per-zone
 * instants, the recipients per UTC hour (`broadcast send --dry-run --local-time`) and per plan
 * minute (`mailwheel plan`). Pure: no I/O, no clock.
 *
 * A missing or null timezone is UTC, as for scheduled mail (validate-user.ts); a value the tz
 * database does not know, or one that is not a string, cannot be placed and is counted apart as
 * "invalid zone".
 */
import { DateTime, IANAZone } from 'luxon';
import type { LocalTimeWave, ZoneCounts } from '../ports/broadcasts.js';
import { fireInstant, isValidZone } from './fire-time.js';
import { HOUR_MS, epochMinute } from './time.js';

/** One zone's recipients and the instant they get the broadcast. */
export interface ZoneWave {
  zone: string;
  users: number;
  /** The fire instant, ms since the epoch. */
  at: number;
  /** The zone's UTC offset at that instant, in minutes (+330 for Asia/Kolkata). */
  offsetMinutes: number;
  /** What the recipient's clock reads at `at`: the wave's time, or later when that time falls in a DST gap. */
  localTime: string;
}

/** Recipients whose instant falls in one UTC hour. */
export interface HourCount {
  /** Start of the hour, ms since the epoch. */
  hourMs: number;
  users: number;
  /** How many zones contribute. */
  zones: number;
}

export interface LocalTimePlan {
  wave: LocalTimeWave;
  /** Every zone with users, by instant (then zone name). */
  zones: ZoneWave[];
  /** The UTC hours with recipients, in order. */
  hours: HourCount[];
  /** Users who can be placed (a valid zone, or none: UTC). */
  total: number;
  /** Users whose zone cannot be placed, and up to {@link MAX_INVALID_SHOWN} of those values. */
  invalid: { users: number; values: string[] };
}

export const MAX_INVALID_SHOWN = 5;

/**
 * Places every zone's recipients at the wave's instant in that zone.
 * @throws RangeError when the wave's time or date is malformed (the CLI checks them first).
 */
export function planLocalTime(counts: ZoneCounts, wave: LocalTimeWave): LocalTimePlan {
  // Validates the wave itself once, so a bad one is an error even with no users at all.
  fireInstant('UTC', wave.date, wave.time);
  const byZone = new Map<string, number>();
  const invalid = { users: counts.notString, values: counts.notString > 0 ? ['(not a string)'] : [] };
  const add = (zone: string, n: number): void => void byZone.set(zone, (byZone.get(zone) ?? 0) + n);
  if (counts.missing > 0) add('UTC', counts.missing);
  for (const [zone, n] of counts.zones) {
    if (n <= 0) continue;
    if (isValidZone(zone)) add(zone, n);
    else {
      invalid.users += n;
      invalid.values.push(zone);
    }
  }
  invalid.values = invalid.values.slice(0, MAX_INVALID_SHOWN);

  const zones: ZoneWave[] = [];
  let total = 0;
  for (const [zone, users] of byZone) {
    const at = fireInstant(zone, wave.date, wave.time);
    const offsetMinutes = Math.round(IANAZone.create(zone).offset(at));
    zones.push({ zone, users, at, offsetMinutes, localTime: DateTime.fromMillis(at, { zone }).toFormat('HH:mm') });
    total += users;
  }
  zones.sort((a, b) => a.at - b.at || (a.zone < b.zone ? -1 : a.zone > b.zone ? 1 : 0));

  const hours: HourCount[] = [];
  for (const z of zones) {
    const hourMs = Math.floor(z.at / HOUR_MS) * HOUR_MS;
    const last = hours.at(-1);
    if (last !== undefined && last.hourMs === hourMs) {
      last.users += z.users;
      last.zones++;
    } else hours.push({ hourMs, users: z.users, zones: 1 });
  }
  return { wave, zones, hours, total, invalid };
}

/** Zones whose recipients get the broadcast in the same minute (several zones share an offset). */
export interface InstantGroup {
  at: number;
  offsetMinutes: number;
  users: number;
  zones: ZoneWave[];
}

/** The plan's zones grouped by instant and offset, busiest zone first within a group: the compact per-zone view. */
export function groupByInstant(plan: LocalTimePlan): InstantGroup[] {
  const groups: InstantGroup[] = [];
  for (const z of plan.zones) {
    const last = groups.at(-1);
    if (last !== undefined && last.at === z.at && last.offsetMinutes === z.offsetMinutes) {
      last.users += z.users;
      last.zones.push(z);
    } else groups.push({ at: z.at, offsetMinutes: z.offsetMinutes, users: z.users, zones: [z] });
  }
  for (const g of groups) g.zones.sort((a, b) => b.users - a.users || (a.zone < b.zone ? -1 : 1));
  return groups;
}

/** One plan minute's share of a wave: its recipients and the zones they are in. */
export interface WaveMinute {
  /** Minute index in the plan (0 = the plan's first minute). */
  index: number;
  users: number;
  zones: string[];
}

/**
 * The wave's recipients per minute of a plan of `minutes` minutes starting at the minute of
 * `fromMs`; instants outside the plan are left out.
 */
export function waveMinutes(plan: LocalTimePlan, fromMs: number, minutes: number): WaveMinute[] {
  const first = epochMinute(fromMs);
  const out: WaveMinute[] = [];
  for (const z of plan.zones) {
    const index = epochMinute(z.at) - first;
    if (index < 0 || index >= minutes) continue;
    const last = out.at(-1);
    if (last !== undefined && last.index === index) {
      last.users += z.users;
      last.zones.push(z.zone);
    } else out.push({ index, users: z.users, zones: [z.zone] });
  }
  return out;
}

/** `+05:30`, `-03:00`, `+00:00`. */
export function formatOffset(minutes: number): string {
  const sign = minutes < 0 ? '-' : '+';
  const abs = Math.abs(minutes);
  return `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

/** Users whose instant is before `nowMs` (a wave planned for a date partly or wholly past). */
export function usersBefore(plan: LocalTimePlan, nowMs: number): number {
  let n = 0;
  for (const z of plan.zones) if (z.at < nowMs) n += z.users;
  return n;
}


/**
 * True when `time` lies inside the quiet window [start, end) (which may cross midnight). A wave
 * whose own time is quiet is held by the run until the window ends in each zone, so the instants
 * above are then the earliest, not when it goes: the dry run and `plan` say so.
 */
export function timeInWindow(time: string, window: { start: string | null; end: string | null }): boolean {
  if (window.start === null || window.end === null) return false;
  const t = toMinutes(time);
  const s = toMinutes(window.start);
  const e = toMinutes(window.end);
  return s < e ? t >= s && t < e : t >= s || t < e;
}

function toMinutes(hhmm: string): number {
  return Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));
}
