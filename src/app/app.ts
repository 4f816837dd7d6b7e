/**
 * The composition root: builds every part from the config, wires them together, and owns the
 * order in which they stop. Nothing else in the program constructs adapters.
 */
import type { Logger } from 'pino';
import cron, { type ScheduledTask } from 'node-cron';
import type { LoadedConfig } from '../config/load.js';
import { AnalyticsBuffer } from '../analytics/buffer.js';
import { MongoClaimStore } from '../adapters/mongo/claim-store.js';
import { MongoEventSink } from '../adapters/mongo/event-sink.js';
import { InstanceRegistry } from '../adapters/mongo/instance-registry.js';
import { MongoStore } from '../adapters/mongo/store.js';
import { MongoUserSource } from '../adapters/mongo/user-source.js';
import { NodemailerTransport } from '../adapters/smtp/nodemailer-transport.js';
import { SendQueue } from '../adapters/smtp/send-queue.js';
import { Dispatcher } from '../core/dispatcher.js';
import { JobRegistry, type Job } from '../core/job-registry.js';
import { MinuteScheduler } from '../core/minute-scheduler.js';
import { OutcomeRecorder } from '../core/outcome-recorder.js';
import { UserSync } from '../core/user-sync.js';
import { scheduledKey } from '../core/delivery-key.js';
import { HttpServer } from '../http/server.js';
import { UnsubscribeHandler } from '../http/unsubscribe.js';
import { MongoSuppressionStore } from '../adapters/mongo/suppression-store.js';
import { isHardBounce } from '../adapters/smtp/classify.js';
import { SuppressionList } from '../core/suppression-list.js';
import { unsubscribeHeaders } from '../core/unsubscribe-token.js';
import { systemClock, type Clock, type Delivery } from '../ports/index.js';

const MINUTE_MS = 60_000;

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
}

export interface AppOptions {
  clock?: Clock;
}

export class App {
  readonly loaded: LoadedConfig;
  readonly log: Logger;
  readonly clock: Clock;
  readonly store: MongoStore;
  readonly instances: InstanceRegistry;
  readonly analytics: AnalyticsBuffer;
  readonly claims: MongoClaimStore;
  readonly transport: NodemailerTransport;
  readonly queue: SendQueue;
  readonly recorder: OutcomeRecorder;
  readonly dispatcher: Dispatcher;
  readonly registry = new JobRegistry();
  readonly suppressions: SuppressionList;
  readonly sync: UserSync;
  readonly scheduler: MinuteScheduler;
  #cronTasks: ScheduledTask[] = [];
  #http: HttpServer | undefined;
  #unsubscribe: UnsubscribeHandler | undefined;
  #synced = false;
  #closed: Promise<void> | undefined;

  private constructor(loaded: LoadedConfig, log: Logger, store: MongoStore, opts: AppOptions) {
    const { config } = loaded;
    this.loaded = loaded;
    this.log = log;
    this.clock = opts.clock ?? systemClock;
    this.store = store;
    this.instances = new InstanceRegistry(store.instances, config.send.claimStaleMs, log);
    this.analytics = new AnalyticsBuffer(new MongoEventSink(store.events), config.analytics, log.child({ part: 'analytics' }));
    this.claims = new MongoClaimStore(store.deliveries, this.instances);
    this.suppressions = new SuppressionList(new MongoSuppressionStore(store.suppressions, { batchSize: config.mongodb.batchSize }), {
      hardBounceLimit: config.send.hardBounceLimit,
    });
    this.transport = new NodemailerTransport(config, {
      headersFor: (d) => unsubscribeHeaders({ userId: d.userId, email: d.email }, config.unsubscribe, this.clock.now()),
    });
    this.recorder = new OutcomeRecorder(this.claims, this.analytics, { batchSize: 500, intervalMs: 250 }, log, {
      isHardBounce,
      recordHardBounce: (email, detail, userId) => this.suppressions.recordHardBounce(email, detail, userId),
    });
    this.queue = new SendQueue(
      this.transport,
      {
        concurrency: config.smtp.poolSize,
        rate: config.rate,
        maxAttempts: config.send.maxAttempts,
        backoffBaseMs: config.send.backoffBaseMs,
        backoffMaxMs: config.send.backoffMaxMs,
        breakerThreshold: config.send.breakerThreshold,
        breakerProbeMaxMs: config.send.breakerProbeMaxMs,
        slowdownCooldownMs: config.send.slowdownCooldownMs,
      },
      this.recorder.hooks,
      log.child({ part: 'send' }),
    );
    this.dispatcher = new Dispatcher(
      { claims: this.claims, queue: this.queue, recorder: this.recorder, events: this.analytics, isSuppressed: (email) => this.suppressions.has(email) },
      { claimBatch: 1000, maxQueued: Math.max(200, config.smtp.poolSize * 20), drainTimeoutMs: config.send.drainTimeoutMs, spreadMs: config.send.spreadSeconds * 1000 },
      log.child({ part: 'dispatch' }),
    );
    this.sync = new UserSync(
      { source: new MongoUserSource(store.users, config), registry: this.registry, events: this.analytics, clock: this.clock },
      config.users.fields,
      log.child({ part: 'sync' }),
    );
    this.scheduler = new MinuteScheduler({
      registry: this.registry,
      clock: this.clock,
      onDue: (jobs) => this.#fire(jobs),
      onError: (err, minute) => log.error({ err, minute }, 'minute failed'),
    });
  }

