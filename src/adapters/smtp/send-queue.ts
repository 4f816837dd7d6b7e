/**
 * SendQueue: the only road to SMTP. It decides when each message may go and hands messages to the
 * transport with at most `concurrency` in flight, the size of the SMTP pool. The policies live
 * beside it: the rate windows as batch grants (grant-limiter.ts), an exact per-second bound on
 * arrivals (arrival-gate.ts), what follows a failure (retry-policy.ts, with the circuit breaker)
 * and the AIMD slowdown when the server defers with 421 / "too many" (slowdown.ts). With a budget
 * shared by several instances (`cluster.redisUrl`), the windows and the exact second are Redis's
 * and the local limiter only spaces grants (shared-gate.ts); Redis down pauses sending.
 *
 * Granted messages go to a small ready queue that `concurrency` workers drain. Only a couple of
 * batches are granted ahead, so a granted message is sent within about one batch of its grant,
 * and scheduled mail is always taken before broadcasts. Feeders wait on `room()` and `idle()`,
 * promises the queue resolves as sends start and end: nobody polls it.
 */
import type { Logger } from 'pino';
import { OrderedFifos } from '../../core/fifo.js';
import { sleepOrWake } from '../../core/time.js';
import type { Delivery, DeliveryKind } from '../../core/types.js';
import { Errors, type SmtpError } from '../../errors.js';
import { systemClock, type Clock, type OutcomeHooks } from '../../ports/index.js';
import type { BudgetView } from '../../ports/cluster.js';
import { ArrivalGate } from './arrival-gate.js';
import type { BreakerState } from './circuit-breaker.js';
import { classifySmtpError } from './classify.js';
import { GrantLimiter } from './grant-limiter.js';
import { LiveEntries, type Entry, type StopResult } from './live-entries.js';
import { RetryPolicy } from './retry-policy.js';
import type { ProbeableTransport, SendPath, SendQueueOptions } from './send-options.js';
import { pacingOnly, SharedGate } from './shared-gate.js';
import { Slowdown, SLOWDOWN_DEFAULTS } from './slowdown.js';

export { sendQueueOptions, type ProbeableTransport, type SendPath, type SendQueueOptions } from './send-options.js';

/** Served in this order: scheduled mail before broadcasts. */
const KINDS: readonly DeliveryKind[] = ['scheduled', 'broadcast'];
/** Batches granted ahead of the workers; more would let a burst build up behind a slow server. */
const GRANTS_AHEAD = 2;

export class SendQueue implements SendPath {
  readonly #transport: ProbeableTransport;
  readonly #hooks: OutcomeHooks;
  readonly #concurrency: number;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #limiter: GrantLimiter;
  readonly #retry: RetryPolicy;
  readonly #slowdown: Slowdown;
  readonly #gate: ArrivalGate | undefined;
  /** The budget every instance shares (Redis), when configured: the windows and the exact second. */
  readonly #shared: SharedGate | undefined;
  /** Submitted, not granted yet, per kind. */
  readonly #pending = new OrderedFifos<DeliveryKind, Entry>(KINDS);
  /** Granted by the limiter, waiting for a worker, per kind. */
  readonly #ready = new OrderedFifos<DeliveryKind, Entry>(KINDS);
  /** Every entry without a final outcome (pending, granted, ready, in flight or in backoff). */
  readonly #live = new LiveEntries();
  #granting = 0;
  #workers = 0;
  #stopping = false;
  #stopped: Promise<StopResult> | undefined;
  readonly stats = { submitted: 0, sent: 0, failed: 0, retried: 0, slowdowns: 0, grants: 0 };

