/**
 * An exact per-second bound on what the server receives. Bottleneck spaces the *grants*, but a
 * server counts *arrivals*: when sends stall (a new pooled connection waits for its greeting) and
 * then complete together, arrivals bunch and a one-second window can exceed the limit even though
 * every grant was on time (measured: 52-56 arrivals in a second at a 50/s limit without this).
 * So a send may start only while (sends in flight + sends completed in the last second) < limit:
 * whatever the latency, no sliding one-second window of arrivals holds more than `limit`.
 * `tryStart`/`finish` are pure (times are passed in); `admit` waits on the injected clock, and
 * wakes early when a send finishes, rather than polling.
 */
import { Signal } from '../../core/signal.js';
import type { Clock } from '../../ports/index.js';

export class ArrivalGate {
  readonly #limit: number;
  readonly #windowMs: number;
  /** Completion times of the last `limit` sends, oldest first (a ring). */
  readonly #done: number[];
  #head = 0;
  #count = 0;
  #inFlight = 0;
  /** Notified when a place frees up (a send finishes or is cancelled). */
  readonly #freed = new Signal();

  constructor(limit: number, windowMs = 1000) {
    this.#limit = limit;
    this.#windowMs = windowMs;
    this.#done = new Array<number>(limit).fill(0);
  }

  /** Milliseconds to wait before a send may start; 0 when it may start now (and it is counted). */
  tryStart(now: number): number {
    const recent = this.#recent(now);
    if (this.#inFlight + recent < this.#limit) {
      this.#inFlight++;
      return 0;
    }
    if (recent === 0) return 5; // all capacity is in flight: poll shortly
    const oldest = this.#done[this.#head] as number;
    return Math.max(1, oldest + this.#windowMs - now + 1);
  }

  /**
   * Waits until a send may start and counts it: until the oldest completion leaves the window, or
   * sooner when a send finishes. Readings are `clock.monotonic()`: with Date.now()'s whole
   * milliseconds a completion leaves the window up to 1 ms early, and the server saw up to 0.5 %
   * over the limit in a sliding second (npm run bench rate).
   */
  async admit(clock: Clock): Promise<void> {
    for (let wait = this.tryStart(clock.monotonic()); wait > 0; wait = this.tryStart(clock.monotonic())) {
      await this.#freed.sleep(clock, wait);
    }
  }

  /** A started send that did not happen after all: frees its place without counting an arrival. */
  cancel(): void {
    this.#inFlight--;
    this.#freed.notify();
  }

  finish(now: number): void {
    this.#inFlight--;
    this.#freed.notify();
    const tail = (this.#head + this.#count) % this.#limit;
    this.#done[tail] = now;
    if (this.#count < this.#limit) this.#count++;
    else this.#head = (this.#head + 1) % this.#limit;
  }

  /** Completions within the window; drops older ones. */
  #recent(now: number): number {
    while (this.#count > 0 && (this.#done[this.#head] as number) <= now - this.#windowMs) {
      this.#head = (this.#head + 1) % this.#limit;
      this.#count--;
    }
    return this.#count;
  }
}
