/**
 * Suite `scale` (issue 13): 1, 2 and 3 instances of `mailwheel start` (the built CLI, each its own
 * process, scripts/lib/mailwheel-cluster.ts) on one MongoDB-wire database with 300,000 users
 * (quick: 6,000), sending the users due in one UTC minute into an SMTP server in a child process
 * that records each arrival's time and recipient (scripts/lib/arrival-capture.ts).
 *
 * Cells: 1 instance without Redis (the default deployment: the comparison, measured in the same
 * run), 2 and 3 instances sharing a private Redis (`cluster.redisUrl`); each unlimited and at
 * `rate.perSecond` LIMIT. Per cell: combined msgs/s while there is work, window fidelity (busiest
 * sliding second at the server against the limit), jobs and RSS per instance (VmRSS once started
 * and the peak VmHWM), users received, duplicates. Then failover: 3 instances at the limit, one
 * killed with SIGKILL (by pid) a third of the way through, seconds until the survivors' `/stats`
 * show every partition owned again, users missed and duplicated.
 *
 * Each cell gets a fresh database with the same users, in UTC, one slot each: the cell's due users
 * at the cell's minute, the others 12 h away, so every instance loads all its users while only the
 * due ones send.
 */
import { DateTime } from 'luxon';
import { startArrivalCapture, type ArrivalCapture } from '../scripts/lib/arrival-capture.js';
import { achievedRate, countByRecipient, coverage, perSecondSeries, slidingMax } from '../scripts/lib/arrivals.js';
import { untilIdleTwice, MailwheelCluster, partitionsOwnedBy, until, type DaemonStats } from '../scripts/lib/mailwheel-cluster.js';
import { startRedisServer, type RedisServer } from '../scripts/lib/redis-server.js';
import { insertMany, startBenchDb, type BenchDb } from './lib/db.js';
import { round, type Row, type Series, type Suite, type SuiteContext } from './lib/suite.js';

const MINUTE_MS = 60_000;
const LIMIT = 500;
const POOL = 10;
const LEASE_TTL_MS = 15_000;

interface Scale {
  users: number;
  /** Users due in an unlimited cell's minute. */
  dueUnlimited: number;
  /** Users due in a limited cell's minute (LIMIT x this many seconds). */
  dueLimited: number;
  dueFailover: number;
}

function scaleFor(quick: boolean): Scale {
  return quick
    ? { users: 6_000, dueUnlimited: 3_000, dueLimited: LIMIT * 6, dueFailover: LIMIT * 8 }
    : { users: 300_000, dueUnlimited: 100_000, dueLimited: LIMIT * 120, dueFailover: LIMIT * 60 };
}

interface Cell {
  id: string;
  instances: number;
  limit: number | null;
  due: number;
  failover?: boolean;
}

interface CellResult {
  row: Row;
  series: Series;
}

const hhmm = (ms: number): string => DateTime.fromMillis(ms, { zone: 'utc' }).toFormat('HH:mm');

/**
 * A fresh database for one cell (on FerretDB v1 an updateMany rewrites documents one by one, so
 * re-seeding is far faster than moving slots): `scale.users` users in UTC with one slot each, the
 * first `due` at `dueAt`, the others 12 h away.
 */
async function seedCell(cell: Cell, scale: Scale, dueAt: number, log: (line: string) => void): Promise<{ db: BenchDb; seedS: number }> {
  const db = await startBenchDb(`bench_scale_${cell.id.replace(/\W/g, '_')}`, log);
  const [due, away] = [hhmm(dueAt), hhmm(dueAt + 12 * 60 * MINUTE_MS)];
  const seedS = await insertMany(db.db, 'users', scale.users, (i) => {
    const id = `b${String(i).padStart(7, '0')}`;
    return { _id: id, email: `${id}@example.test`, name: `User ${i}`, active: true, timezone: 'UTC', emailTimes: [i < cell.due ? due : away], updatedAt: new Date() };
  }, () => undefined, 2000);
  return { db, seedS };
}

