/**
 * Units of time and waiting on the injected clock. Every part that reads the time or waits takes
 * a {@link Clock} (ports), so a test moves time without waiting; these helpers keep the arithmetic
 * in one place instead of a `MINUTE_MS` and a `sleep` in every file.
 */
import type { Clock } from '../ports/clock.js';

export const SECOND_MS = 1_000;
export const MINUTE_MS = 60_000;
export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

/** The epoch minute (minutes since 1970-01-01T00:00Z) that contains `ms`. */
export function epochMinute(ms: number): number {
  return Math.floor(ms / MINUTE_MS);
}

/** The start (ms) of the minute that contains `ms`. */
export function minuteStart(ms: number): number {
  return epochMinute(ms) * MINUTE_MS;
}

/** An epoch minute as an ISO instant; null for undefined (JSON output of "none yet"). */
export function minuteIso(minute: number | undefined): string | null {
  return minute === undefined ? null : new Date(minute * MINUTE_MS).toISOString();
}

/** Resolves after `ms` on `clock` (at once for 0 or less). */
export function sleep(clock: Clock, ms: number): Promise<void> {
  if (!(ms > 0)) return Promise.resolve();
  return new Promise((resolve) => clock.setTimeout(resolve, ms));
}

/**
 * Resolves after `ms` on `clock`, or as soon as `signal` settles, whichever comes first; the
 * timer is cleared either way so nothing is left armed.
 */
export function sleepOrWake(clock: Clock, ms: number, signal: Promise<unknown>): Promise<void> {
  let handle: unknown;
  const timer = new Promise<void>((resolve) => (handle = clock.setTimeout(resolve, Math.max(0, ms))));
  return Promise.race([timer, signal.then(() => undefined, () => undefined)]).finally(() => clock.clearTimeout(handle));
}
