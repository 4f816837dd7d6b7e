/**
 * The composition root: builds every part from the config, wires them together, and owns the
 * order in which they stop. It only wires: the scheduled path lives in core (scheduled-minute.ts,
 * outcome-router.ts), `run-minute` in minute-run.ts, `/stats` in stats.ts, `/readyz` in
 * readiness.ts. Stores come from the one factory (stores.ts, which the CLI uses too); the SMTP
 * transport is built in one block of the constructor. Outside app/, nothing constructs an adapter.
 */
import type { Logger } from 'pino';
import type { LoadedConfig } from '../config/load.js';
import { feedAheadOf, maxQueuedOf } from '../config/schema.js';
import { AnalyticsBuffer } from '../analytics/buffer.js';
import { isHardBounce } from '../adapters/smtp/classify.js';
import { NodemailerTransport } from '../adapters/smtp/nodemailer-transport.js';
import { SharedWindows } from '../adapters/redis/shared-windows.js';
import { buildSendPath } from '../adapters/smtp/destination-queues.js';
import { messageSigner, type MessageSigner } from '../adapters/smtp/dkim-pool.js';
import { mergeRelayStatus, type RelayStatus } from '../adapters/smtp/relay-set.js';
import type { SendPath } from '../adapters/smtp/send-options.js';
import { CatchUp, MinuteLedger } from '../core/catch-up.js';
import { Checkpoint } from '../core/checkpoint.js';
import { Dispatcher } from '../core/dispatcher.js';
import { JobRegistry } from '../core/job-registry.js';
import { MinuteScheduler } from '../core/minute-scheduler.js';
import { OutcomeRecorder } from '../core/outcome-recorder.js';
import { PartitionSync } from '../core/partition-sync.js';
import { routeOutcomes } from '../core/outcome-router.js';
import { ScheduledMinute } from '../core/scheduled-minute.js';
import { SuppressionList } from '../core/suppression-list.js';
import { HOUR_MS, SECOND_MS } from '../core/time.js';
import { unsubscribeHeaders } from '../core/unsubscribe-token.js';
import { UserSync } from '../core/user-sync.js';
import type { HttpServer } from '../http/server.js';
import type { UnsubscribeHandler } from '../http/unsubscribe.js';
import { Metrics } from '../metrics/metrics.js';
import { registerReadinessGauges } from '../metrics/readiness-gauges.js';
import { systemClock, type Clock } from '../ports/index.js';
import type { BudgetView, ClusterMember } from '../ports/cluster.js';
import { BroadcastSupervisor } from '../core/broadcast-supervisor.js';
import { Housekeeping } from './housekeeping.js';
import { buildFeedback, feedbackReportCounts, startInbound, type FeedbackParts } from './feedback.js';
import { DaySends, feedbackRateReader } from './feedback-rates.js';
import { buildHttp, closeInOrder, rebuildLostEvents, restoredRateUsage, startDaemon } from './lifecycle.js';
import type { WindowUsage } from '../core/rate-windows.js';
import type { Delivery } from '../core/types.js';
import { minuteProgress, planMinute, runMinute, type MinutePlan, type MinuteProgress, type MinuteReport } from './minute-run.js';
import { openCluster, type Cluster } from './cluster.js';
import { Readiness } from './readiness.js';
import { appStats, clusterStats, type ClusterStats } from './stats.js';
import { RecentFailures, tapFailures } from '../status/recent-failures.js';
import { FiredMinutes } from '../status/send-curve.js';
import { StatusSource } from '../status/status-source.js';
import { openMongoStores, type MongoStores } from './stores.js';

export type { MinutePlan, MinuteProgress, MinuteReport, MinuteTiming } from './minute-run.js';

export interface AppOptions {
  clock?: Clock;
  /** Plans only (`run-minute --dry-run`): nothing is sent, so the rate windows are not counted at start. */
  planOnly?: boolean;
  /** Tests: this cluster member instead of the one `cluster.*` builds (a fake of the port). */
  member?: ClusterMember;
}

