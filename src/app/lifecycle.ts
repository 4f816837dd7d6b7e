/**
 * The daemon's life, in order: the start-up check of events lost in a crash, the HTTP server, the
 * start (catch-up plan, full sync, minute timer, checkpoint, crons, broadcasts) and the graceful
 * stop. Kept apart from the composition root, which builds the parts; this module only sequences
 * them, with the reasons for each order written next to it.
 */
import type { Logger } from 'pino';
import type { Stores } from './stores.js';
import type { NodemailerTransport } from '../adapters/smtp/nodemailer-transport.js';
import type { SendPath } from '../adapters/smtp/send-options.js';
import type { AnalyticsBuffer } from '../analytics/buffer.js';
import type { LoadedConfig } from '../config/load.js';
import { planCatchUp, type CatchUp } from '../core/catch-up.js';
import type { Checkpoint } from '../core/checkpoint.js';
import type { PartitionSync } from '../core/partition-sync.js';
import type { Dispatcher } from '../core/dispatcher.js';
import type { JobRegistry } from '../core/job-registry.js';
import type { MinuteScheduler } from '../core/minute-scheduler.js';
import type { SuppressionList } from '../core/suppression-list.js';
import { HOUR_MS, epochMinute, minuteIso, minuteStart } from '../core/time.js';
import type { UserSync } from '../core/user-sync.js';
import { HttpServer } from '../http/server.js';
import type { StatusPage } from '../http/status-routes.js';
import { UnsubscribeHandler } from '../http/unsubscribe.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Clock } from '../ports/index.js';
import type { EventReconciler, InstanceRegistration, Retention, SentCounter } from '../ports/stores.js';
import { configuredWindows, tokensLeft, type WindowUsage } from '../core/rate-windows.js';
import type { BroadcastSupervisor } from '../core/broadcast-supervisor.js';
import { DailySummary } from './daily-summary.js';
import type { Housekeeping } from './housekeeping.js';
import type { Cluster } from './cluster.js';
import type { Readiness } from './readiness.js';
import type { FeedbackParts } from './feedback.js';

/** The parts the daemon's start and stop sequence (the App itself). */
export interface LifecycleParts {
  readonly loaded: LoadedConfig;
  readonly log: Logger;
  readonly clock: Clock;
  readonly store: Pick<Stores, 'close'>;
  readonly instances: InstanceRegistration;
  readonly eventCheck: EventReconciler;
  readonly retention: Retention;
  readonly transport: NodemailerTransport;
  readonly signer: { close(): Promise<void> };
  readonly analytics: AnalyticsBuffer;
  readonly queue: SendPath;
  readonly dispatcher: Dispatcher;
  readonly registry: JobRegistry;
  readonly suppressions: SuppressionList;
  readonly sync: UserSync;
  readonly scheduler: MinuteScheduler;
  readonly catchUp: CatchUp;
  readonly checkpoint: Checkpoint;
  readonly housekeeping: Housekeeping;
  readonly broadcasts: BroadcastSupervisor;
  readonly cluster: Cluster;
  /** Partitioned mode only: partition moves and marks. */
  readonly partitions: PartitionSync | undefined;
  /** The inbound listener is stopped first on shutdown. */
  readonly feedback: Pick<FeedbackParts, 'inbound' | 'sink'>;
  /** Set by the start: the minute before the start-up schedule begins. */
  resumedAfter: number | undefined;
  /** Set by the start once the first full user sync is done. */
  synced: boolean;
}

/**
 * Before anything is sent (daemon and run-minute alike): a crash may have lost buffered events
 * of deliveries whose records say they were settled; write those events back. Analytics are not
 * worth a failed start: a failure is logged, and the next start checks the same range again.
 */
export async function rebuildLostEvents(app: LifecycleParts): Promise<void> {
  const { config } = app.loaded;
  try {
    const r = await app.eventCheck.reconcile({ now: app.clock.now(), lookbackMs: config.send.catchUpLookbackHours * HOUR_MS, batchSize: config.mongodb.batchSize });
    const fields = { from: r.from.toISOString(), checked: r.checked, rebuilt: r.rebuilt };
    if (r.rebuilt > 0) app.log.warn(fields, 'outcome events lost in a crash rebuilt from the delivery records');
    else app.log.info(fields, 'outcome events match the delivery records');
  } catch (err) {
    app.log.warn({ err }, 'could not check outcome events against the delivery records; will check again at the next start');
  }
}

