/**
 * The local-time broadcasts `mailwheel plan` adds to its curve: every open broadcast (queued,
 * running or paused) stored with `localTime`, its recipients counted per zone with one read of
 * the segment's users (RecipientSource.zoneCounts), placed at each zone's instant
 * (core/local-time-plan.ts) and cut to the plan's minutes.
 */
import type { Stores } from '../app/stores.js';
import type { Config } from '../config/schema.js';
import type { PlannedWave } from '../core/capacity-plan.js';
import { planLocalTime, timeInWindow, waveMinutes, type LocalTimePlan } from '../core/local-time-plan.js';
import { parseSegment, recipientFilter, SegmentError } from '../core/segment.js';
import type { BroadcastDoc, BroadcastStatus, LocalTimeWave } from '../ports/broadcasts.js';
import { formatCount } from './format.js';

/** One local-time broadcast in the plan. */
export interface WaveSummary {
  id: string;
  status: BroadcastStatus;
  localTime: LocalTimeWave;
  /** Recipients with a zone that can be placed (segment users, before suppression and address checks). */
  users: number;
  zones: number;
  invalidZone: number;
  /** Recipients whose instant falls inside the plan's window. */
  inPlan: number;
  first: string | null;
  last: string | null;
  /** The wave's time is inside `quietHours.broadcasts`: the run holds it, these instants are the earliest. */
  quiet: boolean;
}

export interface PlanWaves {
  waves: PlannedWave[];
  summaries: WaveSummary[];
  /** Broadcasts left out, with why (a stored segment or wave that no longer reads). */
  skipped: string[];
}

export async function planWaves(store: Stores, config: Config, fromMs: number, minutes: number): Promise<PlanWaves> {
  const out: PlanWaves = { waves: [], summaries: [], skipped: [] };
  const open = (await store.broadcasts.open()).filter((d): d is BroadcastDoc & { localTime: LocalTimeWave } => d.localTime !== undefined);
  for (const doc of open) {
    let plan: LocalTimePlan;
    try {
      const filter = recipientFilter(parseSegment(doc.segment).filter, config.users.fields);
      plan = planLocalTime(await store.recipients.zoneCounts(filter, config.mongodb.batchSize), doc.localTime);
    } catch (err) {
      // Checked when it was written; a document edited by hand can still be wrong.
      if (!(err instanceof RangeError) && !(err instanceof SegmentError)) throw err;
      out.skipped.push(`broadcast ${doc._id}: ${err.message}; left out of the plan`);
      continue;
    }
    const minutesOf = waveMinutes(plan, fromMs, minutes);
    out.waves.push({ id: doc._id, minutes: minutesOf });
    out.summaries.push({
      id: doc._id,
      status: doc.status,
      localTime: doc.localTime,
      users: plan.total,
      zones: plan.zones.length,
      invalidZone: plan.invalid.users,
      inPlan: minutesOf.reduce((a, m) => a + m.users, 0),
      first: plan.zones[0] === undefined ? null : new Date(plan.zones[0].at).toISOString(),
      last: plan.zones.at(-1) === undefined ? null : new Date(plan.zones.at(-1)?.at ?? 0).toISOString(),
      quiet: timeInWindow(doc.localTime.time, config.quietHours.broadcasts),
    });
  }
  return out;
}

/** One line per local-time broadcast for the text form of `plan`. */
export function waveSummaryLines(summaries: readonly WaveSummary[]): string[] {
  if (summaries.length === 0) return [];
  const lines = ['local-time broadcasts (queued, running or paused), counted in the curve at each zone\'s instant:'];
  for (const s of summaries) {
    const span = s.first === null ? 'nobody in the segment' : `${formatCount(s.users)} users in ${s.zones} zone${s.zones === 1 ? '' : 's'}, ${s.first.slice(0, 16)}Z to ${(s.last ?? s.first).slice(0, 16)}Z`;
    let line = `  ${s.id} (${s.status}): ${s.localTime.time} local on ${s.localTime.date}, ${span}; ${formatCount(s.inPlan)} of them in this plan`;
    if (s.invalidZone > 0) line += ` (${formatCount(s.invalidZone)} with an invalid zone left out)`;
    if (s.quiet) line += `; ${s.localTime.time} is inside quietHours.broadcasts, so the run holds them until the window ends: these instants are the earliest`;
    lines.push(line);
  }
  return lines;
}
