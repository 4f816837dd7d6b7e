/**
 * The local-time part of `broadcast send --dry-run --local-time HH:MM [--on DATE]`: one read of
 * the segment's users projecting only the timezone (RecipientSource.zoneCounts), each zone placed
 * at its instant by the fire-time rule (core/local-time-plan.ts). Reads, never writes.
 */
import type { Config } from '../config/schema.js';
import { planLocalTime, timeInWindow, usersBefore } from '../core/local-time-plan.js';
import type { SegmentFilter } from '../core/segment.js';
import type { LocalTimeWave, RecipientSource } from '../ports/broadcasts.js';
import { localTimeJson, localTimeLines } from './local-time-view.js';

export async function localTimeDryRun(recipients: RecipientSource, filter: SegmentFilter, wave: LocalTimeWave, config: Config, nowMs: number): Promise<{ json: Record<string, unknown>; lines: string[] }> {
  const plan = planLocalTime(await recipients.zoneCounts(filter, config.mongodb.batchSize), wave);
  const q = config.quietHours.broadcasts;
  const notes = { past: usersBefore(plan, nowMs), quiet: timeInWindow(wave.time, q) ? `${q.start ?? ''}-${q.end ?? ''}` : undefined };
  return { json: localTimeJson(plan, notes), lines: localTimeLines(plan, notes) };
}
