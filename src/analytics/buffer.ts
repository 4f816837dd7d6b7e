/**
 * AnalyticsBuffer: outcome events are collected in memory and written with one `insertMany`
 * every `flushEvents` events or `flushIntervalMs`, and on close. The old design wrote one row per
 * event; this writes one batch per thousand.
 *
 * Nothing is dropped: a failed write keeps the batch and retries with backoff; when the buffer
 * holds `maxBuffered` events, `record()` returns a promise that resolves only once its event has
 * been admitted, when a write has made room, so callers that await it (the send path) slow down
 * instead of losing events. The bound is strict: the buffer never holds more than `maxBuffered`;
 * waiting events stay with their callers (one per blocked caller) and are admitted in call order.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { backoffDelay } from '../core/backoff.js';
import { SECOND_MS, sleep } from '../core/time.js';
import { systemClock, type Clock, type EventSink, type OutcomeEvent, type StoredEvent } from '../ports/index.js';
import { Errors } from '../errors.js';
import { eventIdOf } from './event-id.js';

export interface AnalyticsBufferOptions {
  /** Flush when this many events are waiting. */
  flushEvents: number;
  /** Flush at least this often (ms). */
  flushIntervalMs: number;
  /** Bound of the buffer: at this size `record()` waits for room (backpressure). */
  maxBuffered: number;
  /** First retry delay after a failed write (ms); doubles up to `retryMaxMs`. Default 500. */
  retryBaseMs?: number;
  /** Longest wait between write attempts while MongoDB is down (ms). Default 30 s. */
  retryMaxMs?: number;
}

/** One write attempt, for metrics. */
export interface FlushReport {
  events: number;
  ms: number;
  ok: boolean;
}

export interface AnalyticsBufferHooks {
  /** After each write attempt (flush latency and errors for /metrics). */
  onFlush?(report: FlushReport): void;
  /** Time of the flush timer, the retry backoff and the close deadline. Default: the system clock. */
  clock?: Clock;
}

/** Exponent cap of the write retry backoff: retryBaseMs × 2^min(failures, 16), capped at retryMaxMs. */
const MAX_BACKOFF_DOUBLINGS = 16;

export class AnalyticsBuffer {
  readonly #sink: EventSink;
  readonly #opts: Required<AnalyticsBufferOptions>;
  readonly #log: Logger;
  #buffer: StoredEvent[] = [];
  readonly #clock: Clock;
  #timer: unknown;
  #flushing: Promise<void> | undefined;
  /** Events waiting for room (their callers are blocked), in call order. */
  #waiters: Array<{ event: StoredEvent; admitted: () => void }> = [];
  #failures = 0;
  #closed: Promise<void> | undefined;
  readonly #hooks: AnalyticsBufferHooks;
  /**
   * Counters for /stats and tests. `recorded` counts calls to record() (admitted or waiting);
   * `peak` is the most events the buffer ever held; `blocked` counts calls that had to wait.
   */
  readonly stats = { recorded: 0, written: 0, writeErrors: 0, lastFlushMs: 0, peak: 0, blocked: 0 };
  readonly byType = new Map<OutcomeEvent['type'], number>();

  constructor(sink: EventSink, opts: AnalyticsBufferOptions, log: Logger, hooks: AnalyticsBufferHooks = {}) {
    this.#sink = sink;
    this.#opts = { retryBaseMs: 500, retryMaxMs: 30 * SECOND_MS, ...opts };
    this.#clock = hooks.clock ?? systemClock;
    this.#log = log;
    this.#hooks = hooks;
  }

  /** Events held, never more than `maxBuffered`. */
  get size(): number {
    return this.#buffer.length;
  }

  /** Callers blocked in record() until there is room (the backpressure at work). */
  get waiting(): number {
    return this.#waiters.length;
  }

  /** The bound (`maxBuffered`). */
  get limit(): number {
    return this.#opts.maxBuffered;
  }

  /**
   * Adds an event. Resolves at once while there is room; at the bound, resolves when a write has
   * made room and the event is admitted. Callers on the send path await it; that is the
   * backpressure.
   */
  record(event: OutcomeEvent): Promise<void> {
    // A delivery's final outcome has an id from its key (event-id.ts), so it is stored once
    // whoever writes it; other events are each their own.
    const stored: StoredEvent = { ...event, id: eventIdOf(event) ?? randomUUID() };
    this.stats.recorded++;
    this.byType.set(event.type, (this.byType.get(event.type) ?? 0) + 1);
    // Earlier waiters go first: an event never overtakes one recorded before it.
    if (this.#waiters.length === 0 && this.#buffer.length < this.#opts.maxBuffered) {
      this.#admit(stored);
      return Promise.resolve();
    }
    this.stats.blocked++;
    return new Promise((admitted) => this.#waiters.push({ event: stored, admitted }));
  }