export class App {
  readonly loaded: LoadedConfig;
  readonly log: Logger;
  readonly clock: Clock;
  /** Every store, opened once by the factory (app/stores.ts). */
  readonly store: MongoStores;
  readonly instances: MongoStores['instances'];
  readonly claims: MongoStores['claims'];
  /** Rebuilds, at start, the outcome events a crash lost, from the delivery records. */
  readonly eventCheck: MongoStores['eventCheck'];
  readonly retention: MongoStores['retention'];
  readonly transport: NodemailerTransport;
  /** DKIM signing for every transport (a no-op without `dkim`), closed after them. */
  readonly signer: MessageSigner;
  readonly analytics: AnalyticsBuffer;
  /** One SendQueue, or one per destination group behind a façade (`destinations.groups`). */
  readonly queue: SendPath;
  readonly recorder: OutcomeRecorder;
  readonly dispatcher: Dispatcher;
  readonly registry = new JobRegistry();
  readonly suppressions: SuppressionList;
  readonly sync: UserSync;
  readonly scheduler: MinuteScheduler;
  /** One due minute of scheduled mail: deliveries, catch-up split, dispatch, ledger. */
  readonly scheduled: ScheduledMinute;
  /** Prometheus metrics read from the components (`/metrics`). */
  readonly metrics: Metrics;
  /** The cron jobs of config/schedules.json; others add theirs with `housekeeping.add()`. */
  readonly housekeeping: Housekeeping;
  /** Start-up backfill of fires missed while down: send within the grace period, else `missed`. */
  readonly catchUp: CatchUp;
  /** Scheduled deliveries without an outcome, per due minute (what the checkpoint waits for). */
  readonly ledger = new MinuteLedger();
  readonly checkpoint: Checkpoint;
  /** Runs broadcasts (`mailwheel broadcast send`): pickup, lease, batches, pause/cancel. */
  readonly broadcasts: BroadcastSupervisor;
  readonly readiness: Readiness;
  /** Redis (when configured) and this instance's share of the partitions (app/cluster.ts). */
  readonly cluster: Cluster;
  /** Partitioned mode: loads and drops partitions' users as they move, writes their marks. */
  readonly partitions: PartitionSync | undefined;
  /** Bounces and complaints: the sink, the refusal counter, the counts, the webhooks and the inbound listener (app/feedback.ts). */
  readonly feedback: FeedbackParts;
  /** The last failed sends and retries, with their SMTP replies (addresses masked), for the status page. */
  readonly failures = new RecentFailures();
  /** Jobs the scheduler fired per recent minute: the status curve's already-claimed part. */
  readonly fired = new FiredMinutes();
  /** The read-only status page's data and curve (`/status`, src/status). */
  readonly status: StatusSource;
  /** Port the inbound DSN/ARF listener listens on, once started (feedback.inbound.enabled). */
  inboundPort: number | undefined;
  /** Port the HTTP server listens on, once started (useful with port 0). */
  httpPort: number | undefined;
  /** The minute before the start-up schedule begins: everything up to it is handled or recorded. */
  resumedAfter: number | undefined;
  /** True once the daemon's first full user sync is done (`/readyz`). */
  synced = false;
  #http: HttpServer | undefined;
  /** The destination groups' own transports (their pools to the same relays), for the relay views. */
  readonly #groupTransports: NodemailerTransport[] = [];
  #unsubscribe: UnsubscribeHandler | undefined;
  #closed: Promise<void> | undefined;

