/**
 * The send rate after the server defers messages (421, or a 4.7.x / "too many" answer): AIMD, as
 * TCP does with its window. A deferral multiplies the rate by `decrease` (at most once per
 * `windowMs`, and only for a message started after the last decrease, so the burst of 421s from
 * messages already in flight at the old rate counts once); every accepted message adds a little
 * back, `recoveryPerSecond x maxRate` per second of accepted sending, up to `maxRate`. The rate
 * never goes below `floor x maxRate`.
 *
 * Why AIMD rather than fixed levels: the old slowdown halved the rate per level and stepped back
 * up only after a fixed cool-down per level, so a server that deferred 30 % of messages kept it at
 * the lowest level (1.25/s whatever the configured rate, a 2,000-user run 58 times slower). Here a
 * server that keeps deferring a share of messages whatever the pace settles where the additive
 * recovery balances the decreases, while a server that defers because of the pace settles just
 * under the pace it accepts. Pure (times are passed in), so it is unit-tested without a clock.
 */

export interface AimdOptions {
  /** The ceiling: the configured per-second rate (or, without one, the pace when deferrals began). */
  maxRate: number;
  /** Factor applied to the rate on a deferral, 0 < decrease < 1. */
  decrease: number;
  /** At most one decrease per this many milliseconds. */
  windowMs: number;
  /** Share of `maxRate` regained per second of accepted sending. */
  recoveryPerSecond: number;
  /** Lowest rate as a share of `maxRate`, 0 < floor <= 1. */
  floor: number;
}

export class AimdRate {
  readonly #o: AimdOptions;
  #rate: number;
  /** When the last decrease happened; -Infinity before the first. */
  #lastDecrease = Number.NEGATIVE_INFINITY;
  decreases = 0;

  constructor(opts: AimdOptions) {
    if (!(opts.maxRate > 0)) throw new RangeError('maxRate must be > 0');
    this.#o = opts;
    this.#rate = opts.maxRate;
  }

  /** Current per-second rate. */
  get rate(): number {
    return this.#rate;
  }
  get maxRate(): number {
    return this.#o.maxRate;
  }
  get floorRate(): number {
    return this.#o.maxRate * this.#o.floor;
  }
  /** True while the rate is below the ceiling. */
  get slowed(): boolean {
    return this.#rate < this.#o.maxRate;
  }

  /**
   * A message started at `startedAt` was deferred at `now`. Returns true when the rate was lowered
   * (false for a deferral of the same crowded moment as the last decrease).
   */
  deferred(now: number, startedAt: number): boolean {
    if (now - this.#lastDecrease < this.#o.windowMs || startedAt < this.#lastDecrease) return false;
    this.#lastDecrease = now;
    this.#rate = Math.max(this.floorRate, this.#rate * this.#o.decrease);
    this.decreases++;
    return true;
  }

  /**
   * A message was accepted. At rate r a message stands for 1/r seconds of sending, so each adds
   * `recoveryPerSecond x maxRate / r`: the rate climbs by `recoveryPerSecond x maxRate` per second
   * of accepted sending, whatever the current rate. Returns true when this reached the ceiling.
   */
  accepted(): boolean {
    if (!this.slowed) return false;
    this.#rate = Math.min(this.#o.maxRate, this.#rate + (this.#o.recoveryPerSecond * this.#o.maxRate) / this.#rate);
    return !this.slowed;
  }
}
