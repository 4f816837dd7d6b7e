/**
 * A condition others can wait on without polling: `wait()` returns a promise that the next
 * `notify()` resolves. Whoever changes the condition (a send starts or ends, a dispatch finishes,
 * a stop begins) notifies; a waiter re-checks its condition and waits again if it does not hold
 * yet. Used by the send queue (room, idle, drain, the arrival gate), the dispatcher (idle, stop,
 * the spread) and a broadcast run (its batch's last outcome, a stop) instead of
 * `while (...) await sleep(n)`.
 */
import type { Clock } from '../ports/clock.js';

export class Signal {
  readonly #waiters = new Set<() => void>();

  /** Resolves at the next `notify()`. */
  wait(): Promise<void> {
    return new Promise((resolve) => this.#waiters.add(resolve));
  }

  /**
   * Resolves after `ms` on `clock` or at the next `notify()`, whichever comes first, and leaves
   * nothing behind either way (no armed timer, no waiter): safe to call once per message.
   */
  sleep(clock: Clock, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clock.clearTimeout(handle);
        this.#waiters.delete(done);
        resolve();
      };
      const handle = clock.setTimeout(done, Math.max(0, ms));
      this.#waiters.add(done);
    });
  }

  /** Wakes every current waiter. */
  notify(): void {
    if (this.#waiters.size === 0) return;
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const w of waiters) w();
  }

  /** Number of waiters (tests, diagnostics). */
  get waiting(): number {
    return this.#waiters.size;
  }
}