/** `leadMs`: time the seeding and the start of the instances are expected to take before the minute. */
async function runCell(cell: Cell, redis: RedisServer, capture: ArrivalCapture, scale: Scale, leadMs: number, log: (line: string) => void): Promise<CellResult & { startS: number; seedS: number }> {
  const seedStarted = Date.now();
  const dueAt = Math.ceil((Date.now() + leadMs) / MINUTE_MS) * MINUTE_MS;
  const { db, seedS } = await seedCell(cell, scale, dueAt, log);
  log(`${cell.id}: ${scale.users.toLocaleString('en')} users seeded in ${round(seedS)} s`);
  if (Date.now() - seedStarted > leadMs / 2) log(`${cell.id}: seeding took ${round((Date.now() - seedStarted) / 1000)} s of the ${leadMs / 1000} s lead`);
  // A checkpoint before now: an instance that starts after the minute still fires it (catch-up).
  await db.db.collection<{ _id: string; lastMinute: number }>('mailwheel_state').updateOne({ _id: 'scheduler' }, { $set: { lastMinute: Math.floor(Date.now() / MINUTE_MS) - 1 } }, { upsert: true });
  const before = capture.arrivals.length;
  const spawnedAt = Date.now();
  const cluster = new MailwheelCluster({
    n: cell.instances,
    mongoUri: db.uri,
    smtpUrl: capture.url,
    ...(cell.instances > 1 ? { redisUrl: redis.url } : {}),
    config: {
      rate: { perSecond: cell.limit, perDay: null },
      smtp: { poolSize: POOL },
      cluster: { keyPrefix: `bench_scale_${cell.id.replace(/\W/g, '_')}`, leaseTtlMs: LEASE_TTL_MS },
      log: { level: 'info' },
    },
    log,
  });
  try {
    await cluster.waitStarted(30 * MINUTE_MS);
    const startS = (Date.now() - spawnedAt) / 1000;
    if (Date.now() > dueAt) log(`${cell.id}: started ${round((Date.now() - dueAt) / 1000)} s after the due minute (caught up at start)`);
    // Settled shares: wait (bounded, never past the minute) until the jobs add up to the users,
    // within 1 % either way (a newcomer still loading its gained partitions holds fewer: the sum
    // below the users is not settled either).
    let stats: DaemonStats[] = await cluster.stats();
    await until(async () => {
      stats = await cluster.stats();
      return Math.abs(stats.reduce((a, s) => a + s.jobs, 0) - scale.users) <= scale.users * 0.01 || Date.now() > dueAt - 2_000 ? true : undefined;
    }, Math.max(5_000, dueAt - Date.now()), () => 'shares did not settle').catch(() => undefined);
    const jobs = stats.map((s) => s.jobs);
    const rssStarted = cluster.daemons.map((d) => round(d.rss()?.rssMiB ?? Number.NaN));
    log(`${cell.id}: ${cell.instances} started in ${round(startS)} s; jobs ${jobs.join('/')}; RSS ${rssStarted.join('/')} MiB; due ${cell.due.toLocaleString('en')} at ${new Date(dueAt).toISOString()}`);

    let failover: Row = {};
    if (cell.failover === true) failover = await killOne(cluster, capture, before, cell, log);

    const allBound = Math.max(0, dueAt - Date.now()) + (cell.limit === null ? 600_000 : (cell.due / cell.limit) * 3_000 + 120_000);
    const dueSet = Array.from({ length: cell.due }, (_, i) => `b${String(i).padStart(7, '0')}@example.test`);
    const received = (): number => {
      const counts = countByRecipient(capture.arrivals.slice(before));
      return dueSet.reduce((n, r) => n + ((counts.get(r) ?? 0) > 0 ? 1 : 0), 0);
    };
    await until(() => (capture.arrivals.length - before >= cell.due && received() >= cell.due ? true : undefined), allBound, () => `${received()} of ${cell.due} received`, 1_000).catch((err: unknown) => log(`${cell.id}: ${(err as Error).message}`));
    await untilIdleTwice(() => cluster.stats(), 120_000).catch(() => undefined);

    const arrivals = capture.arrivals.slice(before);
    const cov = coverage(countByRecipient(arrivals), dueSet);
    const achieved = achievedRate(arrivals, cell.limit ?? 100);
    const window = cell.limit === null ? undefined : slidingMax(arrivals, 1_000, cell.limit);
    const row: Row = {
      cell: cell.id,
      instances: cell.instances,
      redis: cell.instances > 1,
      limit: cell.limit ?? 'none',
      users: scale.users,
      due: cell.due,
      startS: round(startS, 1),
      jobsPerInstance: jobs.join(' / '),
      maxJobShare: round(Math.max(...jobs) / scale.users, 3),
      received: arrivals.length,
      missing: cov.missing.length,
      duplicates: cov.duplicates,
      msgsPerS: round(achieved.perSecond, 1),
      achievedPerLimit: cell.limit === null ? null : round(achieved.perSecond / cell.limit, 3),
      slidingSecondMax: window?.certain ?? null,
      slidingSecondMaxRecorded: window?.recorded ?? null,
      rssStartedMiB: rssStarted.join(' / '),
      peakRssMiB: cluster.daemons.map((d) => d.peakRssMiB).join(' / '),
      ...failover,
    };
    log(`${cell.id}: ${arrivals.length.toLocaleString('en')} received, ${round(achieved.perSecond)} msgs/s, sliding second max ${window?.certain ?? '-'} (recorded ${window?.recorded ?? '-'}), missing ${cov.missing.length}, duplicates ${cov.duplicates}`);
    const origin = arrivals[0]?.at ?? dueAt;
    return {
      row,
      startS,
      seedS,
      series: { id: cell.id, title: `${cell.instances} instance(s), ${cell.due.toLocaleString('en')} due, ${cell.limit === null ? 'unlimited' : `${cell.limit}/s`}: messages received per second (all instances)`, unit: 'messages/s', limit: cell.limit, points: perSecondSeries(arrivals, origin) },
    };
  } finally {
    await cluster.stopAll();
    await db.stop();
  }
}

