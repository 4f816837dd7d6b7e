/**
 * The composition root: builds every part from the config, wires them together, and owns the
 * order in which they stop. Nothing else in the program constructs adapters.
 */
import type { Logger } from 'pino';
import type { LoadedConfig } from '../config/load.js';
import { AnalyticsBuffer } from '../analytics/buffer.js';
import { NodemailerTransport } from '../adapters/smtp/nodemailer-transport.js';
import { SendQueue, sendQueueOptions } from '../adapters/smtp/send-queue.js';
import { Dispatcher } from '../core/dispatcher.js';
import { JobRegistry, type Job } from '../core/job-registry.js';
import { MinuteScheduler } from '../core/minute-scheduler.js';
import { OutcomeRecorder } from '../core/outcome-recorder.js';
import { UserSync } from '../core/user-sync.js';
import { scheduledKey } from '../core/delivery-key.js';
import { HttpServer, type ReadyReport } from '../http/server.js';
import { UnsubscribeHandler } from '../http/unsubscribe.js';
import { isHardBounce } from '../adapters/smtp/classify.js';
import { SuppressionList } from '../core/suppression-list.js';
import { unsubscribeHeaders } from '../core/unsubscribe-token.js';
import { systemClock, type Clock, type Delivery } from '../ports/index.js';
import type { SendQueueHooks } from '../adapters/smtp/send-queue.js';
import { CatchUp, MinuteLedger, planCatchUp } from '../core/catch-up.js';
import { Checkpoint } from '../core/checkpoint.js';
import { epochMinute } from '../core/fire-time.js';
import { Metrics } from '../metrics/metrics.js';
import { DailySummary, type SummaryCounters } from './daily-summary.js';
import { Housekeeping } from './housekeeping.js';
import { BroadcastRunner } from './broadcast-runner.js';
import { openMongoStores, type MongoStores } from './stores.js';
import type { ClaimStore } from '../ports/index.js';
import type { EventReconciler, InstanceRegistration, Retention } from '../ports/stores.js';

const MINUTE_MS = 60_000;
/** How long `/readyz` reuses an SMTP handshake's answer: longer after a success than after a failure. */
const SMTP_CHECK_OK_MS = 30_000;
const SMTP_CHECK_FAILED_MS = 5_000;

/** One SMTP handshake for `/readyz`; `result` is set once it answered, `at` when it did. */
interface SmtpCheck {
  at: number;
  ok: Promise<boolean>;
  result: boolean | undefined;
}

/** What one `run-minute` did. */
export interface MinuteReport {
  due: number;
  claimed: number;
  /** Already claimed by an earlier run or another instance. */
  skipped: number;
  /** Not sent: the address is suppressed (unsubscribed or bounced). */
  suppressed: number;
  sent: number;
  failed: number;
  retried: number;
  /** Where the run's time went (benchmarks: time to first send, claims per second). */
  timing: MinuteTiming;
}

/** Phases of one `run-minute`, in ms; `startedAt` is wall-clock epoch ms. */
export interface MinuteTiming {
  startedAt: number;
  /** The full user sync that precedes the minute. */
  syncMs: number;
  /** From the end of the sync until every due delivery was claimed and in the send queue. */
  dispatchMs: number;
  /** Time the bulk claims took (interleaved with sending). */
  claimMs: number;
  /** Of the claims' time, what the feed waited for (the next chunk is claimed while one is fed). */
  claimWaitMs: number;
  /** The whole run, until every outcome was recorded. */
  totalMs: number;
}

/** Live counters of a `run-minute` (its progress lines, and the summary of a run that was stopped). */
export interface MinuteProgress {
  /** Deliveries due in the minute; undefined until the user sync is done and the minute fired. */
  due: number | undefined;
  /** Users scheduled so far (grows during the user sync). */
  users: number;
  claimed: number;
  skipped: number;
  suppressed: number;
  sent: number;
  failed: number;
  retried: number;
  /** Claimed and not handed to SMTP yet (in the send queue, in backoff, or not yet queued). */
  waiting: number;
  inFlight: number;
  /** Claims given back at a stop (a rerun of the minute sends them). */
  released: number;
  breaker: string;
}

