/**
 * Records what happened to each delivery: one analytics event, and the claim marked done.
 * Claim completions are batched (one bulk write per `batchSize` or `intervalMs`) for the same
 * reason analytics are: a write per message would cost more than the send. The batch interval
 * is the window in which a crash leaves a sent message looking unsent (see docs/ARCHITECTURE.md, Crash).
 */
import type { Logger } from 'pino';
import { systemClock, type ClaimStore, type Clock, type Delivery, type EventRecorder, type Outcome, type OutcomeHooks } from '../ports/index.js';
import type { SmtpError } from '../errors.js';
import { SECOND_MS } from './time.js';

export interface OutcomeRecorderOptions {
  /** Completions per bulk write (config `send.recordBatch`). */
  batchSize: number;
  /** Longest wait before pending completions are written, ms (config `send.recordFlushMs`). */
  intervalMs: number;
  /** Time of the flush timer and of event timestamps. Default: the system clock. */
  clock?: Clock;
}

/** What the recorder needs to turn repeated hard bounces into a suppression. */
export interface BounceTracker {
  /** Is this permanent failure about the address (it counts towards suppression)? */
  isHardBounce(error: SmtpError): boolean;
  /** Counts one; `suppressed` is true when this bounce put the address on the list. */
  recordHardBounce(email: string, detail: string, userId: string): Promise<{ count: number; suppressed: boolean }>;
}

export class OutcomeRecorder {
  readonly #claims: ClaimStore;
  readonly #events: EventRecorder;
  readonly #opts: OutcomeRecorderOptions;
  readonly #log: Logger;
  #pending: Array<{ key: string; status: 'sent' | 'failed' }> = [];
  readonly #clock: Clock;
  #timer: unknown;
  #writing: Promise<void> = Promise.resolve();

  readonly #bounces: BounceTracker | undefined;

  constructor(claims: ClaimStore, events: EventRecorder, opts: OutcomeRecorderOptions, log: Logger, bounces?: BounceTracker) {
    this.#bounces = bounces;
    this.#claims = claims;
    this.#events = events;
    this.#opts = opts;
    this.#clock = opts.clock ?? systemClock;
    this.#log = log;
  }

  /** The SendQueue's hooks. */
  /** The send queue's hooks (ports `OutcomeHooks`), both awaited: recording is backpressure. */
  readonly hooks: { [K in keyof OutcomeHooks]-?: (...args: Parameters<NonNullable<OutcomeHooks[K]>>) => Promise<void> } = {
    onOutcome: (o) => this.outcome(o),
    onRetry: (d, attempt, delayMs, error) =>
      this.#events.record({
        type: 'retried',
        at: this.#now(),
        key: d.key,
        kind: d.kind,
        userId: d.userId,
        attempt,
        delayMs,
        reason: error.message,
        ...(error.smtpCode === undefined ? {} : { smtpCode: error.smtpCode }),
      }),
  };

  async outcome(o: Outcome): Promise<void> {
    const d = o.delivery;
    this.#pending.push({ key: d.key, status: o.status });
    if (this.#pending.length >= this.#opts.batchSize) {
      // A full batch: written now, and the caller (a send-queue worker, which awaits this hook
      // before its next send) waits until its own completion is written. Without the wait a slow
      // database let completions pile up behind the write in progress (377 sent-but-unrecorded
      // at a kill -9 on a loaded machine, against a stated bound of one batch): with it, at most
      // the batch being written and the one filling (each under recordBatch + one per worker)
      // are unrecorded at any moment, whatever the database's speed.
      await this.flush();
    } else this.#timer ??= this.#clock.setTimeout(() => void this.flush(), this.#opts.intervalMs);
    if (o.status === 'failed') {
      this.#log.warn({ key: d.key, code: o.error?.smtpCode, reason: o.error?.message }, 'delivery failed');
      if (o.error && this.#bounces?.isHardBounce(o.error)) await this.#bounce(d, o.error);
    }
    await this.#events.record({
      type: o.status,
      at: this.#now(),
      key: d.key,
      kind: d.kind,
      userId: d.userId,
      attempt: o.attempts,
      latencyMs: o.latencyMs,
      ...(o.error ? { reason: o.error.message } : {}),
      ...(o.error?.smtpCode === undefined ? {} : { smtpCode: o.error.smtpCode }),
    });
  }

  async #bounce(d: Delivery, error: SmtpError): Promise<void> {
    const detail = `${error.smtpCode ?? ''} ${error.message}`.trim();
    try {
      const { count, suppressed } = await (this.#bounces as BounceTracker).recordHardBounce(d.email, detail, d.userId);
      if (!suppressed) return;
      this.#log.warn({ userId: d.userId, bounces: count }, 'address suppressed after hard bounces');
      await this.#events.record({ type: 'suppressed', at: this.#now(), key: d.key, kind: d.kind, userId: d.userId, reason: `hard bounces: ${count}; last: ${detail}` });
    } catch (err) {
      // The failure itself is recorded; a lost bounce count only delays suppression by one bounce.
      this.#log.warn({ err, userId: d.userId }, 'could not record a hard bounce');
    }
  }

  /** Writes pending completions. Serialised so batches never interleave; errors keep the batch. */
  flush(): Promise<void> {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#writing = this.#writing.then(async () => {
      const batch = this.#pending.splice(0);
      if (batch.length === 0) return;
      try {
        await this.#claims.complete(batch);
      } catch (err) {
        // Keep them: an unrecorded completion would let a crash recovery resend a sent message.
        this.#pending.unshift(...batch);
        this.#log.warn({ err, pending: this.#pending.length }, 'could not record completions; will retry');
        this.#timer ??= this.#clock.setTimeout(() => void this.flush(), Math.max(SECOND_MS, this.#opts.intervalMs));
      }
    });
    return this.#writing;
  }

  get pending(): number {
    return this.#pending.length;
  }

  #now(): Date {
    return new Date(this.#clock.now());
  }
}
