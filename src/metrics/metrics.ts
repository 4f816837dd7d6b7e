/**
 * Prometheus metrics (`/metrics`), with prom-client. Nothing here computes state of its own
 * (STYLE habit 5): gauges and totals are read from the components at scrape time through
 * `collect()` callbacks, and the only values fed from outside are per-event observations the
 * components do not keep — send outcomes and SMTP latency (through the send queue's hooks),
 * analytics write latency (the buffer's `onFlush`), and housekeeping runs.
 *
 * Broadcast progress comes from whoever runs broadcasts, through {@link Metrics.setBroadcastSource};
 * bounces and complaints from the feedback side, through {@link Metrics.setFeedbackSource}; the
 * SMTP relays' health and counts from the transport, through {@link Metrics.setRelaySource}.
 *
 * The cluster and the rate windows are read through async ports (Redis answers them when
 * partitioned): their gauges collect asynchronously, one `status()` and one `use()` per scrape
 * shared by every gauge that needs it, and a part that does not answer leaves its samples out
 * (`mailwheel_redis_up` 0 says why) rather than failing the scrape.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { BreakerState, OutcomeHooks } from '../ports/index.js';
import type { BudgetView, ClusterMember } from '../ports/cluster.js';
import type { FlushReport } from '../analytics/buffer.js';
import type { FeedbackKind, FeedbackRefusal, FeedbackSource } from '../ports/feedback.js';
import type { DeliveryKind, OutcomeType } from '../core/types.js';

const KINDS: readonly DeliveryKind[] = ['scheduled', 'broadcast'];
const BREAKER_STATES: readonly BreakerState[] = ['closed', 'open'];

/** What the metrics read from the running components (plain getters, called at scrape time). */
export interface MetricSources {
  queue(): {
    waiting: number;
    inFlight: number;
    ratePerSecond: number | null;
    rateRatio: number;
    breaker: { state: BreakerState; opens: number; probes: number };
    /** Per destination group (`destinations.groups`); absent: one queue for every destination. */
    groups?: ReadonlyArray<{ name: string; waiting: number; inFlight: number; ratePerSecond: number | null; sent: number; deferrals: number }>;
  };
  dispatcher(): { backlog: number; stats: { claimed: number; skipped: number; suppressed: number; released: number } };
  registry(): { jobs: number; users: number; nextFireMinute: number | undefined };
  analytics(): {
    size: number;
    limit: number;
    waiting: number;
    stats: { written: number; writeErrors: number; peak: number; blocked: number };
    byType: ReadonlyMap<OutcomeType, number>;
  };
  /** The last processed minute and the saved checkpoint (epoch minutes). */
  scheduler(): { lastProcessedMinute: number | undefined; checkpointMinute: number | undefined };
  /** This instance's cluster member, the rate budget in use, and whether Redis is up (undefined: no Redis configured). */
  cluster(): { member: ClusterMember; budget: BudgetView; redisUp: boolean | undefined };
}

/** One SMTP relay as the transport reports it (`relay`: host:port, never its URL). */
export interface RelayMetricSample {
  relay: string;
  up: boolean;
  connections: number;
  sent: number;
  failures: number;
}

/** One broadcast's progress, as its runner reports it. */
export interface BroadcastProgress {
  id: string;
  /** queued, running, paused, done, cancelled... (whatever the runner uses). */
  state: string;
  /** Users targeted so far (or in total, when known). */
  targeted: number;
  sent: number;
  failed: number;
  skipped: number;
}

/**
 * Bounces and complaints as `/metrics` reads them: this instance's counts of reports and refusals
 * (monotonic, read at scrape time), and the rates, which are read from the store (async). A rate
 * that is null (nothing sent) has no sample.
 */
