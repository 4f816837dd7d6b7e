/**
 * Writing a broadcast run's progress (counters, checkpoint, zones) to the broadcast document:
 * throttled and in order. Batches of a run settle every ~75 ms at full speed, and a write per
 * batch was ~13 writes a second, each preceded by a flush of the outcomes (only written outcomes
 * may be published). So a write happens at most every `minIntervalMs` (the run's
 * `controlPollMs`, what an operator watching `broadcast status` sees anyway) unless forced, the
 * writes go one after another (never an older snapshot after a newer one), and each takes its
 * figures when its turn comes. The writes made and the time they took are counted, for the
 * run's end log line (read by `npm run bench broadcast`).
 */
import type { Logger } from 'pino';
import type { BroadcastCheckpoint, BroadcastCounters, BroadcastRunStore, OutcomeFlusher, ZoneProgress } from '../ports/broadcasts.js';
import type { Clock } from '../ports/clock.js';

export interface ProgressSnapshot {
  counters: BroadcastCounters;
  checkpoint: BroadcastCheckpoint | undefined;
  zones?: ZoneProgress[] | undefined;
}

export class ProgressWriter {
  /** Writes made, and the time they took (flush included), ms. */
  writes = 0;
  writeMs = 0;
  #written = -1;
  #last = -Infinity;
  #queue: Promise<void> = Promise.resolve();

  readonly #store: Pick<BroadcastRunStore, 'publish'>;
  readonly #recorder: OutcomeFlusher;
  readonly #clock: Clock;
  readonly #minIntervalMs: number;
  readonly #log: Logger;

  constructor(store: Pick<BroadcastRunStore, 'publish'>, recorder: OutcomeFlusher, clock: Clock, minIntervalMs: number, log: Logger) {
    this.#store = store;
    this.#recorder = recorder;
    this.#clock = clock;
    this.#minIntervalMs = minIntervalMs;
    this.#log = log;
  }

  /**
   * Writes `snapshot()` unless `version` was written already or the last write is less than
   * `minIntervalMs` old; `force` writes anyway and its promise rejects on a failed write (an
   * unforced write's failure is logged: the next one carries the same figures).
   */
  publish(version: number, snapshot: () => ProgressSnapshot, force: boolean): Promise<void> {
    if (!force && (this.#written === version || this.#clock.monotonic() - this.#last < this.#minIntervalMs)) return this.#queue;
    this.#last = this.#clock.monotonic();
    const write = async (): Promise<void> => {
      const t0 = this.#clock.monotonic();
      this.#written = version;
      await this.#recorder.flush();
      await this.#store.publish(snapshot());
      this.writes++;
      this.writeMs += this.#clock.monotonic() - t0;
    };
    const p = this.#queue.then(write);
    this.#queue = p.catch((err: unknown) => this.#log.warn({ err }, 'could not publish broadcast progress'));
    return force ? p : this.#queue;
  }
}