  /** @param used sends already made in the rate windows (restoredRateUsage), the send queue's start */
  private constructor(loaded: LoadedConfig, log: Logger, store: MongoStores, opts: AppOptions, used: WindowUsage) {
    const { config } = loaded;
    const clock = (this.clock = opts.clock ?? systemClock);
    this.loaded = loaded;
    this.log = log;
    this.store = store;
    // ---- Adapters: the stores come from the factory (app/stores.ts); the SMTP transport is built here. ----
    this.instances = store.instances;
    this.claims = store.claims;
    this.eventCheck = store.eventCheck;
    this.retention = store.retention;
    const cluster = openCluster(config, this.instances.id, clock, log);
    this.cluster = opts.member === undefined ? cluster : { ...cluster, member: opts.member };
    const { events: eventSink, suppressions: suppressionStore, users: userSource, checkpoint: checkpointStore, broadcasts: broadcastStore, recipients } = store;
    const transportOptions = {
      headersFor: (d: Delivery) => unsubscribeHeaders({ userId: d.userId, email: d.email }, config.unsubscribe, clock.now()),
      clock,
      log: log.child({ part: 'relays' }),
      // One signer (worker threads) for every transport of the process.
      signer: (this.signer = messageSigner(loaded.dkim)),
    };
    this.transport = new NodemailerTransport(config, transportOptions);
    // Each destination group's own pools (destination-queues.ts): a 421 closes only its connections.
    // Every relay gets at most the group's connections (relays sized null get exactly that).
    const transportFor = (poolSize: number): NodemailerTransport => {
      const relays = config.smtp.relays.map((r) => ({ ...r, poolSize: Math.min(r.poolSize ?? poolSize, poolSize) }));
      const t = new NodemailerTransport({ ...config, smtp: { ...config.smtp, poolSize, relays } }, transportOptions);
      this.#groupTransports.push(t);
      return t;
    };
    // ---- End of adapters. ----
    // Sources are read at scrape time, so the metrics can exist before the parts they read.
    this.metrics = new Metrics({
      queue: () => this.queue,
      dispatcher: () => this.dispatcher,
      registry: () => ({ jobs: this.registry.size, users: this.registry.userCount, nextFireMinute: this.registry.nextFireMinute() }),
      analytics: () => this.analytics,
      scheduler: () => ({ lastProcessedMinute: this.scheduler.lastProcessedMinute, checkpointMinute: this.checkpoint.saved }),
      cluster: () => ({ member: this.cluster.member, budget: this.budget, redisUp: this.cluster.redis?.up }),
    });
    this.analytics = new AnalyticsBuffer(eventSink, config.analytics, log.child({ part: 'analytics' }), { onFlush: (r) => this.metrics.observeFlush(r), clock });
    this.suppressions = new SuppressionList(suppressionStore, { hardBounceLimit: config.send.hardBounceLimit });
    this.feedback = buildFeedback({ loaded, store, suppressions: this.suppressions, events: this.analytics, clock, log });
    this.recorder = new OutcomeRecorder(this.claims, this.analytics, { batchSize: config.send.recordBatch, intervalMs: config.send.recordFlushMs, clock }, log, {
      isHardBounce,
      recordHardBounce: (email, detail, userId) => this.suppressions.recordHardBounce(email, detail, userId),
    });
    const routed = routeOutcomes(this.recorder.hooks, { ledger: this.ledger, broadcast: (o) => this.broadcasts.onOutcome(o) });
    // With Redis, the rate windows are every instance's (a send holds its place in the shared
    // second at most one connection + socket timeout: a crashed instance's places free after it).
    const { redis } = this.cluster;
    const shared = redis
      ? new SharedWindows({ redis, rate: config.rate, sent: store.sent, log: log.child({ part: 'budget' }), sendTimeoutMs: config.smtp.connectionTimeoutMs + config.smtp.socketTimeoutMs, clock, self: this.instances.id })
      : undefined;
    this.queue = buildSendPath(config, this.transport, tapFailures(this.metrics.wrapSendHooks(routed), this.failures, clock), log.child({ part: 'send' }), { used, transportFor, ...(shared ? { shared } : {}) });
    this.dispatcher = new Dispatcher(
      { claims: this.claims, queue: this.queue, recorder: this.recorder, events: this.analytics, isSuppressed: (email) => this.suppressions.has(email, 'scheduled') },
      { claimBatch: config.send.claimBatch, maxQueued: maxQueuedOf(config), drainTimeoutMs: config.send.drainTimeoutMs, spreadMs: config.send.spreadSeconds * SECOND_MS },
      log.child({ part: 'dispatch' }),
    );
    this.sync = new UserSync({ source: userSource, registry: this.registry, events: this.analytics, clock }, config.users.fields, log.child({ part: 'sync' }), { incrementalMaxShare: config.users.incrementalMaxShare });
    const catchUpOpts = { graceMs: config.send.catchUpGraceMs, lookbackMs: config.send.catchUpLookbackHours * HOUR_MS };
    this.catchUp = new CatchUp({ claims: this.claims, events: this.analytics, clock }, catchUpOpts, log.child({ part: 'catch-up' }));
    this.scheduled = new ScheduledMinute({ dispatcher: this.dispatcher, catchUp: this.catchUp, ledger: this.ledger });
    this.scheduler = new MinuteScheduler({
      registry: this.registry,
      clock,
      onDue: (jobs, minute) => {
        this.fired.note(minute, jobs.length);
        return this.scheduled.fire(jobs, minute);
      },
      onError: (err, minute) => log.error({ err, minute }, 'minute failed'),
    });
    const processed = () => this.scheduler.lastProcessedMinute ?? this.resumedAfter;
    this.partitions =
      this.cluster.member.mode === 'solo'
        ? undefined
        : new PartitionSync(
            {
              member: this.cluster.member,
              marks: store.partitionMarks,
              sync: this.sync,
              catchUp: this.catchUp,
              ledger: this.ledger,
              processed,
              globalCheckpoint: () => checkpointStore.load(),
              wake: () => this.scheduler.wake(),
              // A dead owner's unfinished claims are taken over once its heartbeat is stale.
              secondLookMs: config.send.claimStaleMs + 5 * SECOND_MS,
              clock,
            },
            log.child({ part: 'partitions' }),
          );
    const partitions = this.partitions;
    this.checkpoint = new Checkpoint({ store: checkpointStore, ledger: this.ledger, processed, clock, ...(partitions === undefined ? {} : { partitions }) }, {}, log.child({ part: 'checkpoint' }));
    this.housekeeping = new Housekeeping(loaded.schedules, log.child({ part: 'housekeeping' }), {
      onRun: (job, ok, atMs) => this.metrics.observeHousekeeping(job, ok, atMs),
      clock,
    });
    this.readiness = new Readiness(
      {
        synced: () => this.synced,
        pingMongo: () => store.ping(),
        verifySmtp: () => this.transport.checkRelays(),
        breaker: () => this.queue.breaker.state,
        // Fails at once while disconnected (no offline queue): `/readyz` names `redis`.
        ...(redis ? { pingRedis: () => redis.client.ping() } : {}),
        clock,
      },
      config.http,
    );
    registerReadinessGauges(this.metrics.registry, () => this.readiness.check(), { clock });
    this.broadcasts = new BroadcastSupervisor(
      {
        store: broadcastStore,
        recipients,
        instance: { id: this.instances.id, isAlive: (owner) => this.instances.isAlive(owner) },
        claims: this.claims,
        queue: this.queue,
        recorder: this.recorder,
        events: this.analytics,
        isSuppressed: (email) => this.suppressions.has(email, 'broadcast'),
        fields: config.users.fields,
        clock: this.clock,
      },
      // Half the dispatcher's queue bound by default: a broadcast never fills the queue ahead of scheduled mail.
      { ...config.broadcasts, feedAhead: feedAheadOf(config), drainTimeoutMs: config.send.drainTimeoutMs, quietHours: config.quietHours.broadcasts },
      log.child({ part: 'broadcast' }),
    );
    this.metrics.setRelaySource(() => this.relayStatus());
    this.metrics.setBroadcastSource(() =>
      this.broadcasts.running().map((b) => ({ id: b.id, state: 'running', targeted: b.processed, sent: b.sent, failed: b.failed, skipped: b.skipped + b.suppressed })),
    );
    const { sink, refusals } = this.feedback;
    const daySends = new DaySends({ sent: store.sent, localSent: () => this.queue.stats.sent, clock });
    const rates = feedbackRateReader({ counts: this.feedback.counts, broadcasts: store.broadcasts, daySends, clock });
    this.metrics.setFeedbackSource({
      reports: () => feedbackReportCounts(sink.stats.reports),
      refusals: () => refusals.counts(),
      rates,
    });
    this.status = new StatusSource({
      clock,
      instance: this.instances.id,
      rate: config.rate,
      registry: this.registry,
      fired: this.fired,
      queue: this.queue,
      backlog: () => this.dispatcher.backlog,
      relays: () => this.relayStatus(),
      running: () => this.broadcasts.running(),
      openBroadcasts: () => store.broadcasts.open(),
      failures: this.failures,
      feedbackRates: rates,
      cluster: () => this.clusterStats(),
    });
  }

