/**
 * The send queue's ledger of deliveries that have no final outcome yet, and the events its
 * feeders wait on. Every entry is live from `submit` until its outcome (or until handed back); a
 * live entry is either waiting (pending a grant, granted, or in backoff) or in flight. Whoever
 * moves an entry notifies, so `room()`, `idle()` and the stop's drain are promises resolved by
 * those moves, never polls.
 */
import { Signal } from '../../core/signal.js';
import type { Delivery } from '../../core/types.js';

export interface Entry {
  delivery: Delivery;
  attempts: number;
  /** The backoff timer's handle while the entry waits to be retried. */
  backoff?: unknown;
  /** When the shared windows granted it (Redis time, ms): its finish re-dates that grant (smtp/shared-gate.ts). */
  grantedAt?: number;
}

export interface StopResult {
  /** Never handed to SMTP: the caller returns their claims. */
  released: Delivery[];
  /** Still in flight when the drain timeout passed: outcome unknown. */
  abandoned: Delivery[];
}

export class LiveEntries {
  readonly #live = new Set<Entry>();
  readonly #inFlight = new Set<Entry>();
  /** Notified when `waiting` may have dropped (a send starts, a take-back, a close). */
  readonly #fewer = new Signal();
  /** Notified when an entry leaves flight or the ledger (idle, drain). */
  readonly #ended = new Signal();
  #closed = false;

  /** Live and not in flight. */
  get waiting(): number {
    return this.#live.size - this.#inFlight.size;
  }
  get inFlight(): number {
    return this.#inFlight.size;
  }

  add(delivery: Delivery): Entry {
    const entry: Entry = { delivery, attempts: 0 };
    this.#live.add(entry);
    return entry;
  }

  /** Still without an outcome, and not handed back. */
  has(entry: Entry): boolean {
    return this.#live.has(entry);
  }

  /** The entry goes to SMTP. */
  started(entry: Entry): void {
    this.#inFlight.add(entry);
    this.#fewer.notify();
  }

  /** Its final outcome is known (the hook may still be running: it stays in flight until `ended`). */
  settled(entry: Entry): void {
    this.#live.delete(entry);
  }

  /** The send, and the outcome hook that followed it, are over. */
  ended(entry: Entry): void {
    this.#inFlight.delete(entry);
    this.#ended.notify();
  }

  /** Removes the waiting entries that match and returns them (in flight ones stay). */
  takeBack(match: (d: Delivery) => boolean): Entry[] {
    const out: Entry[] = [];
    for (const e of this.#live) {
      if (this.#inFlight.has(e) || !match(e.delivery)) continue;
      this.#live.delete(e);
      out.push(e);
    }
    if (out.length > 0) {
      this.#fewer.notify();
      this.#ended.notify();
    }
    return out;
  }

  /** Waiting entries, for a stop to cancel their timers. */
  *waitingEntries(): Iterable<Entry> {
    for (const e of this.#live) if (!this.#inFlight.has(e)) yield e;
  }

  /** Stops intake: `room()` resolves from now on. */
  close(): void {
    this.#closed = true;
    this.#fewer.notify();
  }

  /** Empties the ledger: what waits is released, what is still in flight abandoned. */
  releaseAll(): StopResult {
    const abandoned = [...this.#inFlight].map((e) => e.delivery);
    const released = [...this.waitingEntries()].map((e) => e.delivery);
    this.#live.clear();
    this.#ended.notify();
    return { released, abandoned };
  }

  /** Resolves once fewer than `limit` entries wait (at once if so already), or after `close()`. */
  async room(limit: number): Promise<void> {
    while (!this.#closed && this.waiting >= limit) await this.#fewer.wait();
  }

  /**
   * Resolves when nothing is live or in flight. In flight counts too: an entry is settled before
   * its outcome hook runs, and idle means every outcome has been recorded.
   */
  async idle(): Promise<void> {
    while (this.#live.size > 0 || this.#inFlight.size > 0) await this.#ended.wait();
  }

  /** Resolves when nothing is in flight. */
  async drained(): Promise<void> {
    while (this.#inFlight.size > 0) await this.#ended.wait();
  }
}
