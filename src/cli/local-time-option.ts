/**
 * `broadcast send --local-time HH:MM [--on YYYY-MM-DD]`: the wave every recipient gets at their
 * own local time. Checked before anything is written (a bad time or date, or `--at` beside it, is
 * exit 64). Without `--on` the date is tomorrow's UTC date: tomorrow's HH:MM is still ahead in
 * every zone (UTC+14 reaches it first, at HH:MM + 10 h UTC today: 19:00 UTC for 09:00), so a
 * wave queued during the UTC day reaches everyone on time; `--on` picks any other date.
 */
import { fireInstant, parseHHMM } from '../core/fire-time.js';
import { DAY_MS } from '../core/time.js';
import type { LocalTimeWave } from '../ports/broadcasts.js';
import { badArgument } from './context.js';

/** The zones furthest east and west: the wave's first and last instants. */
const EASTMOST = 'Etc/GMT-14';
const WESTMOST = 'Etc/GMT+12';

export interface LocalTimeOptions {
  localTime?: string | undefined;
  on?: string | undefined;
  at?: string | undefined;
}

export interface ParsedWave {
  wave: LocalTimeWave;
  /** The wave's first instant (UTC+14) and its last (UTC-12), ms. */
  first: number;
  last: number;
}

/** The wave `--local-time` / `--on` describe, or undefined without `--local-time`. */
export function parseLocalTime(opts: LocalTimeOptions, now: number): ParsedWave | undefined {
  if (opts.localTime === undefined) {
    if (opts.on !== undefined) throw badArgument('--on: only with --local-time HH:MM (the local date of the wave)');
    return undefined;
  }
  if (opts.at !== undefined) throw badArgument('--local-time and --at: give one of them (--at starts everyone at one instant; --local-time sends at each recipient\'s local time)');
  const time = opts.localTime;
  if (parseHHMM(time) === undefined) throw badArgument(`--local-time: "${time}" is not HH:MM (24-hour, 00:00..23:59)`);
  const date = opts.on ?? new Date(now + DAY_MS).toISOString().slice(0, 10);
  let first: number;
  let last: number;
  try {
    first = fireInstant(EASTMOST, date, time);
    last = fireInstant(WESTMOST, date, time);
  } catch {
    throw badArgument(`--on: "${date}" is not a date (YYYY-MM-DD)`);
  }
  if (last <= now) throw badArgument(`--local-time ${time} --on ${date}: that moment has passed in every time zone (the last, UTC-12, was ${new Date(last).toISOString()})`);
  return { wave: { time, date }, first, last };
}