  /** Connects to MongoDB and registers this instance; nothing is sent yet. */
  static async create(loaded: LoadedConfig, log: Logger, opts: AppOptions = {}): Promise<App> {
    const store = await MongoStore.connect(loaded.config);
    const app = new App(loaded, log, store, opts);
    try {
      await store.ensureIndexes();
      await app.suppressions.load();
      await app.instances.start();
    } catch (err) {
      await store.close().catch(() => undefined);
      throw err;
    }
    return app;
  }

  /** Runs the daemon: full sync, the minute timer, the housekeeping crons. */
  async start(): Promise<void> {
    // Schedule from the start of this minute so a slot due now is not pushed to tomorrow.
    const now = this.clock.now();
    await this.sync.full(Math.floor(now / MINUTE_MS) * MINUTE_MS);
    this.#synced = true;
    this.scheduler.start();
    const { http } = this.loaded.config;
    if (http.enabled) {
      this.#unsubscribe = new UnsubscribeHandler({ list: this.suppressions, secret: this.loaded.config.unsubscribe.secret, clock: this.clock, log: this.log.child({ part: 'unsubscribe' }) });
      this.#http = new HttpServer({ ready: () => this.#ready(), stats: () => this.stats(), unsubscribe: this.#unsubscribe }, this.log.child({ part: 'http' }));
      this.httpPort = await this.#http.listen(http.host, http.port);
    }
    const { userSync } = this.loaded.schedules;
    this.#cronTasks.push(
      cron.schedule(
        userSync.cron,
        // Suppressions made by other instances (their unsubscribe endpoint, their bounces) reach
        // this one's in-memory list with the same cadence as user changes.
        () => void Promise.all([this.sync.incremental(), this.suppressions.load()]).catch((err: unknown) => this.log.error({ err }, 'incremental sync failed')),
        { timezone: userSync.timezone, name: 'userSync', noOverlap: true },
      ),
    );
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
      queue: { waiting: this.queue.waiting, inFlight: this.queue.inFlight, backlog: this.dispatcher.backlog, slowLevel: this.queue.slowLevel },
      breaker: this.queue.breaker,
      sends: { ...this.queue.stats },
      claims: { ...this.claims.stats },
      suppressions: { size: this.suppressions.size, ...this.#unsubscribe?.stats },
      analytics: { buffered: this.analytics.size, ...this.analytics.stats },
      lastSync: this.sync.lastReport ?? null,
    };
  }

  async #ready(): Promise<boolean> {
    if (!this.#synced) return false;
    try {
      await this.store.db.command({ ping: 1 });
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Sends what is due in one minute (claims respected) and waits for every outcome.
   * @returns the number of deliveries due, claimed, and skipped as already claimed.
   */
  async runMinute(minuteStartMs: number): Promise<MinuteReport> {
    await this.sync.full(minuteStartMs);
    const before = { ...this.dispatcher.stats };
    const sentBefore = { ...this.queue.stats };
    const due = await this.scheduler.runMinute(Math.floor(minuteStartMs / MINUTE_MS));
    await this.dispatcher.idle();
    return {
      due,
      claimed: this.dispatcher.stats.claimed - before.claimed,
      skipped: this.dispatcher.stats.skipped - before.skipped,
      suppressed: this.dispatcher.stats.suppressed - before.suppressed,
      sent: this.queue.stats.sent - sentBefore.sent,
      failed: this.queue.stats.failed - sentBefore.failed,
      retried: this.queue.stats.retried - sentBefore.retried,
    };
  }

  async #fire(jobs: Job[]): Promise<void> {
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
    await this.dispatcher.dispatch(deliveries);
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
      ['cron', () => Promise.all(this.#cronTasks.map((t) => t.destroy()))],
      ['scheduler', () => void this.scheduler.stop()],
      ['dispatcher', () => this.dispatcher.stop()],
      ['scheduler drain', () => this.scheduler.stop()],
      ['analytics', () => this.analytics.close(this.loaded.config.send.drainTimeoutMs)],
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
