/**
 * SendQueue: the only road to SMTP. It decides when each message may go (the provider's rate
 * windows, priorities, backoff after transient failures, a circuit breaker when the server is
 * unreachable, an AIMD slowdown when the server defers with 421 / "too many") and hands messages to the transport
 * with at most `concurrency` in flight, the size of the SMTP pool.
 *
 * Why it is built this way: Bottleneck 2.19.5 completes about 414 jobs/s whatever the settings
 * (docs/ARCHITECTURE.md), so one Bottleneck job per message caps the daemon near 400 msgs/s. Here a
 * Bottleneck job is a *grant* for a batch of messages, with `weight` = batch size (reservoirs of
 * the longer windows count weight) and `minTime` spacing batches so that the per-second rate holds.
 * Granted messages go to a small ready queue that `concurrency` workers drain. Only a couple of
 * batches are granted ahead, so a granted message is sent within about one batch of its grant,
 * and scheduled mail is always taken before broadcasts.
 */
import Bottleneck from 'bottleneck';
import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import type { Delivery, DeliveryKind } from '../../core/types.js';
import { Errors, type SmtpError } from '../../errors.js';
import type { MailTransport } from '../../ports/index.js';
import { backoffDelay, classifySmtpError, isSlowDown } from './classify.js';
import { AimdRate } from './aimd-rate.js';
import { ArrivalGate } from './arrival-gate.js';
import { CircuitBreaker, type BreakerState } from './circuit-breaker.js';
import { grantPacing } from '../../core/pacing.js';

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
  /** Messages in flight at once; equal to the SMTP pool size. */
  concurrency: number;
  rate: Config['rate'];
  maxAttempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** Consecutive connection failures that open the breaker. Default 5. */
  breakerThreshold?: number;
  /** Longest wait between probes while the breaker is open. Default 30 s. */
  breakerProbeMaxMs?: number;
  /** The AIMD slowdown after 421 / "too many" deferrals (aimd-rate.ts); defaults below. */
  slowdown?: SlowdownOptions;
  /** Largest batch per Bottleneck grant. Default 50. */
  maxBatch?: number;
}

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

const SLOWDOWN_DEFAULTS: SlowdownOptions = { decrease: 0.7, windowMs: 2000, recoveryPerSecond: 0.2, floor: 0.1 };

/** The queue's settings as the daemon takes them from its config (one place, so a benchmark measures the same queue). */
export function sendQueueOptions(config: Config): SendQueueOptions {
  return {
    concurrency: config.smtp.poolSize,
    rate: config.rate,
    maxAttempts: config.send.maxAttempts,
    backoffBaseMs: config.send.backoffBaseMs,
    backoffMaxMs: config.send.backoffMaxMs,
    breakerThreshold: config.send.breakerThreshold,
    breakerProbeMaxMs: config.send.breakerProbeMaxMs,
    slowdown: {
      decrease: config.send.slowdownDecrease,
      windowMs: config.send.slowdownWindowMs,
      recoveryPerSecond: config.send.slowdownRecoveryPerSecond,
      floor: config.send.slowdownFloor,
    },
  };
}

/** A transport the breaker can probe (nodemailer's `verify`). */
export type ProbeableTransport = MailTransport & { verify?(): Promise<boolean> };

/** Bottleneck priorities: 0 is served first. */
const PRIORITY: Record<DeliveryKind, number> = { scheduled: 2, broadcast: 7 };
const KINDS: readonly DeliveryKind[] = ['scheduled', 'broadcast'];
/** Batches granted ahead of the workers; more would let a burst build up behind a slow server. */
const GRANTS_AHEAD = 2;

const WINDOWS = [
  ['perMinute', 60_000],
  ['perHour', 3_600_000],
  ['perDay', 86_400_000],
] as const;

interface Entry {
  delivery: Delivery;
  attempts: number;
  backoff?: NodeJS.Timeout;
}