/** What a `run-minute --dry-run` would send. */
export interface MinutePlan {
  due: number;
  /** Would be claimed and sent now. */
  wouldSend: number;
  /** Already claimed (sent, failed, or in progress) by an earlier run or another instance. */
  alreadyClaimed: number;
  suppressed: number;
  /** Of `wouldSend`, per template and kind (scheduled mail uses the `scheduled` template). */
  byTemplate: Array<{ template: string; kind: string; count: number }>;
}

export interface AppOptions {
  clock?: Clock;
}

export class App {
  readonly loaded: LoadedConfig;
  readonly log: Logger;
  readonly clock: Clock;
  /** Every store, opened once by the factory (app/stores.ts). */
  readonly store: MongoStores;
  readonly instances: InstanceRegistration;
  readonly analytics: AnalyticsBuffer;
  readonly claims: ClaimStore & { readonly stats: MongoStores['claims']['stats'] };
  readonly transport: NodemailerTransport;
  readonly queue: SendQueue;
  readonly recorder: OutcomeRecorder;
  readonly dispatcher: Dispatcher;
  readonly registry = new JobRegistry();
  readonly suppressions: SuppressionList;
  readonly sync: UserSync;
  readonly scheduler: MinuteScheduler;
  /** Prometheus metrics read from the components (`/metrics`). */
  readonly metrics: Metrics;
  /** The cron jobs of config/schedules.json; others add theirs with `housekeeping.add()`. */
  readonly housekeeping: Housekeeping;
  /** Start-up backfill of fires missed while down: send within the grace period, else `missed`. */
  readonly catchUp: CatchUp;
  /** Scheduled deliveries without an outcome, per due minute (what the checkpoint waits for). */
  readonly ledger = new MinuteLedger();
  readonly checkpoint: Checkpoint;
  readonly retention: Retention;
  /** Rebuilds, at start, the outcome events a crash lost, from the delivery records. */
  readonly eventCheck: EventReconciler;
  /** Runs broadcasts (`mailwheel broadcast send`): pickup, lease, batches, pause/cancel. */
  readonly broadcasts: BroadcastRunner;
  #smtpCheck: SmtpCheck | undefined;
  /** The minute before the start-up schedule begins: everything up to it is handled or recorded. */
  #resumedAfter: number | undefined;
  #http: HttpServer | undefined;
  #unsubscribe: UnsubscribeHandler | undefined;
  #synced = false;
  /** Deliveries fired so far (for `run-minute`, the minute's due count). */
  #minuteDue: number | undefined;
  #closed: Promise<void> | undefined;