/**
 * Before anything is sent (daemon and run-minute alike, before the send queue is built): the
 * sends every instance recorded in the configured minute, hour and day windows, so a restart does
 * not hand out a fresh budget (core/rate-windows.ts). One read, and none when no such window is
 * configured. Logs one line with each window's limit, what was used and what is left. With a
 * shared budget (`shared`: cluster.redisUrl set) nothing is restored locally.
 */
export async function restoredRateUsage(sent: SentCounter, rate: LoadedConfig['config']['rate'], clock: Clock, log: Logger, shared = false): Promise<WindowUsage> {
  const windows = configuredWindows(rate);
  if (windows.length === 0) return {};
  if (shared) {
    // The windows are in Redis and outlive this instance's restart; a Redis that lost them is
    // re-seeded from the same records (adapters/redis/shared-windows.ts). Nothing to restore here.
    log.info('rate windows are shared in redis (cluster.redisUrl): not restored into this process');
    return {};
  }
  const started = clock.monotonic();
  const counts = await sent.countSent(clock.now(), windows.map((w) => w.ms));
  const used: WindowUsage = {};
  const fields: Record<string, { limit: number; used: number; left: number }> = {};
  windows.forEach((w, i) => {
    const n = counts[i] ?? 0;
    used[w.name] = n;
    fields[w.name] = { limit: w.limit, used: n, left: tokensLeft(w.limit, n) };
  });
  log.info({ ...fields, ms: Math.round(clock.monotonic() - started) }, 'rate windows restored from the delivery records (sends in each window count against it)');
  return used;
}

/** What the HTTP server serves (the App itself). */
export interface HttpParts {
  readonly loaded: LoadedConfig;
  readonly log: Logger;
  readonly clock: Clock;
  readonly suppressions: SuppressionList;
  readonly readiness: Readiness;
  readonly metrics: Metrics;
  /** The provider webhooks, served under `/webhooks/` when configured. */
  readonly feedback: Pick<FeedbackParts, 'webhooks'>;
  stats(): Record<string, unknown>;
  /** The cluster half of `/stats` (app/stats.ts clusterStats), merged into it. */
  clusterStats(): Promise<object>;
  /** The read-only status page's data and curve (src/status). */
  readonly status: StatusPage;
}

/**
 * The HTTP server (`/healthz`, `/readyz`, `/stats`, `/metrics`, `/unsubscribe`, `/status`), not yet
 * listening. The daemon listens before anything else: a port in use fails the start at once, not
 * after a long user sync (`/readyz` says `synced: false` until the sync is done).
 */
export function buildHttp(app: HttpParts): { server: HttpServer; unsubscribe: UnsubscribeHandler } {
  const { http, unsubscribe: unsub } = app.loaded.config;
  const unsubscribe = new UnsubscribeHandler({ list: app.suppressions, secret: unsub.secret, clock: app.clock, log: app.log.child({ part: 'unsubscribe' }) });
  const server = new HttpServer(
    {
      ready: () => app.readiness.check(),
      stats: async () => ({ ...app.stats(), ...(await app.clusterStats()) }),
      metrics: async () => ({ contentType: app.metrics.contentType, body: await app.metrics.text() }),
      unsubscribe,
      status: app.status,
      ...(app.feedback.webhooks === undefined ? {} : { webhooks: app.feedback.webhooks }),
    },
    app.log.child({ part: 'http' }),
    { token: http.token },
  );
  return { server, unsubscribe };
}

