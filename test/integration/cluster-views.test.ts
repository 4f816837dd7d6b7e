/**
 * `/stats` and `/metrics` show the cluster and the rate windows (issue 13), over HTTP from the
 * real daemon (App) on FerretDB and the test SMTP server:
 * - one instance (no Redis): the solo table (every partition, one member: itself), the windows'
 *   use counting what was sent, scope local; `mailwheel_redis_up` absent;
 * - with Redis: `redis.up` and `mailwheel_redis_up` follow a private Redis taken down and brought
 *   back, and `/stats` answers promptly while it is down.
 * - one partitioned instance: it holds every partition, its leases aged, the windows shared.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { testDb, type TestDb } from '../helpers/db.js';
import { parsePrometheusText, valueOf, type Family } from '../helpers/prom-text.js';
import { privateRedis, redisKeyPrefix, type RedisServer } from '../helpers/redis.js';
import { TestSmtpServer } from '../helpers/smtp-server.js';
import { usersDueAt } from '../helpers/users.js';

/** Twelve hours from now: whatever DST shifts the zones' local times by (±1 h), the daemon's own timer never fires these users during the test. */
const M1 = `2027-01-15T${String((new Date().getUTCHours() + 12) % 24).padStart(2, '0')}:00:00Z`;
const SENT = 20;

let db: TestDb;
let smtp: TestSmtpServer;
const apps: TestApp[] = [];

beforeAll(async () => {
  db = await testDb('cluster_views');
  smtp = await TestSmtpServer.start();
  await db.db.collection('users').insertMany(usersDueAt(SENT, M1, 'cv'));
});

afterAll(async () => {
  for (const t of apps) await t.app.close();
  await smtp?.close();
  await db?.cleanup();
});

async function started(overrides: Record<string, unknown>): Promise<{ t: TestApp; get: (path: string) => Promise<Response> }> {
  const t = await startTestApp(db.uri, smtp.url, { http: { enabled: true, host: '127.0.0.1', port: 0 }, ...overrides });
  apps.push(t);
  await t.app.start();
  const base = `http://127.0.0.1:${t.app.httpPort}`;
  return { t, get: (path) => fetch(`${base}${path}`) };
}

interface StatsBody {
  instance: string;
  cluster: Record<string, unknown>;
  rateWindows: Record<string, Record<string, unknown>>;
  redis: { up: boolean } | null;
}

const statsOf = async (get: (p: string) => Promise<Response>): Promise<StatsBody> => (await (await get('/stats')).json()) as StatsBody;
const metricsOf = async (get: (p: string) => Promise<Response>): Promise<Map<string, Family>> => parsePrometheusText(await (await get('/metrics')).text());

describe('one instance (no cluster.redisUrl)', () => {
  it('/stats and /metrics: the solo table, the windows counting the sends, no redis', { timeout: 90_000 }, async () => {
    const { t, get } = await started({ rate: { perSecond: null, perMinute: 1_000, perHour: null, perDay: 5_000 } });
    const report = await t.app.runMinute(Date.parse(M1));
    expect(report).toMatchObject({ due: SENT, sent: SENT });

    const s = await statsOf(get);
    expect(s.cluster).toEqual({
      mode: 'solo',
      self: t.app.instances.id,
      partitions: 256,
      owned: 256,
      free: 0,
      leaseTtlMs: 0,
      members: [{ id: t.app.instances.id, partitions: 256, heartbeatAgeMs: 0, oldestLeaseAgeMs: null, newestLeaseAgeMs: null }],
      leases: { held: 0, oldestAgeMs: null, newestAgeMs: null, soonestExpiryMs: null },
    });
    expect(s.rateWindows).toEqual({
      perMinute: { limit: 1_000, used: SENT, windowMs: 60_000, scope: 'local', state: 'up' },
      perDay: { limit: 5_000, used: SENT, windowMs: 86_400_000, scope: 'local', state: 'up' },
    });
    expect(s.redis).toBeNull();
    // The components' numbers are still there, merged with the cluster half.
    expect(s.instance).toBe(t.app.instances.id);

    const m = await metricsOf(get);
    expect(valueOf(m, 'mailwheel_cluster_members')).toBe(1);
    expect(valueOf(m, 'mailwheel_partitions_owned')).toBe(256);
    expect(valueOf(m, 'mailwheel_partitions_total')).toBe(256);
    expect(valueOf(m, 'mailwheel_rate_window_used', { window: 'perDay' })).toBe(SENT);
    expect(valueOf(m, 'mailwheel_rate_window_limit', { window: 'perDay' })).toBe(5_000);
    expect(valueOf(m, 'mailwheel_rate_window_used', { window: 'perMinute' })).toBe(SENT);
    expect(m.get('mailwheel_rate_window_used')?.samples.map((x) => x.labels['window']).sort()).toEqual(['perDay', 'perMinute']);
    expect(m.get('mailwheel_redis_up')?.samples).toEqual([]);
    expect(m.get('mailwheel_partition_lease_age_seconds')?.samples).toEqual([]);
  });
});

