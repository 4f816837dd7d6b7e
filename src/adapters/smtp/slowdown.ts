/**
 * The send queue's answer to a server that defers for pace (421, 4.7.x, "too many"): it keeps the
 * AIMD state (aimd-rate.ts), measures the pace when no per-second rate is configured (the AIMD
 * ceiling then), and turns the rate in force into grant pacing (core/pacing.ts), telling the
 * queue when its limiter must change. Apart from the queue so the queue only moves messages.
 */
import type { Logger } from 'pino';
import type { SmtpError } from '../../errors.js';
import { grantPacing, type GrantPacing } from '../../core/pacing.js';
import { SECOND_MS } from '../../core/time.js';
import type { Clock } from '../../ports/index.js';
import { AimdRate } from './aimd-rate.js';

export interface SlowdownOptions {
  /** Rate factor per deferral (multiplicative decrease). Default 0.7. */
  decrease: number;
  /** At most one decrease per this many ms. Default 2000. */
  windowMs: number;
  /** Share of the configured rate regained per second of accepted sending. Default 0.2. */
  recoveryPerSecond: number;
  /** Lowest rate as a share of the configured rate. Default 0.1. */
  floor: number;
}

export const SLOWDOWN_DEFAULTS: SlowdownOptions = { decrease: 0.7, windowMs: 2000, recoveryPerSecond: 0.2, floor: 0.1 };

export interface SlowdownSettings {
  /** The configured per-second rate; null/undefined: none. */
  perSecond: number | null | undefined;
  /** Largest batch per grant. */
  maxBatch: number;
  aimd: SlowdownOptions;
}

export class Slowdown {
  readonly #perSecond: number | null;
  readonly #maxBatch: number;
  readonly #aimdOptions: SlowdownOptions;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #onPacing: (minTime: number) => void;
  /** Pacing at the configured rate. */
  readonly base: GrantPacing;
  #batch: number;
  #minTime: number;
  /** Set while the server's deferrals hold the rate below the configured one. */
  #aimd: AimdRate | undefined;
  /** The AIMD ceiling: rate.perSecond, or the highest pace measured when deferrals began. */
  #ceiling = 0;
  /** Sends completed in the current and the previous second: the pace, when no per-second rate is configured. */
  #pace = { start: 0, current: 0, previous: 0 };

  /** @param onPacing called with the new grant spacing when it changes by more than 5 % */
  constructor(settings: SlowdownSettings, clock: Clock, log: Logger, onPacing: (minTime: number) => void) {
    this.#perSecond = settings.perSecond ?? null;
    this.#maxBatch = settings.maxBatch;
    this.#aimdOptions = settings.aimd;
    this.#clock = clock;
    this.#log = log;
    this.#onPacing = onPacing;
    this.base = grantPacing(this.#perSecond, this.#maxBatch);
    this.#batch = this.base.batch;
    this.#minTime = this.base.minTime;
  }

  /** Messages per grant at the rate in force. */
  get batch(): number {
    return this.#batch;
  }
  /** The per-second rate in force: the configured one, or lower after deferrals; null when none is in force. */
  get ratePerSecond(): number | null {
    return this.#aimd?.slowed ? this.#aimd.rate : this.#perSecond;
  }
  /** ratePerSecond as a share of the configured rate (1: full rate). */
  get rateRatio(): number {
    return this.#aimd?.slowed ? this.#aimd.rate / this.#aimd.maxRate : 1;
  }

  /**
   * A message started at `startedAt` (a monotonic reading) was deferred for pace: lower the rate
   * of the whole queue, once per crowded moment. Without a configured per-second rate the ceiling
   * is the pace of the last second or two, and the limit is lifted again once recovered. Returns
   * true when the rate was lowered.
   */
  deferred(startedAt: number, error: SmtpError): boolean {
    const now = this.#clock.monotonic();
    if (this.#aimd === undefined) {
      // Never below an earlier ceiling: the pace just after a recovery is the slowed one, and
      // measuring it again would ratchet the ceiling down with every episode.
      this.#ceiling = Math.max(this.#ceiling, this.#perSecond ?? this.#measuredPace(now));
      this.#aimd = new AimdRate({ maxRate: this.#ceiling, ...this.#aimdOptions });
    }
    if (!this.#aimd.deferred(now, startedAt)) return false;
    this.#apply();
    // Not `level`: that key is pino's own (a second one made the JSON line ambiguous).
    const ratePerSecond = round2(this.#aimd.rate);
    this.#log.warn({ ratePerSecond, configuredPerSecond: this.#perSecond, smtpCode: error.smtpCode }, 'server deferred a message; lowering the send rate');
    return true;
  }

  /** A message was accepted: counts towards the measured pace and the AIMD recovery. */
  accepted(): void {
    const now = this.#clock.monotonic();
    if (now - this.#pace.start >= SECOND_MS) {
      this.#pace = { start: now, current: 0, previous: now - this.#pace.start < 2 * SECOND_MS ? this.#pace.current : 0 };
    }
    this.#pace.current++;
    if (this.#aimd === undefined) return;
    if (this.#aimd.accepted()) {
      this.#log.info({ ratePerSecond: this.#perSecond }, 'server accepts again: send rate back to the configured rate');
      this.#aimd = undefined;
    }
    this.#apply();
  }

  /** Completed sends per second over the current and the previous second (at least 1). */
  #measuredPace(now: number): number {
    const seconds = Math.max(1, (now - this.#pace.start) / SECOND_MS + (this.#pace.previous > 0 ? 1 : 0));
    return Math.max(1, (this.#pace.current + this.#pace.previous) / seconds);
  }

  /** Grant pacing for the rate in force; the limiter is touched only when it changes by more than 5 %. */
  #apply(): void {
    const slowed = this.#aimd?.slowed === true;
    const { batch, minTime } = slowed ? grantPacing(this.#aimd?.rate, this.#maxBatch) : this.base;
    if (batch === this.#batch && Math.abs(minTime - this.#minTime) <= 0.05 * this.#minTime) return;
    this.#batch = batch;
    this.#minTime = minTime;
    this.#onPacing(minTime);
  }
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}
