/**
 * An exact per-second bound on what the server receives. Bottleneck spaces the *grants*, but a
 * server counts *arrivals*: when sends stall (a new pooled connection waits for its greeting) and
 * then complete together, arrivals bunch and a one-second window can exceed the limit even though
 * every grant was on time (measured: 52-56 arrivals in a second at a 50/s limit without this).
 * So a send may start only while (sends in flight + sends completed in the last second) < limit:
 * whatever the latency, no sliding one-second window of arrivals holds more than `limit`.
 */
export class ArrivalGate {
  readonly #limit: number;
  readonly #windowMs: number;
  /** Completion times of the last `limit` sends, oldest first (a ring). */
  readonly #done: number[];
  #head = 0;
  #count = 0;
  #inFlight = 0;

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

  /** A started send that did not happen after all: frees its place without counting an arrival. */
  cancel(): void {
    this.#inFlight--;
  }

  finish(now: number): void {
    this.#inFlight--;
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