export interface FeedbackMetricSource {
  /** Reports received per source and kind (duplicates included: what the mail system sent). */
  reports(): Iterable<{ source: FeedbackSource; kind: FeedbackKind; n: number }>;
  /** Inputs refused or ignored, per source and reason (core/feedback-refusals.ts `counts()`). */
  refusals(): Iterable<{ source: FeedbackSource; reason: FeedbackRefusal; n: number }>;
  /** Today's rates (undefined while not known) and each rated broadcast's (app/feedback-rates.ts). */
  rates(): Promise<{
    day: { bounceRate: number | null; complaintRate: number | null } | undefined;
    broadcasts: ReadonlyArray<{ id: string; bounceRate: number | null; complaintRate: number | null }>;
  }>;
}

export class Metrics {
  readonly registry = new Registry();
  readonly #sends: Counter<'kind' | 'outcome'>;
  readonly #retries: Counter<'kind'>;
  readonly #latency: Histogram<'kind' | 'outcome'>;
  readonly #flush: Histogram<'outcome'>;
  readonly #housekeeping: Counter<'job' | 'outcome'>;
  readonly #housekeepingLast: Gauge<'job'>;
  #broadcasts: (() => readonly BroadcastProgress[]) | undefined;
  #feedback: FeedbackMetricSource | undefined;
  #relays: (() => readonly RelayMetricSample[]) | undefined;