  private constructor(loaded: LoadedConfig, log: Logger, store: MongoStores, opts: AppOptions) {
    const { config } = loaded;
    this.loaded = loaded;
    this.log = log;
    this.clock = opts.clock ?? systemClock;
    this.store = store;
    this.instances = store.instances;
    // Sources are read at scrape time, so the metrics can exist before the parts they read.
    this.metrics = new Metrics({
      queue: () => this.queue,
      dispatcher: () => this.dispatcher,
      registry: () => ({ jobs: this.registry.size, users: this.registry.userCount, nextFireMinute: this.registry.nextFireMinute() }),
      analytics: () => this.analytics,
      scheduler: () => ({ lastProcessedMinute: this.scheduler.lastProcessedMinute, checkpointMinute: this.checkpoint.saved }),
    });
    this.analytics = new AnalyticsBuffer(store.events, config.analytics, log.child({ part: 'analytics' }), {
      onFlush: (r) => this.metrics.observeFlush(r),
    });
    this.claims = store.claims;
    this.eventCheck = store.eventCheck;
    this.suppressions = new SuppressionList(store.suppressions, {
      hardBounceLimit: config.send.hardBounceLimit,
    });
    this.transport = new NodemailerTransport(config, {
      headersFor: (d) => unsubscribeHeaders({ userId: d.userId, email: d.email }, config.unsubscribe, this.clock.now()),
    });
    this.recorder = new OutcomeRecorder(this.claims, this.analytics, { batchSize: 100, intervalMs: 250 }, log, {
      isHardBounce,
      recordHardBounce: (email, detail, userId) => this.suppressions.recordHardBounce(email, detail, userId),
    });
    this.queue = new SendQueue(
      this.transport,
      sendQueueOptions(config),
      this.metrics.wrapSendHooks(this.#afterRecording(this.recorder.hooks)),
      log.child({ part: 'send' }),
    );
    this.dispatcher = new Dispatcher(
      { claims: this.claims, queue: this.queue, recorder: this.recorder, events: this.analytics, isSuppressed: (email) => this.suppressions.has(email) },
      { claimBatch: 1000, maxQueued: Math.max(200, config.smtp.poolSize * 20), drainTimeoutMs: config.send.drainTimeoutMs, spreadMs: config.send.spreadSeconds * 1000 },
      log.child({ part: 'dispatch' }),
    );
    this.sync = new UserSync(
      { source: store.users, registry: this.registry, events: this.analytics, clock: this.clock },
      config.users.fields,
      log.child({ part: 'sync' }),
    );
    this.scheduler = new MinuteScheduler({
      registry: this.registry,
      clock: this.clock,
      onDue: (jobs, minute) => this.#fire(jobs, minute),
      onError: (err, minute) => log.error({ err, minute }, 'minute failed'),
    });
    this.catchUp = new CatchUp(
      { claims: this.claims, events: this.analytics },
      { graceMs: config.send.catchUpGraceMs, lookbackMs: config.send.catchUpLookbackHours * 3_600_000 },
      log.child({ part: 'catch-up' }),
    );
    this.checkpoint = new Checkpoint(
      { store: store.checkpoint, ledger: this.ledger, processed: () => this.scheduler.lastProcessedMinute ?? this.#resumedAfter, clock: this.clock },
      {},
      log.child({ part: 'checkpoint' }),
    );
    this.housekeeping = new Housekeeping(loaded.schedules, log.child({ part: 'housekeeping' }), {
      onRun: (job, ok, atMs) => this.metrics.observeHousekeeping(job, ok, atMs),
    });
    this.retention = store.retention;
    this.broadcasts = new BroadcastRunner(
      {
        store: store.broadcasts,
        recipients: store.recipients,
        instance: { id: this.instances.id, isAlive: (owner) => this.instances.isAlive(owner) },
        claims: this.claims,
        queue: this.queue,
        recorder: this.recorder,
        events: this.analytics,
        isSuppressed: (email) => this.suppressions.has(email),
        templates: this.transport,
        fields: config.users.fields,
      },
      // Half the dispatcher's queue bound: a broadcast never fills the queue ahead of scheduled mail.
      { ...config.broadcasts, feedAhead: Math.max(100, config.smtp.poolSize * 10), drainTimeoutMs: config.send.drainTimeoutMs },
      log.child({ part: 'broadcast' }),
    );
    this.metrics.setBroadcastSource(() =>
      this.broadcasts.running().map((b) => ({ id: b.id, state: 'running', targeted: b.processed, sent: b.sent, failed: b.failed, skipped: b.skipped + b.suppressed })),
    );
  }

  /**
   * After the recorder: a scheduled delivery settles in the catch-up ledger once its outcome is
   * recorded; a broadcast run counts its outcome even if recording threw (it must not stall).
   */
  #afterRecording(inner: SendQueueHooks): SendQueueHooks {
    return {
      onOutcome: async (o) => {
        try {
          await inner.onOutcome(o);
          if (o.delivery.kind === 'scheduled') this.ledger.settle(epochMinute(o.delivery.dueAt));
        } finally {
          if (o.delivery.kind === 'broadcast') this.broadcasts.onOutcome(o);
        }
      },
      onRetry: (d, attempt, delayMs, error) => inner.onRetry?.(d, attempt, delayMs, error),
    };
  }

  /** Connects to MongoDB and registers this instance; nothing is sent yet. */
  static async create(loaded: LoadedConfig, log: Logger, opts: AppOptions = {}): Promise<App> {
    const store = await openMongoStores(loaded.config, { log, ...(opts.clock === undefined ? {} : { clock: opts.clock }) });
    // Whatever fails from here on closes what was opened, so the process can exit (an open
    // MongoDB client or timer would keep a failed start alive).
    let app: App;
    try {
      app = new App(loaded, log, store, opts);
    } catch (err) {
      await store.close().catch(() => undefined);
      throw err;
    }
    try {
      await store.ensureIndexes();
      await app.suppressions.load();
      await app.instances.start();
      await app.#rebuildLostEvents();
    } catch (err) {
      await app.close();
      throw err;
    }
    return app;
  }

  /**
   * Before anything is sent (daemon and run-minute alike): a crash may have lost buffered events
   * of deliveries whose records say they were settled; write those events back. Analytics are not
   * worth a failed start: a failure is logged, and the next start checks the same range again.
   */
  async #rebuildLostEvents(): Promise<void> {
    const { config } = this.loaded;
    try {
      const r = await this.eventCheck.reconcile({ now: Date.now(), lookbackMs: config.send.catchUpLookbackHours * 3_600_000, batchSize: config.mongodb.batchSize });
      const fields = { from: r.from.toISOString(), checked: r.checked, rebuilt: r.rebuilt };
      if (r.rebuilt > 0) this.log.warn(fields, 'outcome events lost in a crash rebuilt from the delivery records');
      else this.log.info(fields, 'outcome events match the delivery records');
    } catch (err) {
      this.log.warn({ err }, 'could not check outcome events against the delivery records; will check again at the next start');
    }
  }

