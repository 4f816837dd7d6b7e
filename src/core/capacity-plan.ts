/**
 * Capacity plan (`mailwheel plan`): how many scheduled sends fall due in each minute of the next
 * hours, and how long each busy minute takes to drain at the configured rate windows. Pure: the
 * CLI streams the users in and prints the result.
 *
 * Fires are counted with the daemon's own {@link JobRegistry} driven the way the scheduler drives
 * it (take the earliest bucket, reschedule each job from its fire instant), so the plan counts
 * exactly what the daemon will fire, DST and weekday rules included.
 *
 * Draining is a per-second fluid model of the send queue: sends due in a minute arrive at its
 * start (or evenly over `spreadSeconds` with the spread window), first come first served, at
 * `perSecond` and within the token budgets of the per-minute / hour / day windows. The windows
 * refill on fixed boundaries counted from the start of the plan (Bottleneck refills
 * relative to when the daemon started, so a real window may be shifted by up to its length).
 * SMTP itself is taken as fast enough; with no rate window at all a minute drains at once.
 */
import type { Job, JobRegistry } from './job-registry.js';
import { MINUTE_MS, epochMinute, minuteStart } from './time.js';

export interface RateWindows {
  perSecond?: number | null | undefined;
  perMinute?: number | null | undefined;
  perHour?: number | null | undefined;
  perDay?: number | null | undefined;
}

/**
 * Counts the fires of every job in `registry` in [fromMs, fromMs + minutes), per minute, by
 * firing and rescheduling them as the scheduler would. Consumes the registry's schedule.
 */
export function countFires(registry: JobRegistry, fromMs: number, minutes: number, onFire?: (index: number, job: Job) => void): Int32Array {
  const counts = new Int32Array(minutes);
  const first = epochMinute(fromMs);
  const end = first + minutes;
  for (let m = registry.nextFireMinute(); m !== undefined && m < end; m = registry.nextFireMinute()) {
    const jobs = registry.takeDue(m);
    if (m >= first) {
      counts[m - first] = (counts[m - first] ?? 0) + jobs.length;
      if (onFire !== undefined) for (const job of jobs) onFire(m - first, job);
    }
    for (const job of jobs) registry.reschedule(job, job.fireAt);
  }
  return counts;
}

/** The `n` busiest minutes (most sends first; earlier first on ties), non-empty ones only. */
export function topMinutes(counts: ArrayLike<number>, n: number): number[] {
  const idx: number[] = [];
  for (let i = 0; i < counts.length; i++) if ((counts[i] ?? 0) > 0) idx.push(i);
  idx.sort((a, b) => (counts[b] ?? 0) - (counts[a] ?? 0) || a - b);
  return idx.slice(0, n);
}

/** When one minute's sends are all out. */
export interface Drain {
  /** Sends due in the minute. */
  sends: number;
  /** Sends due earlier and still queued when the minute starts. */
  backlogAtStart: number;
  /** Seconds from the start of the minute until its last send (undefined: not within the model's horizon). */
  drainSeconds: number | undefined;
  /** Average sends per second from the minute's start to its drain (what the windows allowed). */
  ratePerSecond: number | undefined;
}

export interface DrainModel {
  /** Drain of minute `i` of the plan. */
  drain(i: number): Drain;
  /** True when no window limits the rate (a minute drains as fast as SMTP takes it). */
  readonly unlimited: boolean;
  /** True when everything due up to minute `i` (its backlog included) is sent by the end of minute `i`. */
  outWithin(i: number): boolean;
}

/**
 * Runs the fluid model over the plan and beyond it (up to `tailSeconds` more, for the backlog of
 * the last minutes) and answers drain times per minute.
 */