  constructor(sources: MetricSources, opts: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'mailwheel_' });

    this.#sends = new Counter({ name: 'mailwheel_sends_total', help: 'Messages with a final SMTP outcome, by kind and outcome (sent: accepted by the server).', labelNames: ['kind', 'outcome'], registers });
    this.#retries = new Counter({ name: 'mailwheel_send_retries_total', help: 'Transient SMTP failures that were scheduled for another attempt.', labelNames: ['kind'], registers });
    for (const kind of KINDS) {
      for (const outcome of ['sent', 'failed']) this.#sends.inc({ kind, outcome }, 0);
      this.#retries.inc({ kind }, 0);
    }
    this.#latency = new Histogram({
      name: 'mailwheel_smtp_send_duration_seconds',
      help: 'Duration of the last SMTP attempt of each message with a final outcome.',
      labelNames: ['kind', 'outcome'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.#flush = new Histogram({
      name: 'mailwheel_analytics_flush_duration_seconds',
      help: 'Duration of each analytics insertMany attempt, by outcome.',
      labelNames: ['outcome'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.#housekeeping = new Counter({ name: 'mailwheel_housekeeping_runs_total', help: 'Runs of the housekeeping cron jobs (config/schedules.json), by job and outcome.', labelNames: ['job', 'outcome'], registers });
    this.#housekeepingLast = new Gauge({ name: 'mailwheel_housekeeping_last_success_timestamp_seconds', help: 'When each housekeeping job last succeeded.', labelNames: ['job'], registers });

    gauge(registers, 'mailwheel_queue_waiting', 'Messages submitted to the send queue and not yet handed to SMTP.', () => sources.queue().waiting);
    gauge(registers, 'mailwheel_queue_in_flight', 'Messages being sent over SMTP now.', () => sources.queue().inFlight);
    gauge(registers, 'mailwheel_send_rate_per_second', 'Per-second send rate in force: rate.perSecond, lower while 421 deferrals slow the queue (0: no per-second limit).', () => sources.queue().ratePerSecond ?? 0);
    gauge(registers, 'mailwheel_send_rate_ratio', 'Send rate in force as a share of the configured rate (1: full rate; lower after 421 deferrals).', () => sources.queue().rateRatio);
    gauge(registers, 'mailwheel_dispatch_backlog', 'Deliveries claimed and waiting to enter the send queue.', () => sources.dispatcher().backlog);
    new Gauge({
      name: 'mailwheel_smtp_breaker_state',
      help: 'SMTP circuit breaker: 1 for the current state (open: sending paused, server unreachable).',
      labelNames: ['state'],
      registers,
      collect() {
        const now = sources.queue().breaker.state;
        for (const state of BREAKER_STATES) this.set({ state }, state === now ? 1 : 0);
      },
    });
    mirror(registers, 'mailwheel_smtp_breaker_opens_total', 'Times the circuit breaker opened.', [], () => [[{}, sources.queue().breaker.opens]]);
    mirror(registers, 'mailwheel_deliveries_total', 'Deliveries by dispatch result (claimed: will be sent; skipped: claimed elsewhere; suppressed; released at a stop).', ['result'], () => {
      const s = sources.dispatcher().stats;
      return [
        [{ result: 'claimed' }, s.claimed],
        [{ result: 'skipped' }, s.skipped],
        [{ result: 'suppressed' }, s.suppressed],
        [{ result: 'released' }, s.released],
      ];
    });

    gauge(registers, 'mailwheel_registry_jobs', 'Scheduled jobs (user slots) in the job registry.', () => sources.registry().jobs);
    gauge(registers, 'mailwheel_registry_users', 'Users with at least one scheduled job.', () => sources.registry().users);
    gauge(registers, 'mailwheel_next_fire_timestamp_seconds', 'Start of the next minute with a scheduled fire.', () => {
      const m = sources.registry().nextFireMinute;
      return m === undefined ? undefined : m * 60;
    });
    gauge(registers, 'mailwheel_scheduler_last_minute_timestamp_seconds', 'Start of the last minute the scheduler processed.', () => {
      const m = sources.scheduler().lastProcessedMinute;
      return m === undefined ? undefined : m * 60;
    });
    gauge(registers, 'mailwheel_scheduler_checkpoint_timestamp_seconds', 'Start of the last minute saved as fully handled (catch-up resumes after it).', () => {
      const m = sources.scheduler().checkpointMinute;
      return m === undefined ? undefined : m * 60;
    });

    gauge(registers, 'mailwheel_analytics_buffered', 'Analytics events held in memory, waiting to be written.', () => sources.analytics().size);
    gauge(registers, 'mailwheel_analytics_buffer_limit', 'Bound of the analytics buffer (analytics.maxBuffered).', () => sources.analytics().limit);
    gauge(registers, 'mailwheel_analytics_buffer_peak', 'Most events the analytics buffer has held since start.', () => sources.analytics().stats.peak);
    gauge(registers, 'mailwheel_analytics_blocked_producers', 'Callers waiting for room in the analytics buffer (backpressure on sending).', () => sources.analytics().waiting);
    mirror(registers, 'mailwheel_analytics_events_total', 'Analytics events recorded, by type.', ['type'], () => [...sources.analytics().byType].map(([type, n]) => [{ type }, n]));
    mirror(registers, 'mailwheel_analytics_written_total', 'Analytics events written to MongoDB.', [], () => [[{}, sources.analytics().stats.written]]);
    mirror(registers, 'mailwheel_analytics_write_errors_total', 'Failed analytics writes (the events are kept and retried).', [], () => [[{}, sources.analytics().stats.writeErrors]]);
    mirror(registers, 'mailwheel_analytics_backpressure_total', 'Events whose caller had to wait for room in the buffer.', [], () => [[{}, sources.analytics().stats.blocked]]);

    this.#clusterGauges(registers, sources);

    const broadcasts = (): readonly BroadcastProgress[] => this.#broadcasts?.() ?? [];
    new Gauge({
      name: 'mailwheel_broadcast_messages',
      help: 'Messages of each known broadcast, by outcome (targeted: users reached by its cursor so far).',
      labelNames: ['broadcast', 'state', 'outcome'],
      registers,
      collect() {
        this.reset();
        for (const b of broadcasts()) {
          for (const outcome of ['targeted', 'sent', 'failed', 'skipped'] as const) this.set({ broadcast: b.id, state: b.state, outcome }, b[outcome]);
        }
      },
    });

    this.#feedbackMetrics(registers);
    this.#destinationMetrics(registers, sources);
    this.#relayMetrics(registers);
  }

  /** Each SMTP relay, labelled host:port (see {@link RelayMetricSample}); nothing until a source is set. */
  #relayMetrics(registers: Registry[]): void {
    const each = (read: (r: RelayMetricSample) => number) => (): Array<[{ relay: string }, number]> => (this.#relays?.() ?? []).map((r) => [{ relay: r.relay }, read(r)]);
    const perRelay = (name: string, help: string, read: () => Array<[{ relay: string }, number]>): Gauge<'relay'> =>
      new Gauge({ name, help, labelNames: ['relay'], registers, collect() { this.reset(); for (const [labels, v] of read()) this.set(labels, v); } });
    perRelay('mailwheel_relay_up', 'SMTP relay health: 1 up, 0 down (it gets no traffic and is probed until it answers).', each((r) => (r.up ? 1 : 0)));
    perRelay('mailwheel_relay_connections', 'Open connections of each SMTP relay pool.', each((r) => r.connections));
    mirror(registers, 'mailwheel_relay_sent_total', 'Messages each SMTP relay accepted.', ['relay'], each((r) => r.sent));
    mirror(registers, 'mailwheel_relay_failures_total', 'Connection-level failures per SMTP relay (connect refused or timed out, connection dropped; not 4xx/5xx replies).', ['relay'], each((r) => r.failures));
  }

  /** One series per destination group (none while no group is configured). */
  #destinationMetrics(registers: Registry[], sources: MetricSources): void {
    const groups = () => sources.queue().groups ?? [];
    const perGroup = (name: string, help: string, read: (g: ReturnType<typeof groups>[number]) => number): void => {
      new Gauge({
        name,
        help,
        labelNames: ['group'],
        registers,
        collect() {
          this.reset();
          for (const g of groups()) this.set({ group: g.name }, read(g));
        },
      });
    };
    perGroup('mailwheel_destination_waiting', 'Messages submitted to a destination group and not yet handed to SMTP.', (g) => g.waiting);
    perGroup('mailwheel_destination_in_flight', 'Messages being sent over SMTP now, per destination group.', (g) => g.inFlight);
    perGroup('mailwheel_destination_rate_per_second', "Per-second rate in force for a destination group: its rate.perSecond, lower while that group's 421 deferrals slow it (0: no per-second limit of its own).", (g) => g.ratePerSecond ?? 0);
    mirror(registers, 'mailwheel_destination_sent_total', 'Messages accepted by the server, per destination group.', ['group'], () => groups().map((g) => [{ group: g.name }, g.sent]));
    mirror(registers, 'mailwheel_destination_deferrals_total', 'Transient SMTP failures (4xx deferrals such as 421 4.7.x) retried later, per destination group.', ['group'], () => groups().map((g) => [{ group: g.name }, g.deferrals]));
  }

  /** Bounces and complaints (see {@link FeedbackMetricSource}); nothing until a source is set. */
  #feedbackMetrics(registers: Registry[]): void {
    mirror(registers, 'mailwheel_feedback_reports_total', 'Bounce and complaint reports received, by source (ses, sendgrid, mailgun, postmark, dsn, arf) and kind (hard-bounce, soft-bounce, complaint).', ['source', 'kind'], () =>
      [...(this.#feedback?.reports() ?? [])].map((r) => [{ source: r.source, kind: r.kind }, r.n]),
    );
    mirror(registers, 'mailwheel_feedback_refused_total', 'Feedback inputs refused or ignored, by source and reason (bad-signature, stale, replayed, unknown-message...); none of them suppressed anyone.', ['source', 'reason'], () =>
      [...(this.#feedback?.refusals() ?? [])].map((r) => [{ source: r.source, reason: r.reason }, r.n]),
    );
    const rates = once(async () => (this.#feedback === undefined ? undefined : this.#feedback.rates()));
    const sample = <L extends string>(labels: Partial<Record<L, string>>, v: number | null | undefined): Array<[Partial<Record<L, string>>, number]> => (v === null || v === undefined ? [] : [[labels, v]]);
    asyncGauge(registers, 'mailwheel_bounce_rate', "Hard bounces / messages sent, over the whole cluster, in the period (day: today, UTC). Absent while nothing was sent or today's sends are not read yet.", ['period'], async () =>
      sample({ period: 'day' }, (await rates())?.day?.bounceRate),
    );
    asyncGauge(registers, 'mailwheel_complaint_rate', "Complaints / messages sent, over the whole cluster, in the period (day: today, UTC). Absent while nothing was sent or today's sends are not read yet.", ['period'], async () =>
      sample({ period: 'day' }, (await rates())?.day?.complaintRate),
    );
    asyncGauge(registers, 'mailwheel_broadcast_bounce_rate', 'Hard bounces / messages sent of each broadcast running, paused, or finished in the last 24 h. Absent while it has sent nothing.', ['broadcast'], async () =>
      ((await rates())?.broadcasts ?? []).flatMap((b) => sample({ broadcast: b.id }, b.bounceRate)),
    );
    asyncGauge(registers, 'mailwheel_broadcast_complaint_rate', 'Complaints / messages sent of each broadcast running, paused, or finished in the last 24 h. Absent while it has sent nothing.', ['broadcast'], async () =>
      ((await rates())?.broadcasts ?? []).flatMap((b) => sample({ broadcast: b.id }, b.complaintRate)),
    );
  }

  /** The partition table and the rate windows (see the file comment: async, shared per scrape). */
  #clusterGauges(registers: Registry[], sources: MetricSources): void {
    const status = once(() => sources.cluster().member.status());
    const use = once(() => sources.cluster().budget.use());
    gauge(registers, 'mailwheel_partitions_total', 'Partitions the users are split into (cluster.partitions).', () => sources.cluster().member.partitions);
    gauge(registers, 'mailwheel_partitions_owned', 'Partitions this instance holds (all of them without Redis); its registry holds only their users.', () => sources.cluster().member.owned().size);
    asyncGauge(registers, 'mailwheel_redis_up', 'Redis (cluster.redisUrl) answers: 1 up, 0 down (sending paused). Absent without Redis.', [], async () => {
      const up = sources.cluster().redisUp;
      return up === undefined ? [] : [[{}, up ? 1 : 0]];
    });
    asyncGauge(registers, 'mailwheel_cluster_members', 'Live instances in the partition table (1 without Redis). Absent while the table cannot be read.', [], async () => {
      const s = await status();
      return s === undefined ? [] : [[{}, s.members.length]];
    });
    asyncGauge(registers, 'mailwheel_partition_lease_age_seconds', "Age of this instance's oldest partition lease (since taken). Absent without Redis or while it holds none.", [], async () => {
      const s = await status();
      const ages = (s?.leases ?? []).filter((l) => l.owner === s?.self).map((l) => l.ageMs);
      return ages.length === 0 ? [] : [[{}, Math.max(...ages) / 1000]];
    });
    asyncGauge(registers, 'mailwheel_rate_window_used', 'Sends counted in each configured rate window now (every instance when the budget is shared). Absent while Redis is down.', ['window'], async () =>
      ((await use()) ?? []).map((w) => [{ window: w.name }, w.used]),
    );
    asyncGauge(registers, 'mailwheel_rate_window_limit', 'Configured limit of each rate window (rate.*). Absent while Redis is down.', ['window'], async () =>
      ((await use()) ?? []).map((w) => [{ window: w.name }, w.limit]),
    );
  }

  /** Wraps the send queue's hooks: counts every final outcome and retry, and times SMTP. */
  wrapSendHooks(inner: OutcomeHooks): OutcomeHooks {
    return {
      onOutcome: (o) => {
        this.#sends.inc({ kind: o.delivery.kind, outcome: o.status });
        this.#latency.observe({ kind: o.delivery.kind, outcome: o.status }, o.latencyMs / 1000);
        return inner.onOutcome(o);
      },
      onRetry: (d, attempt, delayMs, error) => {
        this.#retries.inc({ kind: d.kind });
        return inner.onRetry?.(d, attempt, delayMs, error);
      },
    };
  }

  /** For the analytics buffer's `onFlush` hook. */
  observeFlush(r: FlushReport): void {
    this.#flush.observe({ outcome: r.ok ? 'ok' : 'error' }, r.ms / 1000);
  }

  /** For the housekeeping runner. */
  observeHousekeeping(job: string, ok: boolean, atMs: number): void {
    this.#housekeeping.inc({ job, outcome: ok ? 'ok' : 'error' });
    if (ok) this.#housekeepingLast.set({ job }, atMs / 1000);
  }

  /** Broadcast progress, read at each scrape (the broadcast runner registers it). */
  setBroadcastSource(source: () => readonly BroadcastProgress[]): void {
    this.#broadcasts = source;
  }

  /** The SMTP relays, read at each scrape (the composition root registers the transport's). */
  setRelaySource(source: () => readonly RelayMetricSample[]): void {
    this.#relays = source;
  }

  /** Bounces and complaints, read at each scrape (the composition root registers them). */
  setFeedbackSource(source: FeedbackMetricSource): void {
    this.#feedback = source;
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}

/**
 * A gauge read at scrape time; `undefined` means "no sample" (e.g. nothing scheduled). A
 * {@link ReadGauge}: prom-client's own label-less gauge would show 0, a timestamp 56 years old.
 */
function gauge(registers: Registry[], name: string, help: string, read: () => number | undefined): void {
  asyncGauge(registers, name, help, [], async () => {
    const v = read();
    return v === undefined ? [] : [[{}, v]];
  });
}

/** A counter that mirrors a monotonic total a component keeps. */
function mirror<L extends string>(registers: Registry[], name: string, help: string, labelNames: L[], read: () => Array<[Partial<Record<L, string>>, number]>): void {
  new Counter<L>({
    name,
    help,
    labelNames,
    registers,
    collect() {
      this.reset();
      for (const [labels, value] of read()) this.inc(labels, value);
    },
  });
}

/**
 * A gauge whose samples come from an async read, and which has NO sample when the read gives none
 * (prom-client's own label-less gauge always shows one, 0 after a reset): a part that cannot be
 * read, or does not exist here (Redis without `cluster.redisUrl`), is absent rather than a
 * misleading 0. A read that rejects counts as none.
 */
class ReadGauge<L extends string> extends Gauge<L> {
  readonly #read: () => Promise<Array<[Partial<Record<L, string>>, number]>>;

  constructor(cfg: { name: string; help: string; labelNames: L[]; registers: Registry[] }, read: () => Promise<Array<[Partial<Record<L, string>>, number]>>) {
    super(cfg);
    this.#read = read;
  }

  override async get(): ReturnType<Gauge<L>['get']> {
    // Started before any await: every gauge of one scrape asks in the same tick and shares the read.
    const reading = this.#read().catch(() => []);
    const base = await super.get();
    const samples = await reading;
    return { ...base, values: samples.map(([labels, value]) => ({ labels, value })) };
  }
}

function asyncGauge<L extends string>(registers: Registry[], name: string, help: string, labelNames: L[], read: () => Promise<Array<[Partial<Record<L, string>>, number]>>): void {
  new ReadGauge<L>({ name, help, labelNames, registers }, read);
}

/**
 * One call of `read` shared by everyone who asks while it runs (prom-client starts every metric's
 * collect in the same tick, so one scrape reads the cluster once); a failure reads as undefined.
 */
function once<T>(read: () => Promise<T>): () => Promise<T | undefined> {
  let running: Promise<T | undefined> | undefined;
  return () => {
    running ??= read()
      .catch(() => undefined)
      .finally(() => (running = undefined));
    return running;
  };
}
