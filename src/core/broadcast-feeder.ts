/**
 * Feeding a broadcast run's open batches to the send queue (split out of `broadcast-run.ts`).
 *
 * Two things it decides:
 * - Batches overlap: the run keeps up to two batches open (see broadcast-run.ts), and the feeder
 *   takes from the oldest first, so the next batch's messages go out while the previous one's
 *   last sends, its outcome writes, ledger entry and progress are still under way. Without that,
 *   SMTP sat idle at every batch boundary (each 250-message batch sent in ~75 ms and then waited
 *   ~20 ms for its writes, `npm run bench broadcast`).
 * - Room is per destination group (config `destinations`, the queue's `groupOf`): at most
 *   `feedAhead` of the run's messages wait or fly in each group's queue. With one count for all
 *   groups, the messages of one deferred group waiting for their retries filled it, and every
 *   other group waited for those retries before its next message (issue 15's known limit). Now a
 *   deferred group's messages are parked in their batch while the other groups' are fed; the
 *   batch stays open (unconfirmed) until the parked ones have outcomes.
 * With a single queue (no destination groups) there is one group and the bound is the old one.
 */
import type { BroadcastQueue } from '../ports/broadcasts.js';
import type { Delivery } from './types.js';

/** One open batch's sending state. */
export interface FeedBatch {
  /** Not yet submitted, per destination group, in the batch's order. */
  readonly unfed: Map<string, { list: Delivery[]; next: number }>;
  unfedCount: number;
  /** Submitted and without an outcome yet. */
  outstanding: number;
}

export class BroadcastFeeder {
  readonly #queue: BroadcastQueue;
  readonly #feedAhead: number;
  readonly #onHalt: (err: unknown) => void;
  /** The open batches, oldest first: the feeder takes from the first one with room. */
  readonly #open: FeedBatch[] = [];
  /** Each submitted key without an outcome: its batch and group. */
  readonly #out = new Map<string, { batch: FeedBatch; group: string }>();
  /** Submitted without an outcome, per group. */
  readonly #perGroup = new Map<string, number>();
  #halted = false;
  /**
   * Time with nothing of the run in the queue (SMTP idle for this broadcast), ms, by what the run
   * was waiting for when it began (`idle.cause`): measured, so a shortfall is attributed.
   */
  readonly idleMs = new Map<string, number>();
  #idleSince: number | undefined;
  #idleCause = '';
  readonly #idle: { now: () => number; cause: () => string } | undefined;

  constructor(queue: BroadcastQueue, feedAhead: number, onHalt: (err: unknown) => void, idle?: { now: () => number; cause: () => string }) {
    this.#queue = queue;
    this.#feedAhead = feedAhead;
    this.#onHalt = onHalt;
    this.#idle = idle;
  }

  /** No more feeding: the run is ending, or the queue refused a submit. */
  get halted(): boolean {
    return this.#halted;
  }

  /** Messages submitted without an outcome, every batch together. */
  get outstanding(): number {
    return this.#out.size;
  }

  /** Opens a batch (after the ones open) and feeds what room allows. */
  open(deliveries: readonly Delivery[]): FeedBatch {
    const unfed = new Map<string, { list: Delivery[]; next: number }>();
    for (const d of deliveries) {
      const g = this.#queue.groupOf?.(d.email) ?? '';
      const q = unfed.get(g);
      if (q === undefined) unfed.set(g, { list: [d], next: 0 });
      else q.list.push(d);
    }
    const b: FeedBatch = { unfed, unfedCount: deliveries.length, outstanding: 0 };
    this.#open.push(b);
    this.feed();
    return b;
  }

  /** Every message of the batch has an outcome (or it had none to send). */
  static finished(b: FeedBatch): boolean {
    return b.unfedCount === 0 && b.outstanding === 0;
  }

  /** Closes a finished (or abandoned) batch. */
  close(b: FeedBatch): void {
    const i = this.#open.indexOf(b);
    if (i >= 0) this.#open.splice(i, 1);
  }

  /** An outcome for `key`: its batch, or undefined when it is not one of this run's. */
  outcome(key: string): FeedBatch | undefined {
    const o = this.#out.get(key);
    if (o === undefined) return undefined;
    this.#out.delete(key);
    o.batch.outstanding--;
    this.#perGroup.set(o.group, (this.#perGroup.get(o.group) ?? 1) - 1);
    this.feed();
    if (this.#out.size === 0 && this.#idle !== undefined && this.#idleSince === undefined) {
      this.#idleSince = this.#idle.now();
      this.#idleCause = this.#idle.cause();
    }
    return o.batch;
  }

  /** Submits, oldest batch first, while each message's group has room. */
  feed(): void {
    for (const b of this.#open) {
      if (b.unfedCount === 0) continue;
      for (const [g, q] of b.unfed) {
        let n = this.#perGroup.get(g) ?? 0;
        while (q.next < q.list.length && n < this.#feedAhead) {
          if (this.#halted) return;
          const d = q.list[q.next] as Delivery;
          try {
            this.#queue.submit(d);
          } catch (err) {
            // The queue is stopping (daemon shutdown): what is left is handed back by takeBack().
            this.#halted = true;
            this.#onHalt(err);
            return;
          }
          if (this.#idleSince !== undefined && this.#idle !== undefined) {
            this.idleMs.set(this.#idleCause, (this.idleMs.get(this.#idleCause) ?? 0) + this.#idle.now() - this.#idleSince);
            this.#idleSince = undefined;
          }
          q.next++;
          b.unfedCount--;
          b.outstanding++;
          n++;
          this.#out.set(d.key, { batch: b, group: g });
        }
        this.#perGroup.set(g, n);
      }
    }
  }

  /**
   * Stops feeding and takes back what can be: the run's messages still waiting in the queue and
   * every open batch's unfed ones. Returns their keys (the caller releases the claims); sends in
   * flight stay outstanding until their outcome.
   */
  takeBack(): string[] {
    this.#halted = true;
    const withdrawn = this.#queue.withdraw((d) => this.#out.has(d.key));
    const keys: string[] = [];
    for (const d of withdrawn) {
      const o = this.#out.get(d.key);
      this.#out.delete(d.key);
      if (o !== undefined) {
        o.batch.outstanding--;
        this.#perGroup.set(o.group, (this.#perGroup.get(o.group) ?? 1) - 1);
      }
      keys.push(d.key);
    }
    for (const b of this.#open) {
      for (const q of b.unfed.values()) for (; q.next < q.list.length; q.next++) keys.push((q.list[q.next] as Delivery).key);
      b.unfedCount = 0;
    }
    return keys;
  }

  /** Forgets the sends whose outcome never came (drain timeout): their claims stay. */
  forget(): number {
    const n = this.#out.size;
    for (const o of this.#out.values()) o.batch.outstanding--;
    this.#out.clear();
    this.#perGroup.clear();
    return n;
  }
}
