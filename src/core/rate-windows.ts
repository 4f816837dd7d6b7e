/**
 * The provider's longer rate windows (minute, hour, day) and what a start restores of them.
 *
 * The grant limiter keeps each window as an in-memory reservoir, so a restart (a deploy, a crash
 * and systemd's restart) used to hand out a fresh window: `rate.perDay` 30 and two restarts in a
 * day sent 90. Without a shared store, a start therefore counts the sends mailwheel recorded in
 * each window (the delivery records' `sent` outcomes, every instance's) and starts that window
 * with what is left: the limit less those sends, never below 0. The window then refreshes as
 * before, a full window after the start: a restart can delay budget, never add to it.
 * The second is not restored: it is paced locally (arrival gate, grant spacing), and a restart
 * takes longer than a second.
 */
import { DAY_MS, HOUR_MS, MINUTE_MS } from './time.js';

export type WindowName = 'perMinute' | 'perHour' | 'perDay';

/** The restorable windows, shortest first, with their length. */
export const RATE_WINDOWS: ReadonlyArray<readonly [WindowName, number]> = [
  ['perMinute', MINUTE_MS],
  ['perHour', HOUR_MS],
  ['perDay', DAY_MS],
];

/** Sends already made in each window when the limiter starts (absent: none). */
export type WindowUsage = Partial<Record<WindowName, number>>;

/** The limits as configured (`rate.*`); null or absent turns a window off. */
export type WindowLimits = Partial<Record<WindowName, number | null | undefined>>;

export interface ConfiguredWindow {
  name: WindowName;
  ms: number;
  limit: number;
}

/** The windows `rate` turns on, shortest first (empty: nothing to restore, nothing to count). */
export function configuredWindows(rate: WindowLimits): ConfiguredWindow[] {
  const out: ConfiguredWindow[] = [];
  for (const [name, ms] of RATE_WINDOWS) {
    const limit = rate[name];
    if (limit) out.push({ name, ms, limit });
  }
  return out;
}

/** What a window starts with after `used` sends in it: the limit less them, never below 0. */
export function tokensLeft(limit: number, used: number | undefined): number {
  return Math.max(0, limit - Math.max(0, used ?? 0));
}
