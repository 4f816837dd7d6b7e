/** Wall-clock time and timers, injectable so tests move time without waiting. */
export interface Clock {
  /** Wall-clock epoch ms (timestamps, due instants). */
  now(): number;
  /**
   * A monotonic sub-millisecond reading for measuring durations and pacing (performance.now()
   * on the system clock); only differences between two readings mean anything.
   */
  monotonic(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The real clock. Its timers are unref'd: a pending wait never keeps a stopping process alive. */
export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};