  constructor(transport: ProbeableTransport, opts: SendQueueOptions, hooks: OutcomeHooks, log: Logger) {
    this.#transport = transport;
    this.#hooks = hooks;
    this.#log = log;
    this.#concurrency = opts.concurrency;
    this.#clock = opts.clock ?? systemClock;
    const perSecond = opts.rate.perSecond ?? undefined;
    const slowdown = { maxBatch: opts.maxBatch ?? 50, perSecond, aimd: { ...SLOWDOWN_DEFAULTS, ...opts.slowdown } };
    this.#slowdown = new Slowdown(slowdown, this.#clock, log, (minTime) => this.#limiter.setMinTime(minTime));
    // With a shared budget the local limiter keeps spacing and priorities; the windows are Redis's.
    this.#shared = opts.shared ? new SharedGate(opts.shared, this.#clock, log, () => this.#pump()) : undefined;
    // A destination group's queue keeps its group's windows as well (`ownWindows`).
    this.#limiter = this.#shared && opts.ownWindows !== true
      ? new GrantLimiter(pacingOnly(opts.rate), this.#slowdown.base.minTime)
      : new GrantLimiter(opts.rate, this.#slowdown.base.minTime, opts.used);
    this.#gate = perSecond ? new ArrivalGate(perSecond) : undefined;
    const probe = (): Promise<boolean> => (this.#transport.verify ? this.#transport.verify() : Promise.resolve(true));
    this.#retry = new RetryPolicy(opts, { probe, onClosed: () => this.#pump() }, this.#clock, log);
  }

  /** Messages submitted and not yet handed to SMTP. */
  get waiting(): number {
    return this.#live.waiting;
  }
  get inFlight(): number {
    return this.#live.inFlight;
  }
  /** Submitted and not yet granted by the rate limiter (pending, or in a grant being decided). */
  get awaitingGrant(): boolean {
    return this.#pending.length > 0 || this.#granting > 0;
  }
  get breaker(): { state: BreakerState; opens: number; probes: number } {
    const { state, opens, probes } = this.#retry.breaker;
    return { state, opens, probes };
  }
  /** The per-second rate in force: the configured `rate.perSecond`, or lower after 421 deferrals; null when none. */
  get ratePerSecond(): number | null {
    return this.#slowdown.ratePerSecond;
  }
  /** The rate windows' use (`/stats`, `/metrics`, `cluster status`). */
  get budget(): BudgetView {
    return this.#shared?.budget ?? this.#limiter.view();
  }
  /** ratePerSecond as a share of the configured rate (1: full rate). */
  get rateRatio(): number {
    return this.#slowdown.rateRatio;
  }

  submit(delivery: Delivery): void {
    if (this.#stopping) throw new Errors.SHUTTING_DOWN('send queue is stopping');
    const entry = this.#live.add(delivery);
    this.stats.submitted++;
    this.#pending.of(delivery.kind).push(entry);
    this.#pump();
  }

  /**
   * Takes back the deliveries matching `match` that have not been handed to SMTP (submitted,
   * granted, or waiting out a backoff) and returns them: the caller releases their claims (a
   * paused or cancelled broadcast). Sends in flight are left to finish and report as usual.
   */
  withdraw(match: (d: Delivery) => boolean): Delivery[] {
    const out = this.#live.takeBack(match);
    if (out.length === 0) return [];
    for (const e of out) if (e.backoff !== undefined) this.#retry.cancel(e.backoff);
    // Out of the FIFOs too, so withdrawn messages do not take rate-window tokens in a grant.
    this.#pending.retain((e) => this.#live.has(e));
    this.#ready.retain((e) => this.#live.has(e));
    this.#pump();
    return out.map((e) => e.delivery);
  }

  /** Resolves once fewer than `limit` deliveries wait (at once if so already), or when the queue stops. */
  room(limit: number): Promise<void> {
    return this.#live.room(limit);
  }

  /** Resolves when nothing is waiting or in flight, and every outcome hook has returned. */
  idle(): Promise<void> {
    return this.#live.idle();
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
    this.#live.close();
    this.#retry.breaker.close();
    for (const e of this.#live.waitingEntries()) if (e.backoff !== undefined) this.#retry.cancel(e.backoff);
    this.#limiter.stop();
    this.#shared?.stop();
    // The drain ends when the last send in flight does, or at the deadline on the clock.
    if (this.#live.inFlight > 0) await sleepOrWake(this.#clock, drainTimeoutMs, this.#live.drained());
    // Collected only now: a send that fails transiently during the drain joins the released.
    const result = this.#live.releaseAll();
    await this.#limiter.disconnect();
    return result;
  }

  /** Asks the limiter for grants while there is work and room ahead of the workers. */
  #pump(): void {
    while (!this.#stopping && this.#retry.breaker.state === 'closed' && this.#granting < GRANTS_AHEAD && !(this.#shared?.grantsPaused ?? false)) {
      // Never heavier than the rate windows have left: Bottleneck would hold it until a refresh.
      const batchSize = Math.min(this.#slowdown.batch, this.#limiter.maxGrant());
      if (this.#ready.length >= batchSize * GRANTS_AHEAD) break;
      const kind = this.#pending.firstNonEmpty();
      if (kind === undefined) break;
      const batch = this.#pending.of(kind).take(batchSize);
      this.#granting++;
      this.#limiter
        .grant(kind, batch)
        .then(
          (granted) => (this.#shared ? this.#takeShared(this.#shared, kind, granted) : this.#grant(kind, granted)),
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
    for (const e of batch) if (this.#live.has(e)) this.#ready.of(kind).push(e);
    this.#kick();
  }

  /** A local grant takes from the shared windows: what it got is granted, the rest waits in front of its kind. */
  async #takeShared(shared: SharedGate, kind: DeliveryKind, batch: Entry[]): Promise<void> {
    const live = batch.filter((e) => this.#live.has(e));
    const { granted: n, atMs } = live.length === 0 ? { granted: 0, atMs: 0 } : await shared.take(live.length);
    const rest = live.slice(n);
    for (const e of live.slice(0, n)) e.grantedAt = atMs;
    for (let i = rest.length - 1; i >= 0; i--) if (this.#live.has(rest[i] as Entry)) this.#pending.of(kind).unshift(rest[i] as Entry);
    if (n > 0) this.#grant(kind, live.slice(0, n));
  }

  /**
   * Redis failed before `entry` could start: it and every granted entry go back in front of the
   * pending ones for a new grant once Redis answers (a restarted Redis forgot the grants they had).
   */
  #regrant(entry: Entry): void {
    if (this.#stopping) return;
    for (const kind of KINDS) {
      const back = this.#ready.of(kind).take(this.#ready.of(kind).length);
      if (entry.delivery.kind === kind && this.#live.has(entry)) back.unshift(entry);
      for (let i = back.length - 1; i >= 0; i--) this.#pending.of(kind).unshift(back[i] as Entry);
    }
  }

  /** Starts workers up to `concurrency` while granted messages wait. */
  #kick(): void {
    // The breaker check matters: a worker started while it is open returns at once, and this loop
    // would start another one forever.
    while (!this.#stopping && this.#retry.breaker.state === 'closed' && this.#workers < this.#concurrency && this.#ready.length > 0) {
      this.#workers++;
      void this.#work();
    }
  }

  async #work(): Promise<void> {
    try {
      for (;;) {
        if (this.#stopping || this.#retry.breaker.state !== 'closed') return;
        // Scheduled mail first: a broadcast never waits in front of a user's slot.
        const entry = this.#ready.shift();
        if (entry === undefined) return;
        if (!this.#live.has(entry)) continue;
        if (this.#gate) {
          await this.#gate.admit(this.#clock);
          // While it waited at the gate the entry may have been handed back (stop, withdraw): its
          // claim is released then, so sending it now could send it twice.
          if (this.#stopping || !this.#live.has(entry)) {
            this.#gate.cancel();
            continue;
          }
        }
        let place: string | undefined;
        if (this.#shared) {
          place = await this.#shared.admit();
          if (place === undefined || this.#stopping || !this.#live.has(entry)) {
            if (place !== undefined) this.#shared.cancel(place);
            this.#gate?.cancel();
            if (place !== undefined) continue;
            this.#regrant(entry); // Redis failed: nothing starts without a place; resumed by the gate
            return;
          }
        }
        try {
          await this.#send(entry);
        } finally {
          this.#gate?.finish(this.#clock.monotonic());
          if (place !== undefined) this.#shared?.finish(place, entry.grantedAt);
        }
        this.#pump();
      }
    } finally {
      this.#workers--;
    }
  }

  async #send(entry: Entry): Promise<void> {
    this.#live.started(entry);
    entry.attempts++;
    const started = this.#clock.now();
    const startedMono = this.#clock.monotonic();
    let error: SmtpError | undefined;
    try {
      await this.#transport.send(entry.delivery);
    } catch (raw) {
      error = classifySmtpError(raw);
    }
    const latencyMs = this.#clock.now() - started;
    // Hooks run apart from the send: a failing hook must never look like an SMTP failure, which
    // would resend a message the server already accepted.
    try {
      if (!error) {
        this.#retry.breaker.success();
        this.#slowdown.accepted();
        this.stats.sent++;
        this.#live.settled(entry);
        await this.#hooks.onOutcome({ delivery: entry.delivery, status: 'sent', attempts: entry.attempts, latencyMs });
        return;
      }
      const next = this.#retry.decide(error, entry.attempts);
      if (next.action === 'await-breaker') {
        // The server is unreachable: this attempt does not count against the message's budget,
        // and the message goes back to the front to wait for the breaker to close.
        entry.attempts--;
        if (!this.#stopping) this.#pending.of(entry.delivery.kind).unshift(entry);
      } else if (next.action === 'retry') {
        if (next.slowDown && this.#slowdown.deferred(startedMono, error)) this.stats.slowdowns++;
        if (!this.#stopping) await this.#retryLater(entry, next.delayMs, error);
      } else {
        this.stats.failed++;
        this.#live.settled(entry);
        await this.#hooks.onOutcome({ delivery: entry.delivery, status: 'failed', attempts: entry.attempts, latencyMs, error });
      }
    } catch (hookErr) {
      this.#log.error({ err: hookErr, key: entry.delivery.key }, 'outcome hook failed');
    } finally {
      this.#live.ended(entry);
    }
  }

  async #retryLater(entry: Entry, delayMs: number, error: SmtpError): Promise<void> {
    this.stats.retried++;
    entry.backoff = this.#retry.after(delayMs, () => {
      entry.backoff = undefined;
      if (this.#stopping || !this.#live.has(entry)) return;
      this.#pending.of(entry.delivery.kind).push(entry);
      this.#pump();
    });
    await this.#hooks.onRetry?.(entry.delivery, entry.attempts, delayMs, error);
  }
}
