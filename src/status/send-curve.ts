/**
 * The status page's next 24 h: scheduled sends due per minute, read from the daemon's own
 * in-memory registry (no database scan), with the part already claimed and the rate's capacity.
 *
 * `mailwheel plan` counts fires by draining a copy of the registry (core/capacity-plan.ts
 * countFires); the daemon's registry cannot be drained, and copying a million jobs every refresh
 * would cost more than the page is worth. Every job sits in the bucket of its next fire, and a
 * slot's following fire is on the next local date (about 24 h later), so the buckets of the next
 * 24 h are the fires of the next 24 h, short of one case: a slot that fires within the first hour
 * and again less than 24 h later because a DST change shortens the local day (at most an hour's
 * worth of slots, on two days a year, in the zones that change then).
 *
 * What the scheduler already took (the minute being sent, a catch-up) is no longer in the buckets:
 * {@link FiredMinutes} remembers how many jobs each recent minute fired, and that is the claimed
 * layer. The peaks and the capacity line come from the plan's own model (planFromCounts,
 * minuteCapacity), so the page and `mailwheel plan` agree.
 */
import { minuteCapacity, planFromCounts, type CapacityPlan, type RateWindows } from '../core/capacity-plan.js';
import { MINUTE_MS, epochMinute } from '../core/time.js';

/** How many minutes back the fired counts are kept (longer than any minute takes to send). */
const FIRED_KEPT_MINUTES = 120;

/** Jobs fired per epoch minute, recently (the scheduler's `onDue`). Bounded by {@link FIRED_KEPT_MINUTES}. */
export class FiredMinutes {
  readonly #counts = new Map<number, number>();

  note(minute: number, jobs: number): void {
    this.#counts.set(minute, (this.#counts.get(minute) ?? 0) + jobs);
    for (const m of this.#counts.keys()) if (m < minute - FIRED_KEPT_MINUTES) this.#counts.delete(m);
  }

  /** Fired jobs per minute of [first, first + minutes) (epoch minutes). */
  within(first: number, minutes: number): Int32Array {
    const out = new Int32Array(minutes);
    for (const [m, n] of this.#counts) if (m >= first && m < first + minutes) out[m - first] = n;
    return out;
  }
}

export interface SendCurve {
  fromMs: number;
  minutes: number;
  /** Scheduled sends still to send per minute. */
  scheduled: Int32Array;
  /** Sends of the same minutes the scheduler already took (sent or being sent). */
  claimed: Int32Array;
  /** Sums of the two layers. */
  totals: { scheduled: number; claimed: number };
  /** Most sends one minute takes at the configured rate; null: no per-second or per-minute limit. */
  capacityPerMinute: number | null;
  /** The plan's busiest minutes (start ms, sends still to send there), busiest first. */
  peaks: Array<{ minuteMs: number; sends: number; drainSeconds: number | undefined }>;
}

/**
 * @param buckets the registry's `bucketSizes()`: [epoch minute, jobs] of every non-empty bucket
 * @param nowMs the curve starts at the start of this minute
 */
export function sendCurve(buckets: ReadonlyArray<readonly [number, number]>, fired: FiredMinutes, nowMs: number, minutes: number, rate: RateWindows, peaks = 5): SendCurve {
  const first = epochMinute(nowMs);
  const scheduled = new Int32Array(minutes);
  for (const [m, n] of buckets) {
    // An overdue bucket (the scheduler is behind) is due now: counted in the first minute.
    const i = Math.max(0, m - first);
    if (i < minutes) scheduled[i] = (scheduled[i] ?? 0) + n;
  }
  const claimed = fired.within(first, minutes);
  const plan: CapacityPlan = planFromCounts(scheduled, first * MINUTE_MS, rate, 0, peaks);
  const cap = minuteCapacity(rate);
  return {
    fromMs: first * MINUTE_MS,
    minutes,
    scheduled,
    claimed,
    totals: { scheduled: plan.total, claimed: claimed.reduce((a, b) => a + b, 0) },
    capacityPerMinute: Number.isFinite(cap) ? cap : null,
    peaks: plan.peaks.map((p) => ({ minuteMs: p.minuteMs, sends: p.burst.sends, drainSeconds: p.burst.drainSeconds })),
  };
}
