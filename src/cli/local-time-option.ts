/**
 * `broadcast send --local-time HH:MM [--on YYYY-MM-DD]`: the wave each recipient gets the
 * broadcast at, checked before anything connects (bad input exits 64 naming the option). The
 * default date is tomorrow's UTC date, a date that is still ahead in every zone for most of the
 * day (today's would already be past in the zones east of the operator).
 */
import { fireInstant, parseHHMM } from '../core/fire-time.js';
import { DAY_MS } from '../core/time.js';
import type { LocalTimeWave } from '../ports/broadcasts.js';
import { badArgument } from './context.js';

/** Tomorrow's date in UTC, `YYYY-MM-DD`. */
export function tomorrowUtc(nowMs: number): string {
  return new Date(nowMs + DAY_MS).toISOString().slice(0, 10);
}

/** The wave the options name, or undefined without `--local-time`. */
export function parseLocalTimeOption(opts: { localTime?: string | undefined; on?: string | undefined }, nowMs: number): LocalTimeWave | undefined {
  if (opts.localTime === undefined) {
    if (opts.on !== undefined) throw badArgument(`--on: "${opts.on}" names the local date of a --local-time broadcast; give --local-time HH:MM too`);
    return undefined;
  }
  const time = opts.localTime;
  if (parseHHMM(time) === undefined) throw badArgument(`--local-time: "${time}" is not a time HH:MM (24-hour, 00:00..23:59, e.g. 09:00)`);
  const date = opts.on ?? tomorrowUtc(nowMs);
  try {
    fireInstant('UTC', date, time); // the one date check of the fire-time rule: 2027-02-30 is refused
  } catch {
    throw badArgument(`--on: "${date}" is not a date YYYY-MM-DD (e.g. ${tomorrowUtc(nowMs)})`);
  }
  return { time, date };
}
