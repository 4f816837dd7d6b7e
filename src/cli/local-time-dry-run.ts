/**
 * The local-time part of `broadcast send --dry-run --local-time HH:MM [--on DATE]`: one read of
 * the segment's users projecting only the timezone (RecipientSource.zoneCounts), each zone placed
 * at its instant by the fire-time rule (core/local-time-plan.ts). Reads, never writes.
 */
import type { Config } from '../config/schema.js';
import { fireInstant, parseHHMM } from '../core/fire-time.js';
import { planLocalTime, timeInWindow, usersBefore } from '../core/local-time-plan.js';
import type { SegmentFilter } from '../core/segment.js';
import { DAY_MS } from '../core/time.js';
import type { LocalTimeWave, RecipientSource } from '../ports/broadcasts.js';
import { badArgument } from './context.js';
import { localTimeJson, localTimeLines } from './local-time-view.js';

export async function localTimeDryRun(recipients: RecipientSource, filter: SegmentFilter, wave: LocalTimeWave, config: Config, nowMs: number): Promise<{ json: Record<string, unknown>; lines: string[] }> {
  const plan = planLocalTime(await recipients.zoneCounts(filter, config.mongodb.batchSize), wave);
  const q = config.quietHours.broadcasts;
  const notes = { past: usersBefore(plan, nowMs), quiet: timeInWindow(wave.time, q) ? `${q.start ?? ''}-${q.end ?? ''}` : undefined };
  return { json: localTimeJson(plan, notes), lines: localTimeLines(plan, notes) };
}

/**
 * `--local-time HH:MM [--on YYYY-MM-DD]` as the dry run reads them, checked before anything
 * connects (exit 64 naming the option). Without `--on` the date is tomorrow's UTC date, still
 * ahead in every zone. The same rules and messages as the sending side's parser
 * (issue 16's other half, `parseLocalTime` in cli/local-time-option.ts): on merge, that one
 * replaces this (`parseLocalTime(opts, now)?.wave`).
 */
export function parseLocalTimeWave(opts: { localTime?: string | undefined; on?: string | undefined; at?: string | undefined }, now: number): LocalTimeWave | undefined {
  if (opts.localTime === undefined) {
    if (opts.on !== undefined) throw badArgument('--on: only with --local-time HH:MM (the local date of the wave)');
    return undefined;
  }
  if (opts.at !== undefined) throw badArgument("--local-time and --at: give one of them (--at starts everyone at one instant; --local-time sends at each recipient's local time)");
  const time = opts.localTime;
  if (parseHHMM(time) === undefined) throw badArgument(`--local-time: "${time}" is not HH:MM (24-hour, 00:00..23:59)`);
  const date = opts.on ?? new Date(now + DAY_MS).toISOString().slice(0, 10);
  let last: number;
  try {
    last = fireInstant('Etc/GMT+12', date, time); // the zone furthest west: the wave's last instant
  } catch {
    throw badArgument(`--on: "${date}" is not a date (YYYY-MM-DD)`);
  }
  if (last <= now) throw badArgument(`--local-time ${time} --on ${date}: that moment has passed in every time zone (the last, UTC-12, was ${new Date(last).toISOString()})`);
  return { time, date };
}