/** Kills the busiest instance once a third of the due users arrived; measures the takeover. */
async function killOne(cluster: MailwheelCluster, capture: ArrivalCapture, before: number, cell: Cell, log: (line: string) => void): Promise<Row> {
  await until(() => (capture.arrivals.length - before >= cell.due / 3 ? true : undefined), 30 * MINUTE_MS, () => 'no third of the due users arrived');
  const stats = await cluster.stats();
  const sent = stats.map((s) => s.sends.sent);
  const i = sent.indexOf(Math.max(...sent));
  const victim = cluster.daemons[i];
  if (victim === undefined) return {};
  const survivors = cluster.daemons.filter((d) => d !== victim);
  const ids = new Set(stats.filter((_, k) => k !== i).map((s) => s.instance));
  const killedAt = Date.now();
  await victim.kill9();
  let last: DaemonStats[] = [];
  const takeoverMs = await until(
    async () => {
      last = await Promise.all(survivors.map((d) => d.stats()));
      const owned = partitionsOwnedBy(last, ids);
      return owned !== undefined && owned.owned === owned.total ? Date.now() - killedAt : undefined;
    },
    3 * LEASE_TTL_MS + 30_000,
    () => JSON.stringify(partitionsOwnedBy(last, ids) ?? 'no cluster field in /stats'),
    200,
  ).catch((err: unknown) => {
    log(`${cell.id}: takeover not seen: ${(err as Error).message}`);
    return undefined;
  });
  log(`${cell.id}: killed instance ${i} (pid ${victim.pid}); partitions owned again after ${takeoverMs === undefined ? 'never' : `${takeoverMs / 1000} s`}`);
  return { killedInstance: i, failoverS: takeoverMs === undefined ? null : round(takeoverMs / 1000, 2), leaseTtlS: LEASE_TTL_MS / 1000 };
}