/** A FIFO with O(1) shift (a plain array's shift is O(n) on large queues). */
class Fifo<T> {
  #items: T[] = [];
  #head = 0;
  get length(): number {
    return this.#items.length - this.#head;
  }
  push(item: T): void {
    this.#items.push(item);
  }
  unshift(item: T): void {
    if (this.#head > 0) this.#items[--this.#head] = item;
    else this.#items.unshift(item);
  }
  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head++];
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }
  take(n: number): T[] {
    const out: T[] = [];
    while (out.length < n && this.length > 0) out.push(this.shift() as T);
    return out;
  }
  /** Keeps only the items for which `keep` is true (O(n); for rare removals). */
  retain(keep: (item: T) => boolean): void {
    this.#items = this.#items.slice(this.#head).filter(keep);
    this.#head = 0;
  }
}

export interface StopResult {
  /** Never handed to SMTP: the caller returns their claims. */
  released: Delivery[];
  /** Still in flight when the drain timeout passed: outcome unknown. */
  abandoned: Delivery[];
}

export class SendQueue {
  readonly #transport: ProbeableTransport;
  readonly #hooks: SendQueueHooks;
  readonly #opts: Required<SendQueueOptions>;
  readonly #log: Logger;
  readonly #limiter: Bottleneck;
  readonly #windows: Bottleneck[] = [];
  readonly #breaker: CircuitBreaker;
  readonly #gate: ArrivalGate | undefined;
  /** Submitted, not granted yet, per kind. */
  readonly #pending: Record<DeliveryKind, Fifo<Entry>> = { scheduled: new Fifo(), broadcast: new Fifo() };
  /** Granted by the limiter, waiting for a worker, per kind. */
  readonly #ready: Record<DeliveryKind, Fifo<Entry>> = { scheduled: new Fifo(), broadcast: new Fifo() };
  /** Every entry without a final outcome (pending, granted, ready, in flight or in backoff). */
  readonly #live = new Set<Entry>();
  readonly #inFlight = new Set<Entry>();
  readonly #base: { batch: number; minTime: number };
  #batch: number;
  #minTime: number;
  #granting = 0;
  #workers = 0;
  /** Set while the server's deferrals hold the rate below the configured one. */
  #aimd: AimdRate | undefined;
  /** The AIMD ceiling: rate.perSecond, or the highest pace measured when deferrals began. */
  #ceiling = 0;
  /** Sends completed in the current and the previous second: the pace, when no per-second rate is configured. */
  #pace = { start: 0, current: 0, previous: 0 };
  #stopping = false;
  #stopped: Promise<StopResult> | undefined;
  #idleWaiters: Array<() => void> = [];
  readonly stats = { submitted: 0, sent: 0, failed: 0, retried: 0, slowdowns: 0, grants: 0 };