  /** Connects to MongoDB and registers this instance; nothing is sent yet. */
  static async create(loaded: LoadedConfig, log: Logger, opts: AppOptions = {}): Promise<App> {
    const store = await openMongoStores(loaded.config, { log, ...(opts.clock === undefined ? {} : { clock: opts.clock }) });
    // Whatever fails from here on closes what was opened, so the process can exit (an open
    // MongoDB client or timer would keep a failed start alive).
    let app: App;
    try {
      // Counted before the send queue exists: a restart starts each window with what is left.
      const shared = loaded.config.cluster.redisUrl !== null;
      const used = opts.planOnly === true ? {} : await restoredRateUsage(store.sent, loaded.config.rate, opts.clock ?? systemClock, log, shared);
      app = new App(loaded, log, store, opts, used);
    } catch (err) {
      await store.close().catch(() => undefined);
      throw err;
    }
    try {
      await store.ensureIndexes();
      await app.suppressions.load();
      await app.instances.start();
      await rebuildLostEvents(app);
    } catch (err) {
      await app.close();
      throw err;
    }
    return app;
  }

  /** Runs the daemon: HTTP first, the catch-up plan, full sync, the minute timer, the crons. */
  async start(): Promise<void> {
    const { http } = this.loaded.config;
    if (http.enabled) {
      ({ server: this.#http, unsubscribe: this.#unsubscribe } = buildHttp(this));
      this.httpPort = await this.#http.listen(http.host, http.port);
    }
    // After the HTTP port (the same fail-fast reasoning), before the long user sync.
    this.inboundPort = await startInbound(this.feedback, this.loaded.config, this.log);
    await startDaemon(this);
  }

  /** The rate windows' use: this process's, or the budget every instance shares (Redis). */
  get budget(): BudgetView {
    return this.queue.budget;
  }

  /** Every relay with its health and counts, over the main pools and the destination groups' own. */
  relayStatus(): RelayStatus[] {
    return mergeRelayStatus([this.transport, ...this.#groupTransports].map((t) => t.relays()));
  }

  /** Numbers for `/stats` and the log, read from the components. */
  stats(): Record<string, unknown> {
    const { sink, refusals } = this.feedback;
    return appStats(this, this.#unsubscribe?.stats, { ...sink.stats, refused: refusals.counts() });
  }

  /** The cluster half of `/stats`: the partition table and the rate windows' use (async ports; bounded wait). */
  clusterStats(): Promise<ClusterStats> {
    return clusterStats(this);
  }

  /** Counters since this App was created, read while a `run-minute` runs (one minute per process). */
  minuteProgress(): MinuteProgress {
    return minuteProgress(this);
  }

  /** What `runMinute` would send, without claiming or sending anything (`run-minute --dry-run`). */
  planMinute(minuteStartMs: number): Promise<MinutePlan> {
    return planMinute(this, minuteStartMs);
  }

  /** Sends what is due in one minute (claims respected) and waits for every outcome. */
  runMinute(minuteStartMs: number): Promise<MinuteReport> {
    return runMinute(this, minuteStartMs);
  }

  /** Graceful stop in order (lifecycle.ts); every step runs even if an earlier one fails. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= closeInOrder(this, this.#http);
    return this.#closed;
  }
}
