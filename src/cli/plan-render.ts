/**
 * How `mailwheel plan` shows a {@link CapacityPlan}: a terminal bar chart (block characters, the
 * busiest minute of each column), the peak lines and the JSON form (the SVG picture is
 * plan-svg.ts). Pure string building, no I/O.
 */
import type { CapacityPlan, Drain, RateWindows, WaveCollision } from '../core/capacity-plan.js';
import { HOUR_MS, MINUTE_MS } from '../core/time.js';
import { formatCount, formatRate } from './format.js';

export { formatCount, formatRate };

const BLOCKS = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

function hhmm(ms: number): string {
  return new Date(ms).toISOString().slice(11, 16);
}

function hhmmss(ms: number): string {
  return new Date(ms).toISOString().slice(11, 19);
}

/** The configured windows, e.g. `14/s, 50,000/day` (or `no rate limit`). */
export function describeRate(rate: RateWindows): string {
  const parts: string[] = [];
  if (rate.perSecond) parts.push(`${formatCount(rate.perSecond)}/s`);
  if (rate.perMinute) parts.push(`${formatCount(rate.perMinute)}/min`);
  if (rate.perHour) parts.push(`${formatCount(rate.perHour)}/h`);
  if (rate.perDay) parts.push(`${formatCount(rate.perDay)}/day`);
  return parts.length > 0 ? parts.join(', ') : 'no rate limit';
}

function drainText(minuteMs: number, d: Drain): string {
  if (d.drainSeconds === undefined) return 'does not drain within a week at these limits';
  const by = hhmmss(minuteMs + Math.ceil(d.drainSeconds) * 1000);
  const rate = d.ratePerSecond === undefined ? '' : ` at ${formatRate(d.ratePerSecond)}`;
  return `drains by ${by}${rate}`;
}

/** One line per peak: "09:00 UTC: 3,412 sends, drains by 09:04:04 at 14/s (spread 30 s: ...)". */
export function peakLines(plan: CapacityPlan, unlimited: boolean): string[] {
  return plan.peaks.map((p) => {
    let line = `${hhmm(p.minuteMs)} UTC: ${formatCount(p.burst.sends)} sends`;
    const wave = plan.broadcast?.[p.index] ?? 0;
    if (wave > 0) line += ` (${formatCount(wave)} of them a local-time broadcast)`;
    if (unlimited) return `${line}, no rate window configured: as fast as the SMTP server accepts`;
    if (p.burst.backlogAtStart > 0.5) line += ` (+${formatCount(p.burst.backlogAtStart)} still queued from earlier)`;
    line += `, ${drainText(p.minuteMs, p.burst)}`;
    if (p.spread.seconds > 0) line += `; spread over ${p.spread.seconds} s: ${drainText(p.minuteMs, p.spread)}`;
    return line;
  });
}

/** A bar chart `height` rows tall; each column is the busiest minute of its slice of the plan. */
export function terminalChart(plan: CapacityPlan, width = 96, height = 10): string {
  const cols = Math.max(1, Math.min(width, plan.minutes));
  const per = Math.ceil(plan.minutes / cols);
  const values: number[] = [];
  for (let c = 0; c * per < plan.minutes; c++) {
    let max = 0;
    for (let i = c * per; i < Math.min(plan.minutes, (c + 1) * per); i++) max = Math.max(max, plan.counts[i] ?? 0);
    values.push(max);
  }
  const top = Math.max(1, ...values);
  const label = formatCount(top);
  const pad = ' '.repeat(label.length);
  const rows: string[] = [];
  for (let r = height - 1; r >= 0; r--) {
    let line = '';
    for (const v of values) {
      const eighths = Math.round((v / top) * height * 8) - r * 8;
      line += BLOCKS[Math.max(0, Math.min(8, eighths))] ?? ' ';
    }
    rows.push(`${r === height - 1 ? label : r === 0 ? '0'.padStart(label.length) : pad} │${line}`);
  }
  rows.push(`${pad} └${'─'.repeat(values.length)}`);
  // Hour labels every 3 hours (or every tick that fits), under their column.
  let axis = ' '.repeat(values.length + 2);
  const step = Math.max(1, Math.ceil((8 * per) / 60 / 3) * 3);
  const startHour = Math.ceil(plan.fromMs / HOUR_MS);
  for (let h = startHour; (h * HOUR_MS - plan.fromMs) / MINUTE_MS < plan.minutes; h++) {
    if (h % step !== 0) continue;
    const col = Math.floor((h * HOUR_MS - plan.fromMs) / MINUTE_MS / per) + 2;
    const text = hhmm(h * HOUR_MS);
    if (col + text.length <= axis.length) axis = axis.slice(0, col) + text + axis.slice(col + text.length);
  }
  rows.push(pad + axis);
  const head = `sends due per minute, ${new Date(plan.fromMs).toISOString().slice(0, 16)}Z + ${plan.minutes / 60} h (each column: the busiest of ${per} min)`;
  return [head, ...rows].join('\n');
}