export function drainModel(counts: ArrayLike<number>, rate: RateWindows, spreadSeconds = 0, tailSeconds = 7 * 86_400): DrainModel {
  const windows: Array<{ len: number; limit: number; left: number }> = [];
  for (const [len, limit] of [
    [60, rate.perMinute],
    [3600, rate.perHour],
    [86_400, rate.perDay],
  ] as const) {
    if (limit) windows.push({ len, limit, left: limit });
  }
  // The send queue sustains the per-second limit itself (core/pacing.ts: exact grant spacing,
  // the ArrivalGate absorbing early timers), so the model drains at the nominal rate.
  const perSecond = rate.perSecond || Infinity;
  const unlimited = perSecond === Infinity && windows.length === 0;
  const minutes = counts.length;
  // Cumulative arrivals at the end of each minute's arrival window, and cumulative sends per second.
  const arrivedBy = new Float64Array(minutes);
  let total = 0;
  for (let i = 0; i < minutes; i++) arrivedBy[i] = total += counts[i] ?? 0;
  const spread = Math.max(0, Math.min(59, Math.floor(spreadSeconds)));
  const horizon = minutes * 60 + tailSeconds;
  const sentBy: number[] = [0]; // sentBy[t] = sends completed by the end of second t-1
  // How sends flowed inside second t, to place the last one within it: at `flow[t]` per second
  // from the start of the second (a backlog drained at perSecond; Infinity: all at once), or,
  // when the second's own spread arrivals were the limit, as they arrived (flow 0 marks that).
  const flow: number[] = [];
  let queued = 0;
  let sent = 0;
  for (let t = 0; t < horizon && sent < total - 1e-9; t++) {
    const minute = Math.floor(t / 60);
    const second = t % 60;
    let arriving = 0;
    if (minute < minutes) {
      const n = counts[minute] ?? 0;
      if (spread === 0) queued += second === 0 ? n : 0;
      else if (second < spread) arriving = n / spread;
    }
    for (const w of windows) if (t % w.len === 0) w.left = w.limit;
    let cap = perSecond;
    for (const w of windows) cap = Math.min(cap, w.left);
    const can = Math.min(queued + arriving, cap);
    // Window budgets are released at once (Bottleneck reservoirs); only perSecond paces a second.
    flow.push(can >= queued + arriving - 1e-9 && arriving > 0 ? 0 : perSecond);
    for (const w of windows) w.left -= can;
    queued += arriving - can;
    sent += can;
    sentBy.push(sent);
  }

  const drain = (i: number): Drain => {
    const sends = counts[i] ?? 0;
    const startT = i * 60;
    const backlogAtStart = Math.max(0, (i > 0 ? (arrivedBy[i - 1] ?? 0) : 0) - (sentBy[startT] ?? sent));
    const target = (arrivedBy[i] ?? 0) - 1e-9;
    if (unlimited) return { sends, backlogAtStart, drainSeconds: spread === 0 ? 0 : spread, ratePerSecond: undefined };
    // First second whose end has `target` sent, then interpolate inside that second.
    let lo = startT;
    let hi = sentBy.length - 1;
    if ((sentBy[hi] ?? 0) < target) return { sends, backlogAtStart, drainSeconds: undefined, ratePerSecond: undefined };
    if (lo > hi) return { sends, backlogAtStart, drainSeconds: 0, ratePerSecond: undefined };
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((sentBy[mid] ?? 0) >= target) hi = mid;
      else lo = mid + 1;
    }
    const before = sentBy[hi - 1] ?? 0;
    const rateIn = flow[hi - 1] ?? 0;
    const inSecond = (sentBy[hi] ?? 0) - before;
    const fraction = rateIn === 0 ? (inSecond > 0 ? (target - before) / inSecond : 1) : rateIn === Infinity ? 0 : (target - before) / rateIn;
    const end = hi - 1 + Math.min(1, fraction);
    const drainSeconds = Math.max(0, end - startT);
    const drained = (arrivedBy[i] ?? 0) - (sentBy[startT] ?? 0);
    return { sends, backlogAtStart, drainSeconds, ratePerSecond: drainSeconds > 0 ? drained / drainSeconds : undefined };
  };
  // Compared in whole seconds, not by the drain time: a per-minute window releases its budget at
  // the minute's start, so what it held back goes out at second 0 of the next minute, which a
  // drain time of exactly 60 s cannot tell from a minute that just fits.
  const outWithin = (i: number): boolean => unlimited || (sentBy[(i + 1) * 60] ?? sent) >= (arrivedBy[i] ?? 0) - 1e-9;
  return { drain, unlimited, outWithin };
}

/** A plan, ready to print or serialise. */
export interface CapacityPlan {
  fromMs: number;
  minutes: number;
  /** Sends due per minute: scheduled, plus the waves of local-time broadcasts when there are any. */
  counts: Int32Array;
  total: number;
  /** The local-time broadcasts' share of `counts` per minute; absent when none is queued. */
  broadcast?: Int32Array | undefined;
  peaks: Array<{ index: number; minuteMs: number; burst: Drain; spread: Drain & { seconds: number } }>;
}

/**
 * Builds the plan from a registry already holding the users (scheduled from `fromMs`).
 * @param spreadSeconds the spread window to compare against (the configured one, or a what-if).
 */
