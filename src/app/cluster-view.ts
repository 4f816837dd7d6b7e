/**
 * What an operator sees of the cluster: the partition table and the rate windows' use, summed up
 * in a bounded shape (one entry per member and per window, never one per lease), for `/stats`
 * (stats.ts) and `mailwheel cluster status` (readClusterReport). Read through the ports only
 * (ClusterMember.status(), BudgetView), so the solo member and the Redis leases look alike.
 */
import pino from 'pino';
import type { Config } from '../config/schema.js';
import { Errors } from '../errors.js';
import type { BudgetView, BudgetScope, ClusterStatus, RateWindowName } from '../ports/cluster.js';
import type { Clock } from '../ports/clock.js';
import type { Stores } from './stores.js';
import { budgetViewFor } from './budget-view.js';
import { openCluster } from './cluster.js';

/** One window's use, as `/stats` and `cluster status --json` print it. */
export interface WindowReport {
  limit: number;
  /** Sends counted in the window now; null while the shared store does not answer. */
  used: number | null;
  windowMs: number;
  scope: BudgetScope;
  state: 'up' | 'down';
}

/** One member of the table, with the ages of the leases it holds. */
export interface MemberSummary {
  id: string;
  partitions: number;
  heartbeatAgeMs: number;
  /** Age of its oldest / newest lease, ms (null: it holds none, or the table has no leases, as solo). */
  oldestLeaseAgeMs: number | null;
  newestLeaseAgeMs: number | null;
}

export interface ClusterSummary {
  mode: ClusterStatus['mode'];
  self: string;
  partitions: number;
  /** Partitions this instance holds. */
  owned: number;
  /** Partitions no live lease covers (taken by someone within the lease TTL). */
  free: number;
  leaseTtlMs: number;
  members: MemberSummary[];
  /** Over every held lease, ms (null: none). */
  leases: { held: number; oldestAgeMs: number | null; newestAgeMs: number | null; soonestExpiryMs: number | null };
}

/** The table in a bounded shape: per member, and the lease ages' extremes (not one row per lease). */
export function summarizeCluster(s: ClusterStatus): ClusterSummary {
  const byOwner = new Map<string, number[]>();
  for (const l of s.leases) {
    const ages = byOwner.get(l.owner) ?? [];
    ages.push(l.ageMs);
    byOwner.set(l.owner, ages);
  }
  const ages = s.leases.map((l) => l.ageMs);
  const solo = s.mode === 'solo';
  const self = s.members.find((m) => m.id === s.self);
  return {
    mode: s.mode,
    self: s.self,
    partitions: s.partitions,
    owned: solo ? s.partitions : (byOwner.get(s.self)?.length ?? self?.partitions ?? 0),
    free: solo ? 0 : Math.max(0, s.partitions - new Set(s.leases.map((l) => l.partition)).size),
    leaseTtlMs: s.leaseTtlMs,
    members: s.members.map((m) => {
      const own = byOwner.get(m.id) ?? [];
      return { id: m.id, partitions: m.partitions, heartbeatAgeMs: m.heartbeatAgeMs, oldestLeaseAgeMs: maxOf(own), newestLeaseAgeMs: minOf(own) };
    }),
    leases: { held: s.leases.length, oldestAgeMs: maxOf(ages), newestAgeMs: minOf(ages), soonestExpiryMs: minOf(s.leases.map((l) => l.expiresInMs)) },
  };
}

/**
 * Each configured window's use, keyed by name. A shared budget that does not answer reports each
 * window's limit with `used: null` and `state: 'down'` (its windows are known from `rate`).
 */
export async function windowsReport(budget: BudgetView, configured: Config['rate']): Promise<Partial<Record<RateWindowName, WindowReport>>> {
  const out: Partial<Record<RateWindowName, WindowReport>> = {};
  try {
    for (const w of await budget.use()) out[w.name] = { limit: w.limit, used: w.used, windowMs: w.windowMs, scope: budget.scope, state: budget.state };
  } catch {
    for (const [name, windowMs] of WINDOW_MS) {
      const limit = configured[name];
      if (limit) out[name] = { limit, used: null, windowMs, scope: budget.scope, state: 'down' };
    }
  }
  return out;
}

const WINDOW_MS: ReadonlyArray<readonly [RateWindowName, number]> = [
  ['perSecond', 1_000],
  ['perMinute', 60_000],
  ['perHour', 3_600_000],
  ['perDay', 86_400_000],
];

