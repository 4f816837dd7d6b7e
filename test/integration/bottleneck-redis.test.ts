/**
 * Issue 13's decisive test: does Bottleneck 2.19.5's own clustering (`datastore: 'ioredis'`) work
 * on Debian's Redis 7.0? SGrondin/bottleneck #205 and #219 report `ERR SETTINGS_KEY_NOT_FOUND` on
 * Redis 7 (one comment: "limiting does not work at all"). Two limiters with the same `id` play two
 * mailwheel instances; every job records when it started, which is what an SMTP server would see.
 *
 * VERDICT (measured here, asserted below): AGAINST Bottleneck clustering for the shared windows.
 * While Redis keeps its keys and every limiter keeps being seen, it does share minTime (20 starts
 * over >= 1.9 s), maxConcurrent (at most 2 of 12 at once) and a reservoir (20 of 30 jobs, then
 * exactly 5 more on a +5) between two limiters on Redis 7.0. But it never recovers from either
 * event a 20 s Redis outage brings: Redis 7 prefixes a Lua `error_reply` with "ERR ", so
 * Bottleneck's recovery tests (`e.message === "SETTINGS_KEY_NOT_FOUND"` / `"UNKNOWN_CLIENT"`,
 * lib/RedisDatastore.js) never match. After a restart without persistence every job fails with
 * `ERR SETTINGS_KEY_NOT_FOUND`; an instance unseen for longer than clientTimeout (10 s) is dropped
 * and every later job of it fails with `ERR UNKNOWN_CLIENT`, until the limiter is rebuilt by hand.
 * Bottleneck has had no release since 2019 (docs/ARCHITECTURE.md "Known limits").
 */
import Bottleneck from 'bottleneck';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { redisServerVersion } from '../../scripts/lib/redis-server.js';
import { gapStats, maxInSlidingWindow } from '../helpers/rate-fidelity.js';
import { privateRedis, redisKeyPrefix, redisOptions, sharedRedisUrl, type RedisServer } from '../helpers/redis.js';

const WAIT = { timeout: 60_000, interval: 20 };

/** Every limiter a test made, disconnected after it (without QUIT: Redis may be down). */
const open: Bottleneck[] = [];

afterEach(async () => {
  const limiters = open.splice(0);
  await Promise.all(limiters.map((l) => l.disconnect(false).catch(() => undefined)));
});

/**
 * Two limiters sharing one Bottleneck id in Redis, as two mailwheel instances would. The first
 * clears whatever an earlier run left under that id; the second joins what the first created.
 */
/** Bottleneck's Redis options its typings leave out (lib/Bottleneck.js redisStoreDefaults). */
type ClusterOptions = Bottleneck.ConstructorOptions & { clientTimeout?: number; heartbeatInterval?: number };

async function twoInstances(url: string, settings: ClusterOptions): Promise<{ a: Bottleneck; b: Bottleneck; errors: string[]; id: string }> {
  const errors: string[] = [];
  const id = redisKeyPrefix('bn');
  const make = async (clearDatastore: boolean): Promise<Bottleneck> => {
    const limiter = new Bottleneck({
      id,
      ...settings,
      datastore: 'ioredis',
      Redis,
      clearDatastore,
      // No offline queue limit beyond ioredis' default; reconnect quickly after an outage.
      clientOptions: { ...redisOptions(url), retryStrategy: (times: number) => Math.min(times * 50, 500) },
    });
    limiter.on('error', (err: unknown) => errors.push(err instanceof Error ? err.message : String(err)));
    open.push(limiter);
    await limiter.ready();
    return limiter;
  };
  const a = await make(true);
  const b = await make(false);
  return { a, b, errors, id };
}

/** Jobs run nothing but record when they started (and which limiter ran them). */
function recorder(): { starts: Array<{ at: number; by: string }>; job: (by: string) => () => Promise<string> } {
  const starts: Array<{ at: number; by: string }> = [];
  return { starts, job: (by) => () => Promise.resolve(void starts.push({ at: Date.now(), by })).then(() => by) };
}

function local(l: Bottleneck): { queued: number; active: number } {
  const c = l.counts();
  return { queued: c.RECEIVED + c.QUEUED, active: c.RUNNING + c.EXECUTING };
}