describe('with Redis (cluster.redisUrl)', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await privateRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('redis up / down / up: /stats and mailwheel_redis_up follow, /stats answers while it is down', { timeout: 120_000 }, async () => {
    const { get } = await started({ cluster: { redisUrl: redis.url, keyPrefix: redisKeyPrefix('views') } });
    const up = async () => valueOf(await metricsOf(get), 'mailwheel_redis_up');
    await vi.waitFor(async () => expect((await statsOf(get)).redis).toEqual({ up: true }), { timeout: 30_000, interval: 100 });
    expect(await up()).toBe(1);

    await redis.down();
    await vi.waitFor(async () => expect(await up()).toBe(0), { timeout: 30_000, interval: 100 });
    const s = await statsOf(get);
    expect(s.redis).toEqual({ up: false });
    expect(s.cluster).toMatchObject({ mode: 'partitioned', partitions: 256 });
    expect(s.cluster).toHaveProperty('error');
    const m = await metricsOf(get);
    expect(m.get('mailwheel_cluster_members')?.samples).toEqual([]);
    expect(valueOf(m, 'mailwheel_partitions_total')).toBe(256);

    await redis.up();
    await vi.waitFor(async () => expect(await up()).toBe(1), { timeout: 30_000, interval: 100 });
    expect((await statsOf(get)).redis).toEqual({ up: true });
  });

  // Awaits the partition leases (and the shared windows): the final shape with one member.
  it('one partitioned instance: it holds every partition, leases aged, windows shared', { timeout: 120_000 }, async () => {
    const { t, get } = await started({ cluster: { redisUrl: redis.url, keyPrefix: redisKeyPrefix('views1'), leaseTtlMs: 5_000 }, rate: { perSecond: 100, perMinute: 1_000, perHour: null, perDay: null } });
    const self = t.app.instances.id;
    await vi.waitFor(async () => expect((await statsOf(get)).cluster).toMatchObject({ mode: 'partitioned', self, owned: 256, free: 0 }), { timeout: 30_000, interval: 200 });
    const s = await statsOf(get);
    expect(s.cluster['members']).toEqual([expect.objectContaining({ id: self, partitions: 256 })]);
    expect(s.cluster['leases']).toMatchObject({ held: 256 });
    expect(s.rateWindows['perMinute']).toMatchObject({ limit: 1_000, scope: 'shared', state: 'up' });
    const m = await metricsOf(get);
    expect(valueOf(m, 'mailwheel_cluster_members')).toBe(1);
    expect(valueOf(m, 'mailwheel_partitions_owned')).toBe(256);
    expect(valueOf(m, 'mailwheel_partition_lease_age_seconds')).toBeGreaterThanOrEqual(0);
    expect(valueOf(m, 'mailwheel_redis_up')).toBe(1);
  });
});