  constructor(transport: ProbeableTransport, opts: SendQueueOptions, hooks: SendQueueHooks, log: Logger) {
    this.#transport = transport;
    this.#opts = { breakerThreshold: 5, breakerProbeMaxMs: 30_000, maxBatch: 50, ...opts, slowdown: { ...SLOWDOWN_DEFAULTS, ...opts.slowdown } };
    this.#hooks = hooks;
    this.#log = log;
    const perSecond = opts.rate.perSecond ?? undefined;
    const { batch, minTime } = grantPacing(perSecond, this.#opts.maxBatch);
    this.#base = { batch, minTime };
    this.#batch = batch;
    this.#minTime = minTime;
    this.#limiter = new Bottleneck({ minTime: this.#base.minTime });
    this.#gate = perSecond ? new ArrivalGate(perSecond) : undefined;
    let last = this.#limiter;
    for (const [name, ms] of WINDOWS) {
      const limit = opts.rate[name];
      if (!limit) continue;
      const w = new Bottleneck({ reservoir: limit, reservoirRefreshAmount: limit, reservoirRefreshInterval: ms });
      last.chain(w);
      last = w;
      this.#windows.push(w);
    }
    this.#breaker = new CircuitBreaker(
      { threshold: this.#opts.breakerThreshold, probeMaxMs: this.#opts.breakerProbeMaxMs },
      () => (this.#transport.verify ? this.#transport.verify() : Promise.resolve(true)),
      (state) => this.#onBreaker(state),
    );
  }

  /** Messages submitted and not yet handed to SMTP. */
  get waiting(): number {
    return this.#live.size - this.#inFlight.size;
  }
  get inFlight(): number {
    return this.#inFlight.size;
  }
  get breaker(): { state: BreakerState; opens: number; probes: number } {
    return { state: this.#breaker.state, opens: this.#breaker.opens, probes: this.#breaker.probes };
  }
  /**
   * The per-second rate in force: the configured `rate.perSecond`, or lower after 421 deferrals;
   * null when no per-second limit is in force.
   */
  get ratePerSecond(): number | null {
    return this.#aimd?.slowed ? this.#aimd.rate : (this.#opts.rate.perSecond ?? null);
  }
  /** ratePerSecond as a share of the configured rate (1: full rate). */
  get rateRatio(): number {
    return this.#aimd?.slowed ? this.#aimd.rate / this.#aimd.maxRate : 1;
  }

  submit(delivery: Delivery): void {
    if (this.#stopping) throw new Errors.SHUTTING_DOWN('send queue is stopping');
    const entry: Entry = { delivery, attempts: 0 };
    this.stats.submitted++;
    this.#live.add(entry);
    this.#pending[delivery.kind].push(entry);
    this.#pump();
  }

  /**
   * Takes back the deliveries matching `match` that have not been handed to SMTP (submitted,
   * granted, or waiting out a backoff) and returns them: the caller releases their claims (a
   * paused or cancelled broadcast). Sends in flight are left to finish and report as usual.
   */
  withdraw(match: (d: Delivery) => boolean): Delivery[] {
    const out: Delivery[] = [];
    for (const e of this.#live) {
      if (this.#inFlight.has(e) || !match(e.delivery)) continue;
      if (e.backoff) clearTimeout(e.backoff);
      this.#live.delete(e);
      out.push(e.delivery);
    }
    if (out.length === 0) return out;
    // Out of the FIFOs too, so withdrawn messages do not take rate-window tokens in a grant.
    for (const k of KINDS) {
      this.#pending[k].retain((e) => this.#live.has(e));
      this.#ready[k].retain((e) => this.#live.has(e));
    }
    this.#checkIdle();
    this.#pump();
    return out;
  }

  /** Resolves when nothing is waiting or in flight. */
  idle(): Promise<void> {
    // In flight counts too: an entry leaves #live before its outcome hook runs, and idle means
    // every outcome has been recorded.
    if (this.#live.size === 0 && this.#inFlight.size === 0) return Promise.resolve();
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
    this.#breaker.close();
    for (const e of this.#live) if (e.backoff) clearTimeout(e.backoff);
    // Not awaited: Bottleneck's stop() waits for running jobs without a deadline; grants are
    // instant anyway, and the drain below has a deadline.
    void this.#limiter.stop({ dropWaitingJobs: true }).catch(() => undefined);
    const deadline = Date.now() + drainTimeoutMs;
    while (this.#inFlight.size > 0 && Date.now() < deadline) await sleep(Math.min(20, deadline - Date.now()));
    // Collected only now: a send that fails transiently during the drain joins the released.
    const abandoned = [...this.#inFlight].map((e) => e.delivery);
    const released = [...this.#live].filter((e) => !this.#inFlight.has(e)).map((e) => e.delivery);
    this.#live.clear();
    await Promise.all(this.#windows.map((w) => w.disconnect()));
    return { released, abandoned };
  }

  /** Asks the limiter for grants while there is work and room ahead of the workers. */
  #pump(): void {
    while (!this.#stopping && this.#breaker.state === 'closed' && this.#granting < GRANTS_AHEAD) {
      const readyCount = this.#ready.scheduled.length + this.#ready.broadcast.length;
      if (readyCount >= this.#batch * GRANTS_AHEAD) break;
      const kind = KINDS.find((k) => this.#pending[k].length > 0);
      if (kind === undefined) break;
      const batch = this.#pending[kind].take(this.#batch);
      this.#granting++;
      this.#limiter
        .schedule({ priority: PRIORITY[kind], weight: batch.length }, async () => batch)
        .then(
          (granted) => this.#grant(kind, granted),
          () => undefined, // only a limiter stop rejects; the entries are still in #live and get released
        )
        .finally(() => {
          this.#granting--;
          this.#pump();
        });
    }
    this.#kick();
  }

  #grant(kind: DeliveryKind, batch: Entry[]): void {
    this.stats.grants++;
    for (const e of batch) if (this.#live.has(e)) this.#ready[kind].push(e);
    this.#kick();
  }

  /** Starts workers up to `concurrency` while granted messages wait. */
  #kick(): void {
    // The breaker check matters: a worker started while it is open returns at once, and this loop
    // would start another one forever.
    while (!this.#stopping && this.#breaker.state === 'closed' && this.#workers < this.#opts.concurrency && this.#ready.scheduled.length + this.#ready.broadcast.length > 0) {
      this.#workers++;
      void this.#work();
    }
  }

  /** Scheduled mail first: a broadcast never waits in front of a user's slot. */
  #nextReady(): Entry | undefined {
    for (const k of KINDS) if (this.#ready[k].length > 0) return this.#ready[k].shift();
    return undefined;
  }

  async #work(): Promise<void> {
    try {
      for (;;) {
        if (this.#stopping || this.#breaker.state !== 'closed') return;
        const entry = this.#nextReady();
        if (entry === undefined) return;
        if (!this.#live.has(entry)) continue;
        if (this.#gate) {
          // A monotonic sub-millisecond clock: with Date.now()'s whole milliseconds a completion
          // leaves the window up to 1 ms early, and the server saw up to 0.5 % over the limit in
          // a sliding second (npm run bench rate).
          for (let wait = this.#gate.tryStart(performance.now()); wait > 0; wait = this.#gate.tryStart(performance.now())) await sleep(wait);
          // While it waited at the gate the entry may have been handed back (stop, withdraw):
          // its claim is released then, so sending it now could send it twice.
          if (this.#stopping || !this.#live.has(entry)) {
            this.#gate.cancel();
            continue;
          }
        }
        try {
          await this.#send(entry);
        } finally {
          this.#gate?.finish(performance.now());
        }
        this.#pump();
      }
    } finally {
      this.#workers--;
      this.#checkIdle();
    }
  }

  async #send(entry: Entry): Promise<void> {
    this.#inFlight.add(entry);
    entry.attempts++;
    const started = Date.now();
    const startedMono = performance.now();
    let error: SmtpError | undefined;
    try {
      await this.#transport.send(entry.delivery);
    } catch (raw) {
      error = classifySmtpError(raw);
    }
    const latencyMs = Date.now() - started;
    // Hooks run apart from the send: a failing hook must never look like an SMTP failure, which
    // would resend a message the server already accepted.
    try {
      if (!error) {
        this.#breaker.success();
        this.#accepted();
        this.stats.sent++;
        this.#live.delete(entry);
        await this.#hooks.onOutcome({ delivery: entry.delivery, status: 'sent', attempts: entry.attempts, latencyMs });
      } else if (error.connection && this.#breaker.failure()) {
        // The server is unreachable: this attempt does not count against the message's budget,
        // and the message goes back to the front to wait for the breaker to close.
        entry.attempts--;
        if (!this.#stopping) this.#pending[entry.delivery.kind].unshift(entry);
      } else if (error.retryable && entry.attempts < this.#opts.maxAttempts) {
        if (isSlowDown(error)) this.#slowDown(startedMono, error);
        if (!this.#stopping) await this.#retryLater(entry, error);
      } else {
        this.stats.failed++;
        this.#live.delete(entry);
        await this.#hooks.onOutcome({ delivery: entry.delivery, status: 'failed', attempts: entry.attempts, latencyMs, error });
      }
    } catch (hookErr) {
      this.#log.error({ err: hookErr, key: entry.delivery.key }, 'outcome hook failed');
    } finally {
      this.#inFlight.delete(entry);
      this.#checkIdle();
    }
  }

  async #retryLater(entry: Entry, error: SmtpError): Promise<void> {
    const delayMs = backoffDelay(entry.attempts, this.#opts.backoffBaseMs, this.#opts.backoffMaxMs);
    this.stats.retried++;
    entry.backoff = setTimeout(() => {
      entry.backoff = undefined;
      if (this.#stopping || !this.#live.has(entry)) return;
      this.#pending[entry.delivery.kind].push(entry);
      this.#pump();
    }, delayMs);
    await this.#hooks.onRetry?.(entry.delivery, entry.attempts, delayMs, error);
  }

  /**
   * A 421 or "too many" answer is about the sender, not the message: lower the rate of the whole
   * queue (AIMD, aimd-rate.ts), once per crowded moment. Without a configured per-second rate the
   * ceiling is the pace of the last second or two, and the limit is lifted again once recovered.
   */
  #slowDown(startedAt: number, error: SmtpError): void {
    const now = performance.now();
    if (this.#aimd === undefined) {
      // Never below an earlier ceiling: the pace just after a recovery is the slowed one, and
      // measuring it again would ratchet the ceiling down with every episode.
      this.#ceiling = Math.max(this.#ceiling, this.#opts.rate.perSecond ?? this.#measuredPace(now));
      this.#aimd = new AimdRate({ maxRate: this.#ceiling, ...this.#opts.slowdown });
    }
    if (!this.#aimd.deferred(now, startedAt)) return;
    this.stats.slowdowns++;
    this.#applyRate();
    // Not `level`: that key is pino's own (a second one made the JSON line ambiguous).
    const ratePerSecond = round2(this.#aimd.rate);
    this.#log.warn({ ratePerSecond, configuredPerSecond: this.#opts.rate.perSecond ?? null, smtpCode: error.smtpCode }, 'server deferred a message; lowering the send rate');
  }

  #accepted(): void {
    const now = performance.now();
    if (now - this.#pace.start >= 1000) {
      this.#pace = { start: now, current: 0, previous: now - this.#pace.start < 2000 ? this.#pace.current : 0 };
    }
    this.#pace.current++;
    if (this.#aimd === undefined) return;
    if (this.#aimd.accepted()) {
      this.#log.info({ ratePerSecond: this.#opts.rate.perSecond ?? null }, 'server accepts again: send rate back to the configured rate');
      this.#aimd = undefined;
    }
    this.#applyRate();
  }

  /** Completed sends per second over the current and the previous second (at least 1). */
  #measuredPace(now: number): number {
    const seconds = Math.max(1, (now - this.#pace.start) / 1000 + (this.#pace.previous > 0 ? 1 : 0));
    return Math.max(1, (this.#pace.current + this.#pace.previous) / seconds);
  }

  /** Grant pacing for the rate in force; the limiter is touched only when it changes by more than 5 %. */
  #applyRate(): void {
    const slowed = this.#aimd?.slowed === true;
    const { batch, minTime } = slowed ? grantPacing(this.#aimd?.rate, this.#opts.maxBatch) : this.#base;
    if (batch === this.#batch && Math.abs(minTime - this.#minTime) <= 0.05 * this.#minTime) return;
    this.#batch = batch;
    this.#minTime = minTime;
    void this.#limiter.updateSettings({ minTime });
  }

  #onBreaker(state: BreakerState): void {
    if (state === 'open') this.#log.error({ opens: this.#breaker.opens }, 'SMTP server unreachable: circuit breaker open, sending paused');
    else if (state === 'closed') {
      this.#log.info({ probes: this.#breaker.probes }, 'SMTP server answers again: circuit breaker closed, sending resumed');
      this.#pump();
    }
  }

  #checkIdle(): void {
    if (this.#live.size > 0 || this.#inFlight.size > 0) return;
    for (const w of this.#idleWaiters.splice(0)) w();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}