const suite: Suite = {
  description:
    'Scale-out: 1, 2 and 3 mailwheel instances (1 without Redis, 2 and 3 sharing one) on 300,000 users, unlimited and at a shared rate.perSecond: combined msgs/s, sliding-second fidelity at the server, jobs and RSS per instance, failover seconds after kill -9 of one of 3',
  async run(ctx: SuiteContext) {
    const { log } = ctx;
    const scale = scaleFor(ctx.quick);
    const redis = await startRedisServer({ log });
    const capture = await startArrivalCapture();
    log(`arrival capture pid ${capture.pid} on ${capture.url}; redis ${redis.url}`);
    try {
      const cells: Cell[] = [];
      for (const instances of [1, 2, 3]) {
        cells.push({ id: `${instances}x-unlimited`, instances, limit: null, due: scale.dueUnlimited });
        cells.push({ id: `${instances}x-limit-${LIMIT}`, instances, limit: LIMIT, due: scale.dueLimited });
      }
      cells.push({ id: `3x-limit-${LIMIT}-kill`, instances: 3, limit: LIMIT, due: scale.dueFailover, failover: true });
      const results = new Map<string, CellResult>();
      // The due minute is the first whole minute after the seeding and the start: a guess for the
      // first cell, then the last seeding and twice the last start measured (a late start still fires the
      // minute, by catch-up, but then the instances do not start together).
      let leadMs = 20_000 + scale.users / 2;
      for (const cell of cells) {
        const r = await runCell(cell, redis, capture, scale, leadMs, log);
        results.set(cell.id, r);
        leadMs = Math.max(15_000, 1.2 * r.seedS * 1000 + 2 * r.startS * 1000);
      }
      const num = (id: string, field: string): number => Number(results.get(id)?.row[field] ?? Number.NaN);
      const firstRss = (id: string): number => Number(String(results.get(id)?.row['rssStartedMiB'] ?? '').split(' / ')[0]);
      const maxRss = (id: string): number => Math.max(...String(results.get(id)?.row['rssStartedMiB'] ?? '').split(' / ').map(Number));
      const comparisons: Row[] = [];
      for (const n of [2, 3]) {
        comparisons.push({ comparison: `${n}x unlimited msgs/s / 1x unlimited msgs/s`, ratio: round(num(`${n}x-unlimited`, 'msgsPerS') / num('1x-unlimited', 'msgsPerS'), 2) });
        comparisons.push({ comparison: `${n}x limit-${LIMIT} msgs/s / limit (combined)`, ratio: round(num(`${n}x-limit-${LIMIT}`, 'msgsPerS') / LIMIT, 3) });
        comparisons.push({ comparison: `${n}x limit-${LIMIT} busiest sliding second / limit`, ratio: round(num(`${n}x-limit-${LIMIT}`, 'slidingSecondMax') / LIMIT, 3) });
        comparisons.push({ comparison: `${n}x largest instance RSS once started / 1x RSS (all users)`, ratio: round(maxRss(`${n}x-unlimited`) / firstRss('1x-unlimited'), 2) });
      }
      comparisons.push({ comparison: `1x limit-${LIMIT} busiest sliding second / limit`, ratio: round(num(`1x-limit-${LIMIT}`, 'slidingSecondMax') / LIMIT, 3) });
      comparisons.push({ comparison: 'failover s / cluster.leaseTtlMs', ratio: round(num(`3x-limit-${LIMIT}-kill`, 'failoverS') / (LEASE_TTL_MS / 1000), 2) });
      return {
        config: {
          users: scale.users,
          due: { unlimited: scale.dueUnlimited, limited: scale.dueLimited, failover: scale.dueFailover },
          limit: LIMIT,
          poolSize: POOL,
          partitions: 256,
          leaseTtlMs: LEASE_TTL_MS,
          mongo: 'a fresh FerretDB (or MONGODB_URI) database per cell, bench/lib/db.ts',
          redis: 'private redis-server, no persistence (scripts/lib/redis-server.ts), for 2 and 3 instances',
          smtp: 'smtp-server in a child process recording each arrival (scripts/lib/arrival-capture.ts)',
        },
        rows: cells.map((c) => results.get(c.id)?.row ?? { cell: c.id }),
        comparisons,
        notes: [
          'every instance is the built CLI (`node dist/cli/main.js --config FILE start`) in its own process, all on this machine with the database, Redis and the SMTP server; cells run one after another, each on a fresh database seeded with the same users',
          '1 instance runs without Redis (cluster.redisUrl null, the default deployment: every user, local windows); 2 and 3 share one Redis (shared windows, partition leases)',
          'msgsPerS: messages from the first arrival to the arrival `limit` (unlimited: 100) before the last, over that time (scripts/lib/arrivals.ts achievedRate)',
          'slidingSecondMax: the most messages that certainly arrived within one sliding second (a message is counted in a window only when the lower bound of its arrival and its read time both fall in it, so a late read on a busy machine cannot inflate it); slidingSecondMaxRecorded counts by read times alone',
          'jobsPerInstance: `jobs` on each instance\'s /stats once all started; rssStartedMiB: VmRSS then; peakRssMiB: the highest VmHWM sampled every 0.5 s',
          'failoverS: from the SIGKILL (by pid) to the first time the survivors\' /stats `cluster` show no partition free and every one held by a survivor, polled every 200 ms',
          'the SMTP server is a Node smtp-server in one process: at unlimited rates it may be the ceiling (compare with the peak suite, which uses Postfix smtp-sink)',
        ],
        series: cells.map((c) => results.get(c.id)?.series).filter((s): s is Series => s !== undefined),
      };
    } finally {
      await capture.stop();
      await redis.stop();
    }
  },
};

export default suite;