export function buildPlan(registry: JobRegistry, fromMs: number, minutes: number, rate: RateWindows, spreadSeconds: number, peaks: number): CapacityPlan {
  return planFromCounts(countFires(registry, fromMs, minutes), fromMs, rate, spreadSeconds, peaks);
}

/**
 * {@link buildPlan} from counts already made (e.g. by {@link countFires}, less sends already
 * claimed). `broadcast`, when given, is the local-time broadcasts' share already included in
 * `counts` (see {@link addWaves}).
 */
export function planFromCounts(counts: Int32Array, fromMs: number, rate: RateWindows, spreadSeconds: number, peaks: number, broadcast?: Int32Array): CapacityPlan {
  const minutes = counts.length;
  let total = 0;
  for (const c of counts) total += c;
  const burst = drainModel(counts, rate, 0);
  const spread = drainModel(counts, rate, spreadSeconds);
  const start = minuteStart(fromMs);
  return {
    fromMs: start,
    minutes,
    counts,
    total,
    ...(broadcast === undefined ? {} : { broadcast }),
    peaks: topMinutes(counts, peaks).map((index) => ({
      index,
      minuteMs: start + index * MINUTE_MS,
      burst: burst.drain(index),
      spread: { ...spread.drain(index), seconds: spreadSeconds },
    })),
  };
}

/** A queued local-time broadcast as the plan sees it: its recipients per plan minute. */
export interface PlannedWave {
  id: string;
  minutes: ReadonlyArray<{ index: number; users: number; zones: readonly string[] }>;
}

/** The scheduled counts with every wave added, and the waves' share per minute. */
export function addWaves(scheduled: Int32Array, waves: readonly PlannedWave[]): { counts: Int32Array; broadcast: Int32Array } {
  const counts = Int32Array.from(scheduled);
  const broadcast = new Int32Array(scheduled.length);
  for (const w of waves) {
    for (const m of w.minutes) {
      if (m.index < 0 || m.index >= counts.length) continue;
      counts[m.index] = (counts[m.index] ?? 0) + m.users;
      broadcast[m.index] = (broadcast[m.index] ?? 0) + m.users;
    }
  }
  return { counts, broadcast };
}

/** A minute where a broadcast wave and the sends around it are more than the rate sends in that minute. */
export interface WaveCollision {
  index: number;
  minuteMs: number;
  /** Scheduled sends due in the minute. */
  scheduled: number;
  /** Broadcast recipients due in the minute, and whose. */
  broadcast: number;
  waves: Array<{ id: string; users: number; zones: string[] }>;
  /** Most sends one minute takes at `perSecond` and `perMinute` (Infinity when neither is set: an hour or day budget binds). */
  minuteCapacity: number;
  /** The minute's drain with every send counted (backlog from earlier minutes included). */
  drain: Drain;
}

/** Most sends one minute can take by the per-second and per-minute limits. */
export function minuteCapacity(rate: RateWindows): number {
  return Math.min(rate.perSecond ? rate.perSecond * 60 : Infinity, rate.perMinute || Infinity);
}

/**
 * The minutes where a broadcast wave lands and the sends of that minute (scheduled ones, the
 * wave, and whatever earlier minutes left queued) are not all out by the end of the minute, by
 * the same drain model as the peaks (burst: everything due at the minute's start). Scheduled mail
 * goes first in the send queue, so it is the wave's recipients who get it late.
 */
export function waveCollisions(plan: CapacityPlan, waves: readonly PlannedWave[], rate: RateWindows): WaveCollision[] {
  const broadcast = plan.broadcast;
  if (broadcast === undefined) return [];
  const model = drainModel(plan.counts, rate, 0);
  if (model.unlimited) return [];
  const out: WaveCollision[] = [];
  for (let i = 0; i < broadcast.length; i++) {
    const b = broadcast[i] ?? 0;
    if (b <= 0) continue;
    if (model.outWithin(i)) continue;
    const drain = model.drain(i);
    const whose: WaveCollision['waves'] = [];
    for (const w of waves) {
      const m = w.minutes.find((x) => x.index === i);
      if (m !== undefined && m.users > 0) whose.push({ id: w.id, users: m.users, zones: [...m.zones] });
    }
    out.push({ index: i, minuteMs: plan.fromMs + i * MINUTE_MS, scheduled: (plan.counts[i] ?? 0) - b, broadcast: b, waves: whose, minuteCapacity: minuteCapacity(rate), drain });
  }
  return out;
}
