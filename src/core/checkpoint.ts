/**
 * Keeps the scheduler checkpoint current: every `intervalMs` it computes the mark (the last minute
 * whose fires all have an outcome, from the {@link MinuteLedger}) and saves it when it moved, so
 * about one small write per processed minute. A failed save (MongoDB down) is logged and retried
 * at the next interval; the checkpoint only ever lags, which costs re-checking a few claims at the
 * next start, never a missed fire.
 */
import type { Logger } from 'pino';
import { systemClock, type CheckpointStore, type Clock } from '../ports/index.js';
import { SECOND_MS } from './time.js';
import type { MinuteLedger } from './catch-up.js';

export interface CheckpointOptions {
  /** How often the mark is computed (ms); a save happens only when it moved. Default 5 s. */
  intervalMs?: number;
}

export class Checkpoint {
  readonly #store: CheckpointStore;
  readonly #ledger: MinuteLedger;
  readonly #processed: () => number | undefined;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #intervalMs: number;
  readonly #partitions: { write(): Promise<void> } | undefined;
  #timer: unknown;
  #saved: number | undefined;
  #saving: Promise<void> = Promise.resolve();
  #closed: Promise<void> | undefined;
  readonly stats = { saves: 0, errors: 0 };

  constructor(
    deps: {
      store: CheckpointStore;
      ledger: MinuteLedger;
      processed: () => number | undefined;
      clock?: Clock;
      /** Cluster: writes the per-partition marks at each save (core/partition-sync.ts); never throws. */
      partitions?: { write(): Promise<void> };
    },
    opts: CheckpointOptions,
    log: Logger,
  ) {
    this.#store = deps.store;
    this.#ledger = deps.ledger;
    this.#processed = deps.processed;
    this.#partitions = deps.partitions;
    this.#clock = deps.clock ?? systemClock;
    this.#intervalMs = opts.intervalMs ?? 5 * SECOND_MS;
    this.#log = log;
  }

  /** The last minute saved by this process. */
  get saved(): number | undefined {
    return this.#saved;
  }

  /** The mark as it stands now (may be ahead of {@link saved}). */
  get mark(): number | undefined {
    return this.#ledger.mark(this.#processed());
  }

  /** Reads the persisted checkpoint (the start-up uses it to plan the catch-up). */
  async load(): Promise<number | undefined> {
    const minute = await this.#store.load();
    this.#saved = minute;
    return minute;
  }

  start(): void {
    if (this.#closed || this.#timer !== undefined) return;
    const tick = (): void => {
      this.#timer = this.#clock.setTimeout(() => {
        void this.save().finally(() => {
          if (!this.#closed) tick();
        });
      }, this.#intervalMs);
    };
    tick();
  }

  /**
   * Saves the mark if it moved forward (and, in a cluster, the owned partitions' marks).
   * Serialised; never throws (errors are logged).
   */
  save(): Promise<void> {
    this.#saving = this.#saving.then(async () => {
      await this.#partitions?.write();
      const mark = this.mark;
      if (mark === undefined || (this.#saved !== undefined && mark <= this.#saved)) return;
      try {
        await this.#store.save(mark);
        this.#saved = mark;
        this.stats.saves++;
      } catch (err) {
        this.stats.errors++;
        this.#log.warn({ err, minute: mark }, 'could not save the scheduler checkpoint; will retry');
      }
    });
    return this.#saving;
  }

  /** Stops the timer and saves once more (after the dispatcher has stopped). Idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
      this.#timer = undefined;
      await this.save();
    })();
    return this.#closed;
  }
}
