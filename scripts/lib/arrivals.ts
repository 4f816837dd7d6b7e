/**
 * Figures of a run read from the arrivals at the server (scripts/lib/arrival-capture.ts): the
 * busiest sliding window, the rate achieved while there was work, and who got what.
 */
import type { Arrival } from './arrival-capture.js';

export interface SlidingMax {
  /**
   * The most messages that CERTAINLY fell in one window `[s, s + windowMs)`: counted only when
   * their lower bound `lb` is >= s and their read time `at` is < s + windowMs. A late read never
   * inflates it; it exceeds the limit only when the server really received more.
   */
  certain: number;
  /** The same from the read times alone (`at`): what a naive count sees (a late read inflates it). */
  recorded: number;
  /** Windows (one starting at each arrival's recorded time) holding more than `limit` by the recorded times. */
  recordedAbove: number;
  /** The largest `at - lb` seen: how late the capture may have read a message, ms. */
  maxUncertaintyMs: number;
}

/** Busiest sliding window of `windowMs` (see {@link SlidingMax}); `limit` only counts windows above it. */
export function slidingMax(arrivals: readonly Arrival[], windowMs: number, limit = Number.POSITIVE_INFINITY): SlidingMax {
  const at = arrivals.map((a) => a.at).sort((x, y) => x - y);
  let recorded = 0;
  let recordedAbove = 0;
  for (let i = 0, j = 0; i < at.length; i++) {
    while (j < at.length && (at[j] ?? 0) < (at[i] ?? 0) + windowMs) j++;
    recorded = Math.max(recorded, j - i);
    if (j - i > limit) recordedAbove++;
  }
  // Certain count: windows start at each lower bound; candidates are the arrivals whose lower
  // bound falls in [s, s + windowMs), of which those read before s + windowMs count.
  const byLb = [...arrivals].sort((x, y) => x.lb - y.lb);
  let certain = 0;
  for (let i = 0, j = 0; i < byLb.length; i++) {
    const s = byLb[i]?.lb ?? 0;
    while (j < byLb.length && (byLb[j]?.lb ?? 0) < s + windowMs) j++;
    let n = 0;
    for (let k = i; k < j; k++) if ((byLb[k]?.at ?? 0) < s + windowMs) n++;
    certain = Math.max(certain, n);
  }
  const maxUncertaintyMs = arrivals.reduce((m, a) => Math.max(m, a.at - a.lb), 0);
  return { certain, recorded, recordedAbove, maxUncertaintyMs };
}

export interface Achieved {
  /** Messages per second from the first arrival to the start of the tail. */
  perSecond: number;
  /** Seconds that span covers. */
  seconds: number;
  /** Messages in it. */
  messages: number;
}

/**
 * The rate achieved "while there is work": from the first arrival to the arrival `tail` messages
 * before the last (the last second's worth at the limit, when daemons run out of work unevenly).
 */
export function achievedRate(arrivals: readonly Arrival[], tail: number): Achieved {
  const at = arrivals.map((a) => a.at).sort((x, y) => x - y);
  const end = Math.max(1, at.length - 1 - tail);
  const seconds = ((at[end] ?? 0) - (at[0] ?? 0)) / 1000;
  return { perSecond: seconds > 0 ? end / seconds : Number.NaN, seconds, messages: end };
}

export interface Coverage {
  /** Expected recipients that received nothing. */
  missing: string[];
  /** Messages beyond the first, over every recipient. */
  duplicates: number;
  /** Recipients that received more than one. */
  duplicated: number;
  /** Recipients that were not expected at all. */
  unexpected: number;
}

/** Messages per recipient among `arrivals` (e.g. one run's slice of a capture used for several). */
export function countByRecipient(arrivals: readonly Arrival[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const a of arrivals) counts.set(a.rcpt, (counts.get(a.rcpt) ?? 0) + 1);
  return counts;
}

/** Who of `expected` received nothing, and how many extra messages there were. */
export function coverage(counts: ReadonlyMap<string, number>, expected: Iterable<string>): Coverage {
  const want = new Set(expected);
  const missing = [...want].filter((r) => (counts.get(r) ?? 0) === 0);
  let duplicates = 0;
  let duplicated = 0;
  let unexpected = 0;
  for (const [rcpt, n] of counts) {
    if (!want.has(rcpt)) unexpected++;
    if (n > 1) {
      duplicates += n - 1;
      duplicated++;
    }
  }
  return { missing, duplicates, duplicated, unexpected };
}

/** Messages whose recorded time falls in [from, to) (epoch ms). */
export function countBetween(arrivals: readonly Arrival[], from: number, to: number): number {
  let n = 0;
  for (const a of arrivals) if (a.at >= from && a.at < to) n++;
  return n;
}

/** [seconds since `origin`, messages] per whole second, for the bench charts. */
export function perSecondSeries(arrivals: readonly Arrival[], origin: number): Array<[number, number]> {
  const counts: number[] = [];
  for (const a of arrivals) {
    const i = Math.floor((a.at - origin) / 1000);
    if (i >= 0) counts[i] = (counts[i] ?? 0) + 1;
  }
  return Array.from(counts, (c, i) => [i, c ?? 0]);
}
