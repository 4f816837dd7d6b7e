/**
 * Arrival times (ms, any common origin) turned into the figures the rate and peak suites report:
 * counts per fixed one-second window, the busiest sliding one-second window, and a per-second
 * series for the report's charts.
 */

/** Messages in each whole second from the first arrival: [window start (s), count]. */
export function perSecond(arrivals: readonly number[], origin = arrivals[0] ?? 0): Array<[number, number]> {
  if (arrivals.length === 0) return [];
  const last = arrivals[arrivals.length - 1] ?? origin;
  const counts = new Array<number>(Math.floor((last - origin) / 1000) + 1).fill(0);
  for (const t of arrivals) {
    const i = Math.floor((t - origin) / 1000);
    if (i >= 0 && i < counts.length) counts[i] = (counts[i] ?? 0) + 1;
  }
  return counts.map((c, i) => [i, c]);
}

/**
 * The largest number of arrivals in any window of `windowMs` (sliding: every arrival starts a
 * window), and how many of those windows hold more than `limit`.
 */
export function slidingWindows(arrivals: readonly number[], windowMs: number, limit: number): { max: number; above: number; windows: number } {
  let max = 0;
  let above = 0;
  let j = 0;
  for (let i = 0; i < arrivals.length; i++) {
    const start = arrivals[i] ?? 0;
    while (j < arrivals.length && (arrivals[j] ?? 0) < start + windowMs) j++;
    const n = j - i;
    if (n > max) max = n;
    if (n > limit) above++;
  }
  return { max, above, windows: arrivals.length };
}

/**
 * The busiest and the quietest fixed one-second window from the first arrival (`perSecond`
 * counts). The last window is cut short by the end of the run, so it is left out of the minimum
 * (`fullWindows` are the others); it stays in the maximum, since a short window cannot inflate it.
 */
export function fixedWindowExtremes(arrivals: readonly number[], origin = arrivals[0] ?? 0): { max: number; min: number | null; fullWindows: number } {
  const counts = perSecond(arrivals, origin).map(([, c]) => c);
  const full = counts.slice(0, -1);
  return { max: Math.max(0, ...counts), min: full.length === 0 ? null : Math.min(...full), fullWindows: full.length };
}
