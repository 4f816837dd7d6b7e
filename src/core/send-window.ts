/**
 * When may a broadcast go to a recipient in a given zone: the one rule behind both local-time
 * broadcasts (`broadcast send --local-time HH:MM --on DATE`) and quiet hours. Each recipient gets
 * an instant from which it may be sent ("held until T"):
 *
 * 1. the base instant: for a local-time broadcast the zone's fire instant of the wave
 *    (`fireInstant(zone, date, time)`: a time in a DST gap moves forward to the gap's end, a
 *    repeated time is taken at its first occurrence, as for scheduled mail); otherwise the
 *    broadcast's due instant;
 * 2. quiet hours: if the recipient's local clock at max(base, now) (the moment it would go) reads
 *    inside [start, end), the instant moves to the end of that window (the next local `end`, by the
 *    same fire-time rule, so a window crossing midnight ends on the next local date); held longer
 *    than `maxHoldMinutes` past that moment, the recipient is `missed` instead, with the reason.
 *
 * The answer depends only on the zone, the broadcast and `now`, so every recipient of one zone
 * shares it: callers compute it once per zone (see {@link SendWindow}). Pure: no I/O, no clock.
 */
import { DateTime } from 'luxon';
import { fireInstant, parseHHMM } from './fire-time.js';
import { MINUTE_MS } from './time.js';

/** Quiet hours for broadcast mail in each recipient's local time (config `quietHours.broadcasts`). */
export interface QuietHours {
  /** `HH:MM` local; the window is [start, end) and may cross midnight (21:00-08:00). */
  start: string;
  end: string;
  /** Longest hold; beyond it a recipient is recorded as `missed`. */
  maxHoldMinutes: number;
}

/** What the rule needs from a broadcast. */
export interface SendRule {
  /** Local-time broadcast: each recipient at `time` on local `date`. */
  wave?: { time: string; date: string } | undefined;
  quiet?: QuietHours | undefined;
  /** The broadcast's due instant (ms): the base instant when there is no wave. */
  dueAt: number;
}

export type SendInstant =
  /**
   * May be sent from `at` (ms; at or before `now`: due now). `base`: before quiet hours moved it.
   * `first`: the first instant it was ever eligible (base, or the end of the window base fell in).
   * When `at` is ahead but `first` has passed, an earlier run may have sent it already (before the
   * window opened): only its claim can tell, so the caller asks it before holding.
   */
  | { kind: 'at'; at: number; base: number; quiet: boolean; first: number }
  /** Held by quiet hours longer than allowed: never sent. */
  | { kind: 'missed'; base: number; reason: string };

/** Whether the rule needs each recipient's zone at all (a plain broadcast without quiet hours does not). */
export function needsZone(rule: SendRule): boolean {
  return rule.wave !== undefined || rule.quiet !== undefined;
}

/** Minutes after local midnight of `HH:MM`. */
function minutesOf(hhmm: string): number {
  const hm = parseHHMM(hhmm);
  if (hm === undefined) throw new RangeError(`invalid time "${hhmm}" (expected HH:MM)`);
  return hm.h * 60 + hm.m;
}

/** True when local minute `m` lies in [start, end), a window that may cross midnight. */
export function insideWindow(m: number, start: number, end: number): boolean {
  return start < end ? m >= start && m < end : m >= start || m < end;
}

/**
 * The end of the quiet window `t` lies in, in `zone`, or undefined when `t` is outside it.
 * @throws RangeError on an unknown zone.
 */
export function quietWindowEnd(zone: string, t: number, quiet: Pick<QuietHours, 'start' | 'end'>): number | undefined {
  const local = DateTime.fromMillis(t, { zone });
  if (!local.isValid) throw new RangeError(`unknown time zone "${zone}"`);
  const m = local.hour * 60 + local.minute;
  const start = minutesOf(quiet.start);
  const end = minutesOf(quiet.end);
  if (!insideWindow(m, start, end)) return undefined;
  // Past `end` on this local date only when the window crossed midnight and we are before it.
  const endDate = start > end && m >= start ? local.plus({ days: 1 }) : local;
  return fireInstant(zone, endDate.toISODate() ?? '', quiet.end);
}

/**
 * The instant from which a recipient in `zone` may be sent, at `now`.
 * @throws RangeError on an unknown zone (the caller skips the recipient with the reason).
 */
export function sendInstant(zone: string, rule: SendRule, now: number): SendInstant {
  const base = rule.wave === undefined ? rule.dueAt : fireInstant(zone, rule.wave.date, rule.wave.time);
  const quiet = rule.quiet;
  if (quiet === undefined) return { kind: 'at', at: base, base, quiet: false, first: base };
  const first = quietWindowEnd(zone, base, quiet) ?? base;
  // The moment it would go: its own instant, or now when that has passed (a late or resumed run).
  const would = Math.max(base, now);
  const end = quietWindowEnd(zone, would, quiet);
  if (end === undefined) return { kind: 'at', at: base, base, quiet: false, first };
  const holdMs = end - would;
  if (holdMs > quiet.maxHoldMinutes * MINUTE_MS) {
    const local = DateTime.fromMillis(would, { zone }).toFormat('yyyy-MM-dd HH:mm');
    return {
      kind: 'missed',
      base,
      reason: `quiet hours ${quiet.start}-${quiet.end} in ${zone} (${local} local at ${new Date(would).toISOString()}) would hold it ${Math.ceil(holdMs / MINUTE_MS)} min, more than quietHours.broadcasts.maxHoldMinutes ${quiet.maxHoldMinutes}`,
    };
  }
  return { kind: 'at', at: end, base, quiet: true, first };
}

/**
 * {@link sendInstant} memoised per zone for one `now` (one batch): the rule depends only on the
 * zone, so a batch of 250 users costs one computation per distinct zone.
 */
export class SendWindow {
  readonly rule: SendRule;
  #now = Number.NaN;
  readonly #cache = new Map<string, SendInstant | Error>();

  constructor(rule: SendRule) {
    this.rule = rule;
  }

  /** The instant for `zone` at `now`; a RangeError (unknown zone) is returned, not thrown. */
  at(zone: string, now: number): SendInstant | Error {
    if (now !== this.#now) {
      this.#cache.clear();
      this.#now = now;
    }
    let hit = this.#cache.get(zone);
    if (hit === undefined) {
      try {
        hit = sendInstant(zone, this.rule, now);
      } catch (err) {
        hit = err instanceof Error ? err : new Error(String(err));
      }
      if (this.#cache.size > 5_000) this.#cache.clear();
      this.#cache.set(zone, hit);
    }
    return hit;
  }
}
