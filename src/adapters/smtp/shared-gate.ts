/**
 * The send queue's road through a budget every instance shares (`cluster.redisUrl`; the windows
 * themselves are adapters/redis/shared-windows.ts). The local limiter keeps grant spacing and
 * priorities (scheduled mail before broadcasts) and the local arrival gate keeps this instance
 * from bursting; the minute, hour and day windows and the exact second are the shared ones:
 *   - each grant takes from the shared windows: a partial grant sends what it got, the rest waits
 *     in front of its kind for the next grant; none left: no grant until one send leaves a window;
 *   - each send start takes a place in the shared second (one worker of this instance asks Redis
 *     at a time, so a full second is not polled by every worker at once).
 * Redis down: every call fails at once (no offline queue), so nothing starts without a grant and
 * a place; the queue keeps its entries and asks again after a capped backoff on the injected clock
 * (core/backoff.ts), and resumes by itself when Redis answers. A send already in flight finishes
 * normally; its place in Redis expires by itself if the finish cannot be recorded.
 */
import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import { backoffDelay, type BackoffPolicy } from '../../core/backoff.js';
import { Signal } from '../../core/signal.js';
import type { BudgetView } from '../../ports/cluster.js';
import type { Clock } from '../../ports/index.js';

/** The shared budget as the send queue uses it (adapters/redis/shared-windows.ts implements it). */
export interface SharedBudget extends BudgetView {
  /**
   * Up to `n` sends from every minute/hour/day window, at `atMs` (the budget's clock); when 0,
   * `waitMs` until one leaves. Rejects while Redis is down.
   */
  take(n: number): Promise<{ granted: number; waitMs: number; atMs: number }>;
  /** A place in the shared second (`id`), or how long to wait (-1: until a send finishes). */
  startSend(): Promise<{ id: string | undefined; waitMs: number }>;
  /** The send ended: its place counts one second from now, its grant (taken at `grantedAtMs`) a full window from now. */
  finishSend(id: string, grantedAtMs?: number): Promise<void>;
  cancelSend(id: string): Promise<void>;
}

/** Waits between attempts while Redis does not answer: 100 ms doubling to 2 s. */
export const REDIS_BACKOFF: BackoffPolicy = { baseMs: 100, maxMs: 2000, jitter: 'none' };
/** Every place of the second is in flight somewhere: ask again this soon (or at a local finish). */
const IN_FLIGHT_POLL_MS = 20;
/** Longest wait for a full window before asking again (a long window's first send may leave in hours). */
const MAX_WINDOW_WAIT_MS = 30_000;

/** The rate the local limiter keeps with a shared budget: the second's spacing, none of the longer windows. */
export function pacingOnly(rate: Config['rate']): Config['rate'] {
  return { ...rate, perMinute: null, perHour: null, perDay: null };
}

export class SharedGate {
  readonly budget: SharedBudget;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #onResume: () => void;
  /** Wakes a worker waiting for a place when a send of this instance finishes. */
  readonly #freed = new Signal();
  /** One worker at a time asks Redis for a place in the second. */
  #lane: Promise<void> = Promise.resolve();
  #failures = 0;
  #downTimer: unknown;
  #windowTimer: unknown;
  #stopped = false;
  readonly stats = { redisFailures: 0, windowWaits: 0 };

  constructor(budget: SharedBudget, clock: Clock, log: Logger, onResume: () => void) {
    this.budget = budget;
    this.#clock = clock;
    this.#log = log;
    this.#onResume = onResume;
  }

  /** Redis failed and the backoff has not run out: nothing is asked of it. */
  get down(): boolean {
    return this.#downTimer !== undefined;
  }

  /** No grant may be asked now: Redis is down, or a window is full until a send leaves it. */
  get grantsPaused(): boolean {
    return this.#stopped || this.#downTimer !== undefined || this.#windowTimer !== undefined;
  }

  /**
   * Takes up to `n` from the shared windows, at `atMs` (kept on each entry for its finish);
   * 0 when none is left or Redis failed (the queue is resumed later).
   */
  async take(n: number): Promise<{ granted: number; atMs: number }> {
    // A window known to be full is not asked again before a send leaves it.
    if (this.#stopped || this.down || this.#windowTimer !== undefined) return { granted: 0, atMs: 0 };
    try {
      const r = await this.budget.take(n);
      this.#answered();
      if (r.granted === 0 && this.#windowTimer === undefined && !this.#stopped) {
        this.stats.windowWaits++;
        this.#windowTimer = this.#clock.setTimeout(() => this.#resume('window'), Math.min(Math.max(1, r.waitMs), MAX_WINDOW_WAIT_MS));
      }
      return r;
    } catch (err) {
      this.#failed(err);
      return { granted: 0, atMs: 0 };
    }
  }

  /** Waits for a place in the shared second: its id, or undefined when Redis failed or the gate stopped. */
  async admit(): Promise<string | undefined> {
    const before = this.#lane;
    let release = (): void => undefined;
    this.#lane = new Promise((resolve) => (release = resolve));
    await before;
    try {
      for (;;) {
        if (this.#stopped || this.down) return undefined;
        let r: { id: string | undefined; waitMs: number };
        try {
          r = await this.budget.startSend();
          this.#answered();
        } catch (err) {
          this.#failed(err);
          return undefined;
        }
        if (r.id !== undefined) return r.id;
        await this.#freed.sleep(this.#clock, r.waitMs >= 0 ? r.waitMs : IN_FLIGHT_POLL_MS);
      }
    } finally {
      release();
    }
  }

  /** The send that holds place `id` ended: counted in the shared second for a second from now, its grant re-dated to now. */
  finish(id: string, grantedAt: number | undefined): void {
    this.#freed.notify();
    void this.budget.finishSend(id, grantedAt).catch(() => undefined); // Redis down: the place expires by itself
  }

  /** The send that holds place `id` did not go. */
  cancel(id: string): void {
    this.#freed.notify();
    void this.budget.cancelSend(id).catch(() => undefined);
  }

  stop(): void {
    this.#stopped = true;
    for (const t of [this.#downTimer, this.#windowTimer]) if (t !== undefined) this.#clock.clearTimeout(t);
    this.#downTimer = this.#windowTimer = undefined;
    this.#freed.notify();
  }

  #answered(): void {
    if (this.#failures > 0) this.#log.info({ failures: this.#failures }, 'shared rate budget answers again; sending resumes');
    this.#failures = 0;
  }

  /** Redis failed: no call until the backoff runs out, then the queue asks again. */
  #failed(err: unknown): void {
    this.stats.redisFailures++;
    if (this.#stopped || this.#downTimer !== undefined) return;
    this.#failures++;
    const delay = backoffDelay(REDIS_BACKOFF, this.#failures);
    if (this.#failures === 1) this.#log.warn({ err: { message: err instanceof Error ? err.message : String(err) } }, 'shared rate budget unavailable; sending paused until redis answers');
    this.#downTimer = this.#clock.setTimeout(() => this.#resume('down'), delay);
  }

  #resume(which: 'down' | 'window'): void {
    if (which === 'down') this.#downTimer = undefined;
    else this.#windowTimer = undefined;
    if (!this.#stopped) this.#onResume();
  }
}