/** `host:port` of a Redis URL (never its credentials). */
export function redisAddress(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '6379'}`;
  } catch {
    return '(unparsable cluster.redisUrl)';
  }
}

/** A member of `cluster status`, with where it runs when the instance directory knows it. */
export interface MemberReport extends MemberSummary {
  host: string | null;
  pid: number | null;
}

/** What `mailwheel cluster status` prints. */
export type ClusterReport =
  | {
      mode: 'solo';
      /** The daemons and run-minutes alive now (MongoDB's instance directory). */
      instances: Array<{ id: string; host: string; pid: number; startedAt: string; heartbeatAgeMs: number }>;
      partitions: number;
      rateWindows: Partial<Record<RateWindowName, WindowReport>>;
    }
  | {
      mode: 'partitioned';
      redis: string;
      partitions: number;
      free: number;
      leaseTtlMs: number;
      members: MemberReport[];
      leases: ClusterSummary['leases'];
      rateWindows: Partial<Record<RateWindowName, WindowReport>>;
    };

export interface ClusterReportOptions {
  clock: Clock;
  /** How long to wait for Redis to accept the connection (ms). */
  connectTimeoutMs?: number;
}

/**
 * Reads the cluster as one more process (`cluster status`): never joins it, takes no lease and
 * grants nothing. Without `cluster.redisUrl`, the live instances from MongoDB and the recorded
 * sends; with it, the partition table and the shared windows from Redis. Throws
 * Errors.REDIS_UNAVAILABLE (exit 69) naming the Redis address when Redis does not answer.
 */
export async function readClusterReport(config: Config, stores: Stores, opts: ClusterReportOptions): Promise<ClusterReport> {
  const { clock } = opts;
  const live = await stores.instances.live();
  const { redisUrl, partitions } = config.cluster;
  if (redisUrl === null) {
    const budget = budgetViewFor(config, { redis: undefined, sent: stores.sent, clock });
    const now = clock.now();
    return {
      mode: 'solo',
      instances: live.map((i) => ({ id: i.id, host: i.host, pid: i.pid, startedAt: i.startedAt.toISOString(), heartbeatAgeMs: Math.max(0, now - i.heartbeatAt.getTime()) })),
      partitions,
      rateWindows: await windowsReport(budget, config.rate),
    };
  }
  // Silent: an unreachable Redis is reported once, by the error below, not by the connection's log.
  const cluster = openCluster(config, stores.instances.id, clock, pino({ enabled: false }));
  try {
    const redis = cluster.redis;
    if (redis === undefined) throw new Errors.INTERNAL('cluster.redisUrl is set but no Redis connection was opened');
    await whenReady(redis.client, redisAddress(redisUrl), opts.connectTimeoutMs ?? 5_000, clock);
    const status = summarizeCluster(await cluster.member.status());
    const where = new Map(live.map((i) => [i.id, i]));
    const budget = budgetViewFor(config, { redis, sent: stores.sent, clock });
    return {
      mode: 'partitioned',
      redis: redisAddress(redisUrl),
      partitions: status.partitions,
      free: status.free,
      leaseTtlMs: status.leaseTtlMs,
      members: status.members.map((m) => ({ ...m, host: where.get(m.id)?.host ?? null, pid: where.get(m.id)?.pid ?? null })),
      leases: status.leases,
      rateWindows: await windowsReport(budget, config.rate),
    };
  } finally {
    await cluster.close().catch(() => undefined);
  }
}

/** The subset of an ioredis client this waits on. */
interface ReadyEmitter {
  readonly status: string;
  once(event: 'ready' | 'error', listener: (err?: Error) => void): unknown;
  off(event: 'ready' | 'error', listener: (err?: Error) => void): unknown;
}

/** Resolves once the client is connected; rejects at its first error or after `timeoutMs`. */
function whenReady(client: ReadyEmitter, where: string, timeoutMs: number, clock: Clock): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = (err?: Error) => {
      clock.clearTimeout(timer);
      client.off('ready', onReady);
      client.off('error', onError);
      if (err === undefined) resolve();
      else reject(new Errors.REDIS_UNAVAILABLE(`redis at ${where} (cluster.redisUrl) does not answer: ${err.message}`, { cause: err }));
    };
    const onReady = () => done();
    const onError = (err?: Error) => done(err ?? new Error('connection failed'));
    const timer = clock.setTimeout(() => done(new Error(`no connection within ${timeoutMs} ms`)), timeoutMs);
    client.once('ready', onReady);
    client.once('error', onError);
  });
}

function maxOf(xs: readonly number[]): number | null {
  return xs.length === 0 ? null : Math.max(...xs);
}

function minOf(xs: readonly number[]): number | null {
  return xs.length === 0 ? null : Math.min(...xs);
}
