/**
 * How `broadcast send --dry-run --local-time` shows where a local-time broadcast falls in UTC:
 * recipients per UTC hour (a bar each) and per zone, zones sharing an instant on one line; and
 * the same as JSON. Pure string building over core/local-time-plan.ts.
 */
import { formatOffset, groupByInstant, type LocalTimePlan } from '../core/local-time-plan.js';
import { formatCount } from './format.js';

export interface LocalTimeNotes {
  /** Recipients whose instant is already past when the dry run ran. */
  past: number;
  /** The wave's time lies inside `quietHours.broadcasts` (shown as `start-end`), or undefined. */
  quiet: string | undefined;
}

const BAR = 30;

function utcMinute(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')}Z`;
}

function zonesText(zones: ReadonlyArray<{ zone: string; users: number }>, shown = 3): string {
  if (zones.length === 1) return zones[0]?.zone ?? '';
  const head = zones.slice(0, shown).map((z) => `${z.zone} ${formatCount(z.users)}`).join(', ');
  return zones.length > shown ? `${head} +${zones.length - shown} more zones` : head;
}

/** The lines the text dry run prints for a local-time broadcast. */
export function localTimeLines(plan: LocalTimePlan, notes: LocalTimeNotes): string[] {
  const { wave } = plan;
  const first = plan.zones[0];
  const last = plan.zones.at(-1);
  const span = first === undefined || last === undefined ? 'nobody to place' : `${formatCount(plan.total)} users in ${plan.zones.length} zone${plan.zones.length === 1 ? '' : 's'}, ${utcMinute(first.at)} to ${utcMinute(last.at)}`;
  const lines = [`local time  ${wave.time} on ${wave.date} in each recipient's zone: ${span} (users the segment matches, before the suppression list and address checks)`];
  if (plan.invalid.users > 0) lines.push(`invalid zone ${formatCount(plan.invalid.users)} users (${plan.invalid.values.join(', ')}): no local time to send at, not counted below`);
  if (notes.past > 0) lines.push(`note: for ${formatCount(notes.past)} of them ${wave.time} on ${wave.date} is already past`);
  if (notes.quiet !== undefined) lines.push(`note: ${wave.time} is inside quietHours.broadcasts (${notes.quiet}): the run holds them until the window ends in their zone, so these instants are the earliest`);
  if (plan.hours.length === 0) return lines;
  const top = Math.max(...plan.hours.map((h) => h.users));
  const width = Math.max(...plan.hours.map((h) => formatCount(h.users).length));
  lines.push('per UTC hour:');
  for (const h of plan.hours) {
    const bar = '█'.repeat(Math.max(1, Math.round((h.users / top) * BAR))).padEnd(BAR);
    lines.push(`  ${utcMinute(h.hourMs)}  ${bar}  ${formatCount(h.users).padStart(width)}  (${h.zones} zone${h.zones === 1 ? '' : 's'})`);
  }
  lines.push('per zone, by instant:');
  const groups = groupByInstant(plan);
  const gw = Math.max(...groups.map((g) => formatCount(g.users).length));
  for (const g of groups) {
    // A time in a DST gap fires when the gap ends: say what the clock reads instead.
    const moved = g.zones.filter((z) => z.localTime !== wave.time).map((z) => `${g.zones.length === 1 ? '' : `${z.zone}: `}${wave.time} does not exist that day, sent at ${z.localTime}`);
    lines.push(`  ${utcMinute(g.at)}  ${formatOffset(g.offsetMinutes)}  ${formatCount(g.users).padStart(gw)}  ${zonesText(g.zones)}${moved.length > 0 ? ` (${moved.join('; ')})` : ''}`);
  }
  return lines;
}

/** The same as JSON-ready data (`localTime` of `broadcast send --dry-run --json`). */
export function localTimeJson(plan: LocalTimePlan, notes: LocalTimeNotes): Record<string, unknown> {
  return {
    time: plan.wave.time,
    date: plan.wave.date,
    users: plan.total,
    zones: plan.zones.length,
    invalidZone: plan.invalid,
    first: plan.zones[0] === undefined ? null : new Date(plan.zones[0].at).toISOString(),
    last: plan.zones.at(-1) === undefined ? null : new Date(plan.zones.at(-1)?.at ?? 0).toISOString(),
    past: notes.past,
    quiet: notes.quiet ?? null,
    hours: plan.hours.map((h) => ({ hour: new Date(h.hourMs).toISOString(), users: h.users, zones: h.zones })),
    perZone: plan.zones.map((z) => ({ zone: z.zone, users: z.users, at: new Date(z.at).toISOString(), offset: formatOffset(z.offsetMinutes), localTime: z.localTime })),
  };
}