describe('Bottleneck 2.19.5 clustering (datastore ioredis) on Debian Redis 7.0', () => {
  let url: string;
  beforeAll(() => {
    url = sharedRedisUrl();
    // The verdict is about Redis 7: make a different server visible in the output.
    console.log(`[bottleneck-redis] ${redisServerVersion() ?? 'redis-server version unknown'}`);
  });

  it('Bottleneck clustering on Redis 7 shares minTime between two limiters: 20 starts are spaced 100 ms apart in total', async () => {
    const { a, b, errors } = await twoInstances(url, { minTime: 100 });
    const { starts, job } = recorder();
    const before = Date.now();
    const runs = [...Array.from({ length: 10 }, () => a.schedule(job('a'))), ...Array.from({ length: 10 }, () => b.schedule(job('b')))];
    await Promise.all(runs);
    const last = Math.max(...starts.map((s) => s.at));
    const gaps = gapStats(starts.map((s) => s.at));
    console.log(`[bottleneck-redis] minTime 100 shared: 20 starts over ${last - before} ms, gaps min ${gaps.min} / median ${gaps.median} / max ${gaps.max} ms`);
    // One shared chain of `nextRequest` in Redis: the 20th start is at least 19 x 100 ms after the
    // first could have started. Two private limiters would be done after 9 x 100 ms. (A lower
    // bound only: a loaded machine delays timers, it never fires them early.)
    expect(last - before).toBeGreaterThanOrEqual(19 * 100 - 2);
    expect(errors).toEqual([]);
  });

  it('Bottleneck clustering on Redis 7 shares maxConcurrent 2 between two limiters: never more than 2 jobs run at once', async () => {
    const { a, b, errors } = await twoInstances(url, { maxConcurrent: 2 });
    let running = 0;
    let most = 0;
    // Each job holds its slot for 150 ms (the work of a send), long enough for a third to start if
    // the limit were per limiter.
    const job = (): Promise<void> => {
      running++;
      most = Math.max(most, running);
      return new Promise((resolve) =>
        setTimeout(() => {
          running--;
          resolve();
        }, 150),
      );
    };
    const done = await Promise.all([...Array.from({ length: 6 }, () => a.schedule(job)), ...Array.from({ length: 6 }, () => b.schedule(job))]);
    console.log(`[bottleneck-redis] maxConcurrent 2 shared: at most ${most} of 12 jobs ran at once`);
    expect(done).toHaveLength(12);
    // Two private limiters would run 4 at once (measured when the ids differed by mistake).
    expect(most).toBeLessThanOrEqual(2);
    expect(errors).toEqual([]);
  });

  it('Bottleneck clustering on Redis 7 shares a reservoir of 20 between two limiters: 20 of 30 jobs run, then 5 more when it grows by 5', async () => {
    const { a, b, errors } = await twoInstances(url, { reservoir: 20 });
    const { starts, job } = recorder();
    const failures: string[] = [];
    const note = (p: Promise<string>): void => void p.catch((err: unknown) => failures.push(String(err)));
    for (let i = 0; i < 15; i++) {
      note(a.schedule(job('a')));
      note(b.schedule(job('b')));
    }
    // Settled: nothing is between registration and completion on either limiter, and either the
    // shared reservoir is empty or nothing is left to run.
    const settled = async (): Promise<void> => {
      const [ra, rb] = [local(a), local(b)];
      const reservoir = await a.currentReservoir();
      // Every job either started or is still queued: a job taken from the queue but not yet
      // started (Bottleneck's RUNNING before EXECUTING, long on a loaded machine) is neither.
      const accounted = starts.length + ra.queued + rb.queued === 30;
      if (!accounted || ra.active + rb.active > 0 || (reservoir !== 0 && ra.queued + rb.queued > 0)) throw new Error(`not settled: ${JSON.stringify({ ra, rb, reservoir, started: starts.length })}`);
    };
    await vi.waitFor(settled, WAIT);
    const byA = starts.filter((s) => s.by === 'a').length;
    console.log(`[bottleneck-redis] reservoir 20 shared: ${starts.length} of 30 jobs ran (a ${byA}, b ${starts.length - byA}); queued ${local(a).queued + local(b).queued}`);
    expect(starts).toHaveLength(20);
    expect(await b.currentReservoir()).toBe(0);
    expect(local(a).queued + local(b).queued).toBe(10);

    // A refill from one instance (as a window refresh would be) is shared: exactly 5 more run.
    await b.incrementReservoir(5);
    await vi.waitFor(async () => {
      await settled();
      if (starts.length < 25) throw new Error(`${starts.length} ran`);
    }, WAIT);
    console.log(`[bottleneck-redis] after incrementReservoir(5): ${starts.length} ran`);
    expect(starts).toHaveLength(25);
    expect(errors).toEqual([]);
    expect(failures).toEqual([]);
  });

  it('Bottleneck clustering on Redis 7 at 200 per second (minTime 5 ms) from two limiters: the shared second holds (sliding second measured)', async () => {
    const { a, b, errors } = await twoInstances(url, { minTime: 5 });
    const { starts, job } = recorder();
    const began = Date.now();
    await Promise.all([...Array.from({ length: 300 }, () => a.schedule(job('a'))), ...Array.from({ length: 300 }, () => b.schedule(job('b')))]);
    const took = Date.now() - began;
    const times = starts.map((s) => s.at);
    const sliding = maxInSlidingWindow(times, 1000);
    const gaps = gapStats(times);
    console.log(
      `[bottleneck-redis] 200/s shared, 600 jobs: took ${took} ms (${((600 * 1000) / took).toFixed(0)}/s), max per sliding second ${sliding}, ` +
        `gaps min ${gaps.min} / median ${gaps.median} / max ${gaps.max} ms`,
    );
    // As for 100 ms: 600 starts on one chain of 5 ms need at least 599 x 5 ms.
    expect(Math.max(...times) - began).toBeGreaterThanOrEqual(599 * 5 - 2);
    // Starts are timers fired in this process: a late one can bunch with the next, so a sliding
    // second may see one or two more than the 200 the chain in Redis granted.
    // Shared, not doubled (two private limiters: ~400). Not exactly 200 either: the starts are
    // timers fired in this process, and a late one bunches with the next (204 to 216 measured
    // on the 2-core machine); an exact cap at the server needs more than Bottleneck's spacing.
    expect(sliding).toBeLessThan(300);
    expect(errors).toEqual([]);
  });

  it('Bottleneck clustering on Redis 7 locks out an instance unseen for longer than clientTimeout: its jobs then fail with ERR UNKNOWN_CLIENT', async () => {
    // Any process_tick drops a client with nothing running that has not been seen for
    // clientTimeout (10 s by default: shorter than the 20 s Redis outage, or a long stall).
    // 300 ms here, with the heartbeat (5 s) too slow to keep `a` seen meanwhile.
    const { a, b, errors, id } = await twoInstances(url, { clientTimeout: 300 });
    const { starts, job } = recorder();
    await a.schedule(job('a'));
    const reader = new Redis(redisOptions(url));
    try {
      // b's jobs tick the shared state until `a` is dropped from the clients seen.
      await vi.waitFor(async () => {
        await b.schedule(job('b'));
        expect(await reader.zcard(`b_${id}_client_last_seen`)).toBe(1);
      }, WAIT);
    } finally {
      reader.disconnect();
    }
    const outcome = await a.schedule(job('a')).then((by) => `ran ${by}`, (err: unknown) => (err instanceof Error ? err.message : String(err)));
    const again = await a.schedule(job('a')).then((by) => `ran ${by}`, (err: unknown) => (err instanceof Error ? err.message : String(err)));
    console.log(`[bottleneck-redis] after being dropped: ${JSON.stringify([outcome, again])}; 'error' events ${JSON.stringify(errors)}`);
    // On Redis 6 Bottleneck re-registers on "UNKNOWN_CLIENT"; Redis 7 says "ERR UNKNOWN_CLIENT".
    expect([outcome, again]).toEqual(['ERR UNKNOWN_CLIENT', 'ERR UNKNOWN_CLIENT']);
    expect(starts.filter((s) => s.by === 'a')).toHaveLength(1);
  });

  describe('after a Redis restart without persistence (the issue\'s "Redis killed for 20 s")', () => {
    let redis: RedisServer;
    beforeAll(async () => {
      redis = await privateRedis();
    });
    afterAll(async () => {
      await redis?.stop();
    });

    it('Bottleneck clustering on Redis 7 does not recover: every job after the restart fails with ERR SETTINGS_KEY_NOT_FOUND', async () => {
      const { a, b, errors } = await twoInstances(redis.url, { reservoir: 100 });
      const { starts, job } = recorder();
      await Promise.all([a.schedule(job('a')), b.schedule(job('b'))]);
      expect(starts).toHaveLength(2);

      await redis.down();
      await redis.up();

      // Each job either runs or is rejected; bounded, never a fixed wait. ioredis reconnects by
      // itself within its retry strategy (500 ms at most between attempts).
      const outcome = (p: Promise<string>): Promise<string> => p.then((by) => `ran ${by}`, (err: unknown) => (err instanceof Error ? err.message : String(err)));
      const after = await Promise.all([outcome(a.schedule(job('a'))), outcome(b.schedule(job('b')))]);
      // And it stays broken: a later job fails the same way (on Redis 6 the first would have
      // re-created the settings and run).
      const later = await outcome(a.schedule(job('a')));
      console.log(`[bottleneck-redis] after restart: ${JSON.stringify(after)}, later ${JSON.stringify(later)}; limiter 'error' events ${errors.length}`);
      expect(after).toEqual(['ERR SETTINGS_KEY_NOT_FOUND', 'ERR SETTINGS_KEY_NOT_FOUND']);
      expect(later).toBe('ERR SETTINGS_KEY_NOT_FOUND');
      expect(starts).toHaveLength(2);
    });
  });
});
