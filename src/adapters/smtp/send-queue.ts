/**
 * SendQueue: the only road to SMTP. A Bottleneck limiter enforces the provider's rate windows
 * and the pool's concurrency, and orders work by priority (scheduled mail before broadcasts).
 * Transient failures come back after an exponential, jittered backoff; permanent ones are
 * reported at once. On stop, work that never reached SMTP is handed back (`released`) so its
 * claims can be returned; work in flight is given `drainTimeoutMs` to finish.
 */
import Bottleneck from 'bottleneck';
import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import type { Delivery, DeliveryKind } from '../../core/types.js';
import type { SmtpError } from '../../errors.js';
import type { MailTransport } from '../../ports/index.js';
import { backoffDelay, classifySmtpError } from './classify.js';

export interface SendOutcome {
  delivery: Delivery;
  status: 'sent' | 'failed';
  attempts: number;
  latencyMs: number;
  error?: SmtpError;
}

export interface SendQueueHooks {
  /** Final outcome of a delivery; awaited, so a slow analytics buffer slows sending (backpressure). */
  onOutcome(outcome: SendOutcome): Promise<void> | void;
  /** A transient failure that will be retried after `delayMs`. */
  onRetry?(delivery: Delivery, attempt: number, delayMs: number, error: SmtpError): Promise<void> | void;
}

export interface SendQueueOptions {
  /** Sends in flight at once; equal to the SMTP pool size. */
  concurrency: number;
  rate: Config['rate'];
  maxAttempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
}

/** Bottleneck priorities: 0 is served first. Scheduled mail must not wait behind a broadcast. */
const PRIORITY: Record<DeliveryKind, number> = { scheduled: 2, broadcast: 7 };

const WINDOWS = [
  ['perMinute', 60_000],
  ['perHour', 3_600_000],
  ['perDay', 86_400_000],
] as const;

interface Entry {
  delivery: Delivery;
  attempts: number;
  firstAt: number;
  backoff?: NodeJS.Timeout;
}

export class SendQueue {
  readonly #transport: MailTransport;
  readonly #hooks: SendQueueHooks;
  readonly #opts: SendQueueOptions;
  readonly #log: Logger;
  readonly #limiter: Bottleneck;
  readonly #windows: Bottleneck[] = [];
  /** Submitted but not handed to SMTP yet (queued in the limiter or waiting out a backoff). */
  readonly #waiting = new Set<Entry>();
  readonly #inFlight = new Set<Entry>();
  #stopping = false;
  #stopped: Promise<StopResult> | undefined;
  #idleWaiters: Array<() => void> = [];
  readonly stats = { submitted: 0, sent: 0, failed: 0, retried: 0 };