/** The daemon after its HTTP port: catch-up plan, full sync, minute timer, checkpoint, crons, broadcasts. */
export async function startDaemon(app: LifecycleParts): Promise<void> {
  // Schedule from just after the checkpoint (the last minute fully handled, by any instance):
  // fires missed while down land in overdue buckets and go out first, or are recorded as
  // `missed` past the grace period. A first start schedules from the start of this minute.
  const now = app.clock.now();
  const checkpoint = await app.checkpoint.load();
  app.catchUp.begin(now);
  // The first round of leases before the first full sync, so the sync reads only the owned
  // partitions' users (the solo member owns them all and does nothing).
  const { member } = app.cluster;
  await member.start();
  const partitions = app.partitions;
  if (partitions === undefined) {
    const plan = planCatchUp(checkpoint, now, app.catchUp.opts);
    app.resumedAfter = epochMinute(plan.fromMs) - 1;
    if (plan.uncovered) await app.catchUp.recordUncovered(plan.uncovered);
    if (plan.minutes > 0) app.log.info({ since: new Date(plan.fromMs).toISOString(), minutes: plan.minutes }, 'catching up on fires missed while down');
    await app.sync.full(plan.fromMs);
  } else {
    // Registered before the sync so no move is lost; a move waits for the sync (UserSync's lock)
    // and is then taken relative to what the sync loaded. Each partition from its own mark.
    member.onChange((change) => partitions.handle(change));
    const start = await partitions.start(now, checkpoint);
    app.resumedAfter = start.resumedAfter;
    await app.sync.full(minuteStart(now), start.from);
  }
  app.synced = true;
  app.scheduler.start();
  app.checkpoint.start();
  const { housekeeping: jobs, registry, analytics, queue } = app;
  // Suppressions made by other instances (their unsubscribe endpoint, their bounces) reach
  // this one's in-memory list with the same cadence as user changes.
  jobs.add('userSync', async () => (await Promise.all([app.sync.incremental(), app.suppressions.load()]))[0]);
  // From the start of this minute, so a slot due now is kept (one already sent is re-fired and
  // then skipped by its claim).
  jobs.add('fullSync', () => app.sync.full(minuteStart(app.clock.now())));
  jobs.add('retention', () => app.retention.run(app.clock.now()));
  const counters = () => ({ events: analytics.byType, breakerOpens: queue.breaker.opens, slowdowns: queue.stats.slowdowns, analyticsWriteErrors: analytics.stats.writeErrors, feedback: { ...app.feedback.sink.stats.appliedTally } });
  const summary = new DailySummary(counters, app.clock.now());
  jobs.add('dailySummary', async () => {
    const now = { users: registry.userCount, jobs: registry.size, analyticsBuffered: analytics.size, nextFire: minuteIso(registry.nextFireMinute()) };
    app.log.info(summary.next(app.clock.now(), now), 'daily summary');
  });
  // Broadcasts: a short poll of their own (config broadcasts.pollMs); the `broadcasts` entry of
  // schedules.json, when present, is a backstop.
  app.broadcasts.start();
  jobs.add('broadcasts', () => app.broadcasts.poll());
  app.log.info({ users: registry.userCount, jobs: registry.size, instance: app.instances.id }, 'mailwheel started');
}

/**
 * Graceful stop, in order: timers, intake, drain, analytics, SMTP, heartbeat, MongoDB. Every
 * step runs even if an earlier one fails.
 */
export async function closeInOrder(app: LifecycleParts, http: HttpServer | undefined): Promise<void> {
  const steps: Array<[string, () => Promise<unknown> | unknown]> = [
    // First: no new reports while the rest stops (a relay retries a refused DSN later).
    ['feedback inbound', () => app.feedback.inbound?.close()],
    ['housekeeping', () => app.housekeeping.close()],
    // No second look at taken-over partitions once stopping.
    ['partition moves', () => app.partitions?.stop()],
    ['scheduler', () => void app.scheduler.stop()],
    // Before the dispatcher: a run hands back its queued messages and publishes its counters.
    ['broadcasts', () => app.broadcasts.stop()],
    ['dispatcher', () => app.dispatcher.stop()],
    ['scheduler drain', () => app.scheduler.stop()],
    // After the dispatcher: deliveries it released stay open, so the saved minute stays before them.
    ['checkpoint', () => app.checkpoint.close()],
    ['analytics', async () => {
      await app.analytics.close(app.loaded.config.send.drainTimeoutMs);
      // Everything settled so far has its event: the next start need not look before now.
      await app.eventCheck.markChecked(new Date(app.clock.now()));
    }],
    ['smtp', () => app.transport.close()],
    ['dkim signer', () => app.signer.close()],
    // Leases released before the heartbeat goes: the others take the partitions at their next round.
    ['partitions', () => app.cluster.member.stop()],
    ['redis', () => app.cluster.close()],
    ['instance', () => app.instances.stop()],
    ['mongodb', () => app.store.close()],
    ['http', () => http?.close()],
  ];
  for (const [name, step] of steps) {
    try {
      await step();
    } catch (err) {
      app.log.error({ err, step: name }, 'shutdown step failed');
    }
  }
  app.log.info('mailwheel stopped');
}
