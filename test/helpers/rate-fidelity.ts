/**
 * Measures how well a rate limit held, from the times at which work actually started (what an SMTP
 * server would see): the most starts in any sliding window, and the gaps between starts.
 */

/** The most entries of `times` (ms, any order) that fall in one window `[t, t + windowMs)`. */
export function maxInSlidingWindow(times: readonly number[], windowMs: number): number {
  const sorted = [...times].sort((x, y) => x - y);
  let best = 0;
  let from = 0;
  for (let to = 0; to < sorted.length; to++) {
    while ((sorted[to] ?? 0) - (sorted[from] ?? 0) >= windowMs) from++;
    best = Math.max(best, to - from + 1);
  }
  return best;
}

export interface GapStats {
  min: number;
  median: number;
  max: number;
}

/** Gaps between consecutive starts (ms), sorted by time. */
export function gapStats(times: readonly number[]): GapStats {
  const sorted = [...times].sort((x, y) => x - y);
  const gaps = sorted.slice(1).map((t, i) => t - (sorted[i] ?? t)).sort((x, y) => x - y);
  return { min: gaps[0] ?? 0, median: gaps[Math.floor(gaps.length / 2)] ?? 0, max: gaps[gaps.length - 1] ?? 0 };
}