  constructor(transport: MailTransport, opts: SendQueueOptions, hooks: SendQueueHooks, log: Logger) {
    this.#transport = transport;
    this.#opts = opts;
    this.#hooks = hooks;
    this.#log = log;
    const perSecond = opts.rate.perSecond;
    this.#limiter = new Bottleneck({
      maxConcurrent: opts.concurrency,
      // Spacing starts evenly instead of releasing a second's quota at once at the window edge.
      minTime: perSecond ? Math.ceil(1000 / perSecond) : 0,
    });
    // Longer windows as chained limiters with a reservoir that refills each window.
    let last = this.#limiter;
    for (const [name, ms] of WINDOWS) {
      const limit = opts.rate[name];
      if (!limit) continue;
      const w = new Bottleneck({ reservoir: limit, reservoirRefreshAmount: limit, reservoirRefreshInterval: ms });
      last.chain(w);
      last = w;
      this.#windows.push(w);
    }
  }

  /** Messages submitted and not yet handed to SMTP. */
  get waiting(): number {
    return this.#waiting.size;
  }
  get inFlight(): number {
    return this.#inFlight.size;
  }

  submit(delivery: Delivery): void {
    if (this.#stopping) throw new Error('send queue is stopping');
    const entry: Entry = { delivery, attempts: 0, firstAt: Date.now() };
    this.stats.submitted++;
    this.#enqueue(entry);
  }

  /** Resolves when nothing is waiting or in flight. */
  idle(): Promise<void> {
    if (this.#waiting.size === 0 && this.#inFlight.size === 0) return Promise.resolve();
    return new Promise((r) => this.#idleWaiters.push(r));
  }

  /**
   * Stops intake, hands back everything not yet given to SMTP, and waits up to `drainTimeoutMs`
   * for sends in flight. Idempotent.
   */
  stop(drainTimeoutMs: number): Promise<StopResult> {
    this.#stopped ??= this.#stop(drainTimeoutMs);
    return this.#stopped;
  }

  async #stop(drainTimeoutMs: number): Promise<StopResult> {
    this.#stopping = true;
    for (const e of this.#waiting) if (e.backoff) clearTimeout(e.backoff);
    // Drop what the limiter still holds; a job that starts anyway sees #stopping and returns.
    // Not awaited: Bottleneck's stop() waits for running jobs without a deadline; the drain below
    // has one.
    void this.#limiter.stop({ dropWaitingJobs: true }).catch(() => undefined);
    const deadline = Date.now() + drainTimeoutMs;
    while (this.#inFlight.size > 0 && Date.now() < deadline) await sleep(Math.min(50, deadline - Date.now()));
    // Collected only now: a send that fails transiently during the drain joins the released.
    const released = [...this.#waiting].map((e) => e.delivery);
    const abandoned = [...this.#inFlight].map((e) => e.delivery);
    this.#waiting.clear();
    await Promise.all(this.#windows.map((w) => w.disconnect()));
    return { released, abandoned };
  }

  #enqueue(entry: Entry): void {
    this.#waiting.add(entry);
    this.#limiter
      .schedule({ priority: PRIORITY[entry.delivery.kind] }, () => this.#attempt(entry))
      .catch(() => {
        // Only a limiter stop rejects here (#attempt never throws); the entry was already
        // listed as released by #stop.
      });
  }

  async #attempt(entry: Entry): Promise<void> {
    if (this.#stopping || !this.#waiting.has(entry)) return;
    this.#waiting.delete(entry);
    this.#inFlight.add(entry);
    entry.attempts++;
    const started = Date.now();
    // The entry stays "in flight" until its outcome hook has run, so a stop that waits for the
    // drain also waits for the outcome to be recorded.
    let error: SmtpError | undefined;
    try {
      await this.#transport.send(entry.delivery);
    } catch (raw) {
      error = classifySmtpError(raw);
    }
    const latencyMs = Date.now() - started;
    // Hooks run apart from the send: a failing hook must never look like an SMTP failure,
    // which would resend a message the server already accepted.
    try {
      if (!error) {
        this.stats.sent++;
        await this.#hooks.onOutcome({ delivery: entry.delivery, status: 'sent', attempts: entry.attempts, latencyMs });
      } else if (error.retryable && entry.attempts < this.#opts.maxAttempts) {
        this.#waiting.add(entry);
        // While stopping, a transient failure is simply handed back with the other waiting work.
        if (!this.#stopping) {
          const delayMs = backoffDelay(entry.attempts, this.#opts.backoffBaseMs, this.#opts.backoffMaxMs);
          this.stats.retried++;
          entry.backoff = setTimeout(() => {
            entry.backoff = undefined;
            if (!this.#stopping && this.#waiting.delete(entry)) this.#enqueue(entry);
          }, delayMs);
          await this.#hooks.onRetry?.(entry.delivery, entry.attempts, delayMs, error);
        }
      } else {
        this.stats.failed++;
        await this.#hooks.onOutcome({ delivery: entry.delivery, status: 'failed', attempts: entry.attempts, latencyMs, error });
      }
    } catch (hookErr) {
      this.#log.error({ err: hookErr, key: entry.delivery.key }, 'outcome hook failed');
    } finally {
      this.#inFlight.delete(entry);
      this.#checkIdle();
    }
  }

  #checkIdle(): void {
    if (this.#waiting.size > 0 || this.#inFlight.size > 0) return;
    for (const w of this.#idleWaiters.splice(0)) w();
  }
}

export interface StopResult {
  /** Never handed to SMTP: the caller returns their claims. */
  released: Delivery[];
  /** Still in flight when the drain timeout passed: outcome unknown. */
  abandoned: Delivery[];
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