  /** Runs the daemon: full sync, the minute timer, the housekeeping crons. */
  async start(): Promise<void> {
    // Schedule from just after the checkpoint (the last minute fully handled, by any instance):
    // fires missed while down land in overdue buckets and go out first, or are recorded as
    // `missed` past the grace period. A first start schedules from the start of this minute.
    // The HTTP port first: a port in use fails the start at once, not after a long user sync
    // (`/readyz` says `synced: false` until the sync is done).
    const { http } = this.loaded.config;
    if (http.enabled) {
      this.#unsubscribe = new UnsubscribeHandler({ list: this.suppressions, secret: this.loaded.config.unsubscribe.secret, clock: this.clock, log: this.log.child({ part: 'unsubscribe' }) });
      this.#http = new HttpServer(
        {
          ready: () => this.#ready(),
          stats: () => this.stats(),
          metrics: async () => ({ contentType: this.metrics.contentType, body: await this.metrics.text() }),
          unsubscribe: this.#unsubscribe,
        },
        this.log.child({ part: 'http' }),
        { token: http.token },
      );
      this.httpPort = await this.#http.listen(http.host, http.port);
    }
    const now = this.clock.now();
    const plan = planCatchUp(await this.checkpoint.load(), now, this.catchUp.opts);
    this.catchUp.begin(now);
    this.#resumedAfter = epochMinute(plan.fromMs) - 1;
    if (plan.uncovered) await this.catchUp.recordUncovered(plan.uncovered);
    if (plan.minutes > 0) this.log.info({ since: new Date(plan.fromMs).toISOString(), minutes: plan.minutes }, 'catching up on fires missed while down');
    await this.sync.full(plan.fromMs);
    this.#synced = true;
    this.scheduler.start();
    this.checkpoint.start();
    // Suppressions made by other instances (their unsubscribe endpoint, their bounces) reach
    // this one's in-memory list with the same cadence as user changes.
    this.housekeeping.add('userSync', async () => (await Promise.all([this.sync.incremental(), this.suppressions.load()]))[0]);
    // From the start of this minute, so a slot due now is kept (one already sent is re-fired and
    // then skipped by its claim).
    this.housekeeping.add('fullSync', () => this.sync.full(Math.floor(this.clock.now() / MINUTE_MS) * MINUTE_MS));
    this.housekeeping.add('retention', () => this.retention.run(this.clock.now()));
    const summary = new DailySummary(() => this.#summaryCounters(), this.clock.now());
    this.housekeeping.add('dailySummary', async () => {
      this.log.info(summary.next(this.clock.now(), { users: this.registry.userCount, jobs: this.registry.size, analyticsBuffered: this.analytics.size, nextFire: this.#nextFireIso() }), 'daily summary');
    });
    // Broadcasts: a short poll of their own (config broadcasts.pollMs); the `broadcasts` entry of
    // schedules.json, when present, is a backstop.
    this.broadcasts.start();
    this.housekeeping.add('broadcasts', () => this.broadcasts.poll());
    this.log.info({ users: this.registry.userCount, jobs: this.registry.size, instance: this.instances.id }, 'mailwheel started');
  }

  /** Port the HTTP server listens on, once started (useful with port 0). */
  httpPort: number | undefined;

  /** Numbers for `/stats` and the log, read from the components. */
  stats(): Record<string, unknown> {
    const next = this.registry.nextFireMinute();
    return {
      instance: this.instances.id,
      users: this.registry.userCount,
      jobs: this.registry.size,
      nextFire: next === undefined ? null : new Date(next * MINUTE_MS).toISOString(),
      queue: { waiting: this.queue.waiting, inFlight: this.queue.inFlight, backlog: this.dispatcher.backlog, ratePerSecond: this.queue.ratePerSecond },
      breaker: this.queue.breaker,
      sends: { ...this.queue.stats },
      claims: { ...this.claims.stats },
      suppressions: { size: this.suppressions.size, ...this.#unsubscribe?.stats },
      analytics: { buffered: this.analytics.size, limit: this.analytics.limit, waiting: this.analytics.waiting, ...this.analytics.stats },
      lastSync: this.sync.lastReport ?? null,
      catchUp: { ...this.catchUp.stats, openDeliveries: this.ledger.open, checkpoint: minuteIso(this.checkpoint.saved) },
      housekeeping: this.housekeeping.stats(),
      broadcasts: { running: this.broadcasts.running(), ...this.broadcasts.stats },
    };
  }

  #nextFireIso(): string | null {
    return minuteIso(this.registry.nextFireMinute());
  }

  #summaryCounters(): SummaryCounters {
    return { events: this.analytics.byType, breakerOpens: this.queue.breaker.opens, slowdowns: this.queue.stats.slowdowns, analyticsWriteErrors: this.analytics.stats.writeErrors };
  }

  /** Ready: the first sync is done, MongoDB answers a ping, and the SMTP server answers. */
  async #ready(): Promise<ReadyReport> {
    const mongodb = this.store.ping().then(
      () => true,
      () => false,
    );
    const [mongoOk, smtpOk] = await Promise.all([mongodb, this.#smtpReachable()]);
    return { ok: this.#synced && mongoOk && smtpOk, synced: this.#synced, mongodb: mongoOk, smtp: smtpOk, breaker: this.queue.breaker.state };
  }

  /**
   * An open breaker means unreachable; otherwise an SMTP handshake (`verify`, which resolves
   * false on failure: its value is the answer, not the fact that it resolved), shared by
   * concurrent probes and cached so a probe every few seconds does not open a connection to the
   * provider each time: 30 s after a success, 5 s after a failure (a recovery shows soon).
   */
  #smtpReachable(): Promise<boolean> {
    if (this.queue.breaker.state === 'open') return Promise.resolve(false);
    const now = Date.now();
    const check = this.#smtpCheck;
    if (check === undefined || (check.result !== undefined && now - check.at > (check.result ? SMTP_CHECK_OK_MS : SMTP_CHECK_FAILED_MS))) {
      const next: SmtpCheck = { at: now, result: undefined, ok: Promise.resolve(false) };
      next.ok = this.transport.verify().then(
        (ok) => ok,
        () => false,
      );
      void next.ok.then((ok) => {
        next.result = ok;
        next.at = Date.now();
      });
      this.#smtpCheck = next;
    }
    return (this.#smtpCheck as SmtpCheck).ok;
  }

  /** Counters since this App was created, read while a `run-minute` runs (one minute per process). */
  minuteProgress(): MinuteProgress {
    const d = this.dispatcher.stats;
    const q = this.queue.stats;
    return {
      due: this.#minuteDue,
      users: this.registry.userCount,
      claimed: d.claimed,
      skipped: d.skipped,
      suppressed: d.suppressed,
      sent: q.sent,
      failed: q.failed,
      retried: q.retried,
      waiting: this.queue.waiting + this.dispatcher.backlog,
      inFlight: this.queue.inFlight,
      released: d.released,
      breaker: this.queue.breaker.state,
    };
  }

  /**
   * What `runMinute` would send, without claiming or sending anything (`run-minute --dry-run`):
   * the deliveries due, less suppressed addresses and keys already claimed. Reads only.
   */
  async planMinute(minuteStartMs: number): Promise<MinutePlan> {
    await this.sync.full(minuteStartMs);
    // Taken out of the registry without rescheduling: a dry run ends the process after this.
    const jobs = this.registry.takeDue(epochMinute(minuteStartMs));
    const keys: string[] = [];
    let suppressed = 0;
    for (const j of jobs) {
      if (this.suppressions.has(j.user.email)) suppressed++;
      else keys.push(scheduledKey(j.user.id, j.time, j.localDate));
    }
    // The same bounded lookup `plan` uses (index lookups, or one scan where that is cheaper).
    const alreadyClaimed = (await this.store.claimed.claimedKeys(keys)).size;
    const wouldSend = keys.length - alreadyClaimed;
    return { due: jobs.length, wouldSend, alreadyClaimed, suppressed, byTemplate: wouldSend > 0 ? [{ template: 'scheduled', kind: 'scheduled', count: wouldSend }] : [] };
  }

  /**
   * Sends what is due in one minute (claims respected) and waits for every outcome.
   * @returns the number of deliveries due, claimed, and skipped as already claimed.
   */
  async runMinute(minuteStartMs: number): Promise<MinuteReport> {
    const startedAt = Date.now();
    const t0 = performance.now();
    await this.sync.full(minuteStartMs);
    const synced = performance.now();
    const before = { ...this.dispatcher.stats };
    const sentBefore = { ...this.queue.stats };
    const due = await this.scheduler.runMinute(Math.floor(minuteStartMs / MINUTE_MS));
    const dispatched = performance.now();
    await this.dispatcher.idle();
    const ms = (n: number) => Math.round(n * 10) / 10;
    return {
      due,
      claimed: this.dispatcher.stats.claimed - before.claimed,
      skipped: this.dispatcher.stats.skipped - before.skipped,
      suppressed: this.dispatcher.stats.suppressed - before.suppressed,
      sent: this.queue.stats.sent - sentBefore.sent,
      failed: this.queue.stats.failed - sentBefore.failed,
      retried: this.queue.stats.retried - sentBefore.retried,
      timing: {
        startedAt,
        syncMs: ms(synced - t0),
        dispatchMs: ms(dispatched - synced),
        claimMs: ms(this.dispatcher.stats.claimMs - before.claimMs),
        claimWaitMs: ms(this.dispatcher.stats.claimWaitMs - before.claimWaitMs),
        totalMs: ms(performance.now() - t0),
      },
    };
  }

  async #fire(jobs: Job[], minute: number): Promise<void> {
    const deliveries: Delivery[] = jobs.map((j) => ({
      key: scheduledKey(j.user.id, j.time, j.localDate),
      kind: 'scheduled',
      userId: j.user.id,
      email: j.user.email,
      name: j.user.name,
      slot: j.time,
      localDate: j.localDate,
      timezone: j.user.timezone,
      dueAt: j.fireAt,
    }));
    // Every delivery of the minute is open in the ledger until it has an outcome; those that
    // never get one here (a stop released them, a crash) keep the checkpoint before this minute.
    this.#minuteDue = (this.#minuteDue ?? 0) + deliveries.length;
    this.ledger.begin(minute, deliveries.length);
    const { send, missed } = this.catchUp.split(deliveries);
    const r = await this.dispatcher.dispatch(send);
    this.ledger.settle(minute, r.skipped + r.suppressed);
    if (missed.length > 0) {
      await this.catchUp.recordMissed(missed);
      this.ledger.settle(minute, missed.length);
    }
  }

  /**
   * Graceful stop, in order: timers, intake, drain, analytics, SMTP, heartbeat, MongoDB.
   * Every step runs even if an earlier one fails. Idempotent.
   */
  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    const steps: Array<[string, () => Promise<unknown> | unknown]> = [
      ['housekeeping', () => this.housekeeping.close()],
      ['scheduler', () => void this.scheduler.stop()],
      // Before the dispatcher: a run hands back its queued messages and publishes its counters.
      ['broadcasts', () => this.broadcasts.stop()],
      ['dispatcher', () => this.dispatcher.stop()],
      ['scheduler drain', () => this.scheduler.stop()],
      // After the dispatcher: deliveries it released stay open, so the saved minute stays before them.
      ['checkpoint', () => this.checkpoint.close()],
      ['analytics', async () => {
        await this.analytics.close(this.loaded.config.send.drainTimeoutMs);
        // Everything settled so far has its event: the next start need not look before now.
        await this.eventCheck.markChecked(new Date());
      }],
      ['smtp', () => this.transport.close()],
      ['instance', () => this.instances.stop()],
      ['mongodb', () => this.store.close()],
      ['http', () => this.#http?.close()],
    ];
    for (const [name, step] of steps) {
      try {
        await step();
      } catch (err) {
        this.log.error({ err, step: name }, 'shutdown step failed');
      }
    }
    this.log.info('mailwheel stopped');
  }
}

function minuteIso(minute: number | undefined): string | null {
  return minute === undefined ? null : new Date(minute * MINUTE_MS).toISOString();
}
