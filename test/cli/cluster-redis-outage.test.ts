/**
 * Issue 13 acceptance, Redis killed for 20 s mid-run: two `mailwheel start` (the built CLI) on one
 * FerretDB database and a PRIVATE Redis (test/helpers/redis.ts privateRedis: no persistence,
 * down() is a SIGKILL, up() restarts it empty on the same port), 5,000 users due in one UTC
 * minute at `rate.perSecond` 100 (about 50 s of sending), into an SMTP server in a child process
 * recording each arrival (scripts/lib/arrival-capture.ts). Once 1,000 messages have arrived,
 * Redis goes down for 20 s, then comes back.
 *
 * - Sending pauses: nothing arrives from 5 s after the kill until Redis is back (a shared budget
 *   that does not answer grants nothing; 5 s lets messages already granted and in flight finish).
 * - While Redis is down each daemon's `/readyz` is 503 and names redis; after, 200 again.
 * - No window exceeded: every sliding second <= 100 at the server (certain count).
 * - Nothing lost: every due user exactly once in the end; sending resumes without help.
 * - The shared day window did not forget the sends before the outage: after it, the `perDay`
 *   window's use on `/stats` (`rateWindows.perDay.used`) is at least the messages that arrived before the kill.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ArrivalCapture } from '../../scripts/lib/arrival-capture.js';
import { countBetween, coverage, slidingMax } from '../../scripts/lib/arrivals.js';
import { untilIdleTwice, until, type DaemonStats, type MailwheelCluster } from '../../scripts/lib/mailwheel-cluster.js';
import { report, startClusterRun, type ClusterRun } from '../helpers/cluster.js';
import { privateRedis, type RedisServer } from '../helpers/redis.js';

const DAEMONS = 2;
const USERS = 5_000;
const LIMIT = 100;
const PER_DAY = 1_000_000;
const DOWN_AFTER = 1_000;
const OUTAGE_MS = 20_000;
const PAUSE_GRACE_MS = 5_000;
const LEAD_MS = 45_000;

let run: ClusterRun;
let smtp: ArrivalCapture;
let redis: RedisServer;
let cluster: MailwheelCluster;
let recipients: string[];
let dueAt: number;

/** The `used` of a rate window as /stats reports it (`rateWindows.<name>.used`; null while a shared budget is down). */
function windowUsed(stats: DaemonStats, name: 'perDay'): number | undefined {
  return stats.rateWindows?.[name]?.used ?? undefined;
}

const namesRedis = (body: unknown): boolean => /redis/i.test(JSON.stringify(body));

beforeAll(async () => {
  redis = await privateRedis();
  run = await startClusterRun({ name: 'cluster_redis_outage', users: USERS, prefix: 'o', leadMs: LEAD_MS, daemons: DAEMONS, redisUrl: redis.url, config: { rate: { perSecond: LIMIT, perDay: PER_DAY } } });
  ({ smtp, cluster, recipients, dueAt } = run);
}, 300_000);

afterAll(async () => {
  await run?.stop();
  await redis?.stop();
});

describe(`Redis killed for ${OUTAGE_MS / 1000} s mid-run (${DAEMONS} daemons, ${USERS.toLocaleString('en')} users, ${LIMIT}/s)`, () => {
  it('sending pauses, /readyz names redis, no window exceeded, every due user exactly once, sending resumes without help', { timeout: 900_000 }, async () => {
    await until(() => (smtp.arrivals.length >= DOWN_AFTER ? true : undefined), Math.max(0, dueAt - Date.now()) + 180_000, () => `${smtp.arrivals.length} of ${DOWN_AFTER} arrivals before the outage`, 100);
    const arrivedBefore = smtp.arrivals.length;
    const downAt = Date.now();
    await redis.down();

    // /readyz of every daemon says redis while it is down (bounded by the outage itself).
    const readyDuring = await Promise.all(
      cluster.daemons.map((d) =>
        until(async () => {
          const r = await d.readyz();
          return r.status === 503 && namesRedis(r.body) ? r : undefined;
        }, OUTAGE_MS - 1_000, () => 'readyz did not report redis').catch(async () => d.readyz().catch((err: unknown) => ({ status: -1, body: String(err) }))),
      ),
    );
    // The outage lasts OUTAGE_MS from the kill: the scenario's length, not a wait for a condition.
    await new Promise((r) => setTimeout(r, Math.max(0, downAt + OUTAGE_MS - Date.now())));
    const upAt = Date.now();
    await redis.up();
    const duringPause = countBetween(smtp.arrivals, downAt + PAUSE_GRACE_MS, upAt);
    const duringOutage = countBetween(smtp.arrivals, downAt, upAt);

    // Resumes by itself: every due user received (bounded), then both daemons idle twice in a row.
    try {
      await until(() => (smtp.countByRecipient().size >= USERS ? true : undefined), (USERS / LIMIT) * 2_000 + 120_000, () => `${smtp.countByRecipient().size} of ${USERS} users received`, 1_000);
    } catch (err) {
      console.log(`[cluster] ${(err as Error).message}`);
    }
    await untilIdleTwice(() => cluster.stats(), 120_000);
    const readyAfter = await Promise.all(cluster.daemons.map((d) => until(async () => ((await d.readyz()).status === 200 ? 200 : undefined), 60_000, () => 'readyz not 200 after the outage').catch(() => 503)));
    const stats = await cluster.stats();
    const dayUsed = stats.map((s) => windowUsed(s, 'perDay'));

    const cov = coverage(smtp.countByRecipient(), recipients);
    const window = slidingMax(smtp.arrivals, 1_000, LIMIT);
    const afterUp = countBetween(smtp.arrivals, upAt, Number.POSITIVE_INFINITY);
    report('redis outage', {
      arrivedBefore,
      duringOutage,
      duringPause,
      afterUp,
      readyDuring,
      readyAfter,
      dayUsed,
      messages: smtp.arrivals.length,
      missing: cov.missing.length,
      duplicates: cov.duplicates,
      slidingSecondMax: window,
    });
    for (const r of readyDuring) {
      expect.soft(r.status, '/readyz while Redis is down').toBe(503);
      expect.soft(namesRedis(r.body), `/readyz body names redis: ${JSON.stringify(r.body)}`).toBe(true);
    }
    expect.soft(duringPause, 'messages that arrived while Redis was down (after the grace)').toBe(0);
    expect.soft(window.certain, 'busiest sliding second at the server').toBeLessThanOrEqual(LIMIT);
    expect.soft(cov.missing, 'due users never received').toEqual([]);
    expect.soft(cov.duplicates).toBe(0);
    expect.soft(cov.unexpected).toBe(0);
    expect.soft(afterUp, 'sending resumed after Redis came back').toBeGreaterThan(0);
    expect.soft(readyAfter, '/readyz after the outage').toEqual(cluster.daemons.map(() => 200));
    for (const used of dayUsed) expect.soft(used ?? -1, 'perDay window use on /stats after the outage').toBeGreaterThanOrEqual(arrivedBefore);
  });
});
