/**
 * The numbers of `/stats` (and of a stopped run's log), read from the components at request time.
 * Split out of the composition root, which only wires the parts this reads. The cluster and the
 * rate windows are read through async ports (Redis answers them with partitioning), so they are
 * a second, async part ({@link clusterStats}) that the HTTP route awaits and merges in.
 */
import type { MongoClaimStore } from '../adapters/mongo/claim-store.js';
import type { InstanceRegistry } from '../adapters/mongo/instance-registry.js';
import type { RelayStatus } from '../adapters/smtp/relay-set.js';
import type { SendPath } from '../adapters/smtp/send-options.js';
import type { AnalyticsBuffer } from '../analytics/buffer.js';
import type { CatchUp, MinuteLedger } from '../core/catch-up.js';
import type { Checkpoint } from '../core/checkpoint.js';
import type { Dispatcher } from '../core/dispatcher.js';
import type { JobRegistry } from '../core/job-registry.js';
import type { SuppressionList } from '../core/suppression-list.js';
import { minuteIso, sleepOrWake } from '../core/time.js';
import type { UserSync } from '../core/user-sync.js';
import type { BroadcastSupervisor } from '../core/broadcast-supervisor.js';
import type { Config } from '../config/schema.js';
import type { BudgetView, ClusterMember } from '../ports/cluster.js';
import type { Clock } from '../ports/clock.js';
import { summarizeCluster, windowsReport, type ClusterSummary, type WindowReport } from './cluster-view.js';
import type { Housekeeping } from './housekeeping.js';

/** The parts `/stats` reads (the App itself). */
export interface StatsParts {
  readonly instances: Pick<InstanceRegistry, 'id'>;
  readonly registry: JobRegistry;
  readonly queue: SendPath;
  /** The SMTP relays, each with its health (`up`) and counts (summed over the destination groups' pools). */
  relayStatus(): RelayStatus[];
  readonly dispatcher: Dispatcher;
  readonly claims: Pick<MongoClaimStore, 'stats'>;
  readonly suppressions: SuppressionList;
  readonly analytics: AnalyticsBuffer;
  readonly sync: UserSync;
  readonly catchUp: CatchUp;
  readonly ledger: MinuteLedger;
  readonly checkpoint: Checkpoint;
  readonly housekeeping: Housekeeping;
  readonly broadcasts: Pick<BroadcastSupervisor, 'running' | 'stats'>;
}

/**
 * @param unsubscribe the unsubscribe endpoint's counters, when the HTTP server runs
 * @param feedback the feedback side's numbers (the sink's stats, refusals per source and reason),
 *   when it runs: shown as `feedback`
 */
export function appStats(p: StatsParts, unsubscribe?: Record<string, number>, feedback?: Record<string, unknown>): Record<string, unknown> {
  return {
    instance: p.instances.id,
    users: p.registry.userCount,
    jobs: p.registry.size,
    nextFire: minuteIso(p.registry.nextFireMinute()),
    queue: { waiting: p.queue.waiting, inFlight: p.queue.inFlight, backlog: p.dispatcher.backlog, ratePerSecond: p.queue.ratePerSecond },
    breaker: p.queue.breaker,
    relays: p.relayStatus(),
    sends: { ...p.queue.stats },
    // Per destination group, when `destinations.groups` is configured.
    ...(p.queue.groups === undefined ? {} : { destinations: p.queue.groups }),
    claims: { ...p.claims.stats },
    suppressions: { size: p.suppressions.size, ...unsubscribe },
    analytics: { buffered: p.analytics.size, limit: p.analytics.limit, waiting: p.analytics.waiting, ...p.analytics.stats },
    lastSync: p.sync.lastReport ?? null,
    catchUp: { ...p.catchUp.stats, openDeliveries: p.ledger.open, checkpoint: minuteIso(p.checkpoint.saved) },
    housekeeping: p.housekeeping.stats(),
    broadcasts: { running: p.broadcasts.running(), ...p.broadcasts.stats },
    ...(feedback === undefined ? {} : { feedback }),
  };
}

/** The parts the cluster half of `/stats` reads (the App itself). */
export interface ClusterStatsParts {
  readonly cluster: { readonly member: ClusterMember; readonly redis: { readonly up: boolean } | undefined };
  readonly budget: BudgetView;
  readonly clock: Clock;
  readonly loaded: { readonly config: Pick<Config, 'rate'> };
}

/** The cluster half of `/stats`: see {@link clusterStats}. */
export interface ClusterStats {
  /** The partition table as this instance sees it; `error` (with mode, self and owned) while it cannot be read. */
  cluster: ClusterSummary | { mode: ClusterSummary['mode']; owned: number; partitions: number; error: string };
  /** Each configured window's use; `used: null` and `state: 'down'` while the shared store does not answer. */
  rateWindows: Partial<Record<string, WindowReport>>;
  /** Whether Redis answers (null: no `cluster.redisUrl`). */
  redis: { up: boolean } | null;
}

/** How long `/stats` waits for the cluster's answers before reporting them as not answering (ms). */
export const CLUSTER_STATS_TIMEOUT_MS = 2_000;

/**
 * The partition table (bounded: per member, and the lease ages' extremes) and the rate windows'
 * use. Never rejects and never waits longer than `timeoutMs`: a Redis that is down or hung makes
 * `/stats` say so, not fail or hang.
 */
export async function clusterStats(p: ClusterStatsParts, timeoutMs = CLUSTER_STATS_TIMEOUT_MS): Promise<ClusterStats> {
  const { member, redis } = p.cluster;
  const [status, rateWindows] = await Promise.all([
    within(member.status(), p.clock, timeoutMs).then(
      (s) => summarizeCluster(s),
      (err: unknown) => ({ mode: member.mode, owned: member.owned().size, partitions: member.partitions, error: err instanceof Error ? err.message : String(err) }),
    ),
    within(windowsReport(p.budget, p.loaded.config.rate), p.clock, timeoutMs).catch(() => windowsReport(failing(p.budget), p.loaded.config.rate)),
  ]);
  return { cluster: status, rateWindows, redis: redis === undefined ? null : { up: redis.up } };
}

/** The same budget, not answering (its windows are then reported from the config, `used: null`). */
function failing(budget: BudgetView): BudgetView {
  return { scope: budget.scope, state: 'down', use: () => Promise.reject(new Error('no answer')) };
}

/** `work`'s answer, or a rejection once `ms` passed on the clock without one (the timer is cleared either way). */
async function within<T>(work: Promise<T>, clock: Clock, ms: number): Promise<T> {
  let settled = false;
  const watched = work.then(
    (v) => {
      settled = true;
      return v;
    },
    (err: unknown) => {
      settled = true;
      throw err;
    },
  );
  await sleepOrWake(clock, ms, watched.catch(() => undefined));
  if (!settled) {
    watched.catch(() => undefined);
    throw new Error(`no answer within ${ms} ms`);
  }
  return watched;
}