/** The plan as JSON-ready data (non-empty minutes only). */
export function planJson(plan: CapacityPlan, extra: Record<string, unknown>): Record<string, unknown> {
  const perMinute: Array<{ minute: string; sends: number; broadcast?: number }> = [];
  // `broadcast` (the local-time broadcasts' share) only when one is queued: the scheduled-only form stays as it was.
  const waveOf = (i: number): { broadcast?: number } => (plan.broadcast === undefined ? {} : { broadcast: plan.broadcast[i] ?? 0 });
  plan.counts.forEach((n, i) => {
    if (n > 0) perMinute.push({ minute: new Date(plan.fromMs + i * MINUTE_MS).toISOString(), sends: n, ...waveOf(i) });
  });
  const drain = (minuteMs: number, d: Drain) => ({
    backlogAtStart: Math.round(d.backlogAtStart),
    drainSeconds: d.drainSeconds === undefined ? null : Math.round(d.drainSeconds * 100) / 100,
    drainsBy: d.drainSeconds === undefined ? null : new Date(minuteMs + Math.round(d.drainSeconds * 1000)).toISOString(),
    ratePerSecond: d.ratePerSecond === undefined ? null : Math.round(d.ratePerSecond * 100) / 100,
  });
  return {
    from: new Date(plan.fromMs).toISOString(),
    to: new Date(plan.fromMs + plan.minutes * MINUTE_MS).toISOString(),
    ...extra,
    total: plan.total,
    perMinute,
    peaks: plan.peaks.map((p) => ({
      minute: new Date(p.minuteMs).toISOString(),
      sends: p.burst.sends,
      ...waveOf(p.index),
      ...drain(p.minuteMs, p.burst),
      spread: { seconds: p.spread.seconds, ...drain(p.minuteMs, p.spread) },
    })),
  };
}

/** `Asia/Kolkata, Asia/Colombo +3 more`: a minute's zones, without a long list. */
function zoneList(zones: readonly string[], shown = 3): string {
  const head = zones.slice(0, shown).join(', ');
  return zones.length > shown ? `${head} +${zones.length - shown} more` : head;
}

/**
 * One warning per minute where a local-time broadcast's wave and the scheduled sends are more
 * than the rate sends in that minute: what collides, the minute's capacity, and when the wave is out.
 */
export function collisionLines(collisions: readonly WaveCollision[], rate: RateWindows): string[] {
  return collisions.map((c) => {
    const whose = c.waves.map((w) => `broadcast ${w.id} (${formatCount(w.users)} in ${zoneList(w.zones)})`).join(' + ');
    const backlog = c.drain.backlogAtStart > 0.5 ? ` + ${formatCount(c.drain.backlogAtStart)} still queued from earlier` : '';
    const total = c.broadcast + c.scheduled + Math.round(c.drain.backlogAtStart);
    const cap = Number.isFinite(c.minuteCapacity) ? `more than the ${formatCount(c.minuteCapacity)} a minute takes at ${describeRate(rate)}` : `more than the rate windows (${describeRate(rate)}) leave for it`;
    const out = c.drain.drainSeconds === undefined ? 'the wave does not drain within a week at these limits' : `scheduled mail goes first and the wave's last message goes by ${hhmmss(c.minuteMs + Math.ceil(c.drain.drainSeconds) * 1000)}`;
    return `warning: ${new Date(c.minuteMs).toISOString().slice(0, 16)}Z: ${whose} + ${formatCount(c.scheduled)} scheduled${backlog} = ${formatCount(total)} sends, ${cap}; ${out}`;
  });
}

/** The collisions as JSON-ready data. */
export function collisionJson(collisions: readonly WaveCollision[]): Array<Record<string, unknown>> {
  return collisions.map((c) => ({
    minute: new Date(c.minuteMs).toISOString(),
    broadcast: c.broadcast,
    scheduled: c.scheduled,
    backlogAtStart: Math.round(c.drain.backlogAtStart),
    minuteCapacity: Number.isFinite(c.minuteCapacity) ? c.minuteCapacity : null,
    drainSeconds: c.drain.drainSeconds === undefined ? null : Math.round(c.drain.drainSeconds * 100) / 100,
    drainsBy: c.drain.drainSeconds === undefined ? null : new Date(c.minuteMs + Math.round(c.drain.drainSeconds * 1000)).toISOString(),
    waves: c.waves,
  }));
}