  #admit(event: StoredEvent): void {
    this.#buffer.push(event);
    if (this.#buffer.length > this.stats.peak) this.stats.peak = this.#buffer.length;
    if (this.#buffer.length >= this.#opts.flushEvents) this.#kick(0);
    else this.#kick(this.#opts.flushIntervalMs);
  }

  /** Writes everything buffered now (and everything waiting); retries until done or `deadlineMs` passes. */
  async flush(deadlineMs = Infinity): Promise<void> {
    const until = this.#clock.now() + deadlineMs;
    while (this.#buffer.length > 0 || this.#waiters.length > 0 || this.#flushing) {
      if (this.#flushing) {
        await this.#flushing;
        continue;
      }
      const ok = await this.#flushOnce();
      if (!ok) {
        if (this.#clock.now() >= until) throw new Errors.DEADLINE_EXCEEDED(`analytics: ${this.#buffer.length + this.#waiters.length} events not written before the deadline`);
        await sleep(this.#clock, Math.min(this.#backoff(), Math.max(0, until - this.#clock.now())));
      }
    }
  }

  /** Stops the timer and writes what is left (bounded by `deadlineMs`). Idempotent. */
  close(deadlineMs = 30_000): Promise<void> {
    this.#closed ??= (async () => {
      if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
      this.#timer = undefined;
      await this.flush(deadlineMs);
    })();
    return this.#closed;
  }

  #kick(delayMs: number): void {
    if (this.#closed && delayMs > 0) return;
    if (this.#timer !== undefined && delayMs > 0) return;
    // While writes fail, a retry is already armed: new events must not cut the backoff short
    // (that would hammer a server that is down with a write per event).
    if (this.#timer !== undefined && this.#failures > 0) return;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    // The system clock's timers are unref'd: a pending flush never keeps a stopping process alive.
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      if (this.#flushing) return void this.#flushing.then(() => this.#buffer.length && this.#kick(this.#failures > 0 ? this.#backoff() : 0));
      void this.#flushOnce().then((ok) => {
        if (this.#buffer.length === 0) return;
        this.#kick(ok ? (this.#buffer.length >= this.#opts.flushEvents ? 0 : this.#opts.flushIntervalMs) : this.#backoff());
      });
    }, delayMs);
  }

  #backoff(): number {
    return backoffDelay({ baseMs: this.#opts.retryBaseMs, maxMs: this.#opts.retryMaxMs, jitter: 'none' }, Math.min(this.#failures, MAX_BACKOFF_DOUBLINGS) + 1);
  }

  /** One write of up to `flushEvents` events; true when it succeeded. */
  async #flushOnce(): Promise<boolean> {
    const batch = this.#buffer.slice(0, this.#opts.flushEvents);
    if (batch.length === 0) return true;
    const started = this.#clock.monotonic();
    let done: () => void = () => {};
    this.#flushing = new Promise((r) => (done = r));
    try {
      await this.#sink.write(batch);
      // Only now remove them: a crash or error before this point keeps them for the retry.
      this.#buffer.splice(0, batch.length);
      this.stats.written += batch.length;
      this.stats.lastFlushMs = Math.round(this.#clock.monotonic() - started);
      this.#failures = 0;
      this.#report(batch.length, started, true);
      this.#release();
      return true;
    } catch (err) {
      this.#failures++;
      this.stats.writeErrors++;
      this.#report(batch.length, started, false);
      this.#log.warn({ err, buffered: this.#buffer.length, attempt: this.#failures }, 'analytics write failed; keeping events and retrying');
      return false;
    } finally {
      this.#flushing = undefined;
      done();
    }
  }

  #report(events: number, started: number, ok: boolean): void {
    try {
      this.#hooks.onFlush?.({ events, ms: Math.round(this.#clock.monotonic() - started), ok });
    } catch {
      // Metrics must never break the write path.
    }
  }

  /** Admits waiting events, oldest first, while there is room. */
  #release(): void {
    while (this.#waiters.length > 0 && this.#buffer.length < this.#opts.maxBuffered) {
      const w = this.#waiters.shift();
      if (w === undefined) break;
      this.#admit(w.event);
      w.admitted();
    }
  }
}
