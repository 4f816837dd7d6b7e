/**
 * What `/stats` and `/metrics` make of the cluster ports (issue 13): the partition table summed up
 * per member with the lease ages' extremes, the rate windows with their scope and state, a part
 * that does not answer reported as such (never a failed or hung scrape), and every metric name
 * documented in README's metrics table. The ports are implemented here by hand: the real leases
 * and shared windows are tested with Redis in their own files, and the solo member with the
 * daemon in test/integration/cluster-views.test.ts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { summarizeCluster, windowsReport } from '../../src/app/cluster-view.js';
import { clusterStats } from '../../src/app/stats.js';
import { renderReport } from '../../src/cli/commands/cluster.js';
import { SoloMember } from '../../src/core/solo-member.js';
import { Metrics, type MetricSources } from '../../src/metrics/metrics.js';
import type { BudgetView, ClusterMember, ClusterStatus, WindowUse } from '../../src/ports/cluster.js';
import { FakeClock, flushMicrotasks } from '../helpers/fake-clock.js';
import { parsePrometheusText, valueOf } from '../helpers/prom-text.js';
import { repoRoot } from '../helpers/cli.js';

/** Three members over 8 partitions: a holds 0-3, b holds 4-6, c (just joined) none; 7 is free. */
const TABLE: ClusterStatus = {
  mode: 'partitioned',
  self: 'a',
  partitions: 8,
  leaseTtlMs: 15_000,
  members: [
    { id: 'a', partitions: 4, heartbeatAgeMs: 1_000 },
    { id: 'b', partitions: 3, heartbeatAgeMs: 2_500 },
    { id: 'c', partitions: 0, heartbeatAgeMs: 300 },
  ],
  leases: [
    ...[0, 1, 2, 3].map((p) => ({ partition: p, owner: 'a', ageMs: 60_000 + p * 1_000, expiresInMs: 10_000 + p })),
    ...[4, 5, 6].map((p) => ({ partition: p, owner: 'b', ageMs: 5_000 * p, expiresInMs: 9_000 + p })),
  ],
};

function fakeMember(status: () => Promise<ClusterStatus>, owned = 4): ClusterMember {
  return {
    mode: 'partitioned',
    partitions: 8,
    owned: () => new Set(Array.from({ length: owned }, (_, i) => i)),
    onChange: () => undefined,
    start: async () => undefined,
    stop: async () => undefined,
    status,
  };
}

const WINDOWS: WindowUse[] = [
  { name: 'perSecond', windowMs: 1_000, limit: 200, used: 37 },
  { name: 'perDay', windowMs: 86_400_000, limit: 30, used: 12 },
];

function budget(scope: BudgetView['scope'], use: () => Promise<WindowUse[]>, state: BudgetView['state'] = 'up'): BudgetView {
  return { scope, state, use };
}

function metricsOf(cluster: ReturnType<MetricSources['cluster']>): Metrics {
  const none = () => undefined as never;
  return new Metrics(
    {
      queue: () => ({ waiting: 0, inFlight: 0, ratePerSecond: null, rateRatio: 1, breaker: { state: 'closed', opens: 0, probes: 0 } }),
      dispatcher: () => ({ backlog: 0, stats: { claimed: 0, skipped: 0, suppressed: 0, released: 0 } }),
      registry: () => ({ jobs: 0, users: 0, nextFireMinute: undefined }),
      analytics: () => ({ size: 0, limit: 1, waiting: 0, stats: { written: 0, writeErrors: 0, peak: 0, blocked: 0 }, byType: new Map() }),
      scheduler: () => ({ lastProcessedMinute: undefined, checkpointMinute: undefined }),
      cluster: () => cluster ?? none(),
    },
    { defaultMetrics: false },
  );
}

describe('summarizeCluster', () => {
  it('per member: partitions, heartbeat age, its oldest and newest lease; free partitions; lease extremes', () => {
    const s = summarizeCluster(TABLE);
    expect(s).toMatchObject({ mode: 'partitioned', self: 'a', partitions: 8, owned: 4, free: 1, leaseTtlMs: 15_000 });
    expect(s.members).toEqual([
      { id: 'a', partitions: 4, heartbeatAgeMs: 1_000, oldestLeaseAgeMs: 63_000, newestLeaseAgeMs: 60_000 },
      { id: 'b', partitions: 3, heartbeatAgeMs: 2_500, oldestLeaseAgeMs: 30_000, newestLeaseAgeMs: 20_000 },
      { id: 'c', partitions: 0, heartbeatAgeMs: 300, oldestLeaseAgeMs: null, newestLeaseAgeMs: null },
    ]);
    expect(s.leases).toEqual({ held: 7, oldestAgeMs: 63_000, newestAgeMs: 20_000, soonestExpiryMs: 9_004 });
  });

  it('the solo member owns every partition, has no leases, and one member: itself', async () => {
    const s = summarizeCluster(await new SoloMember('me', 256).status());
    expect(s).toEqual({
      mode: 'solo',
      self: 'me',
      partitions: 256,
      owned: 256,
      free: 0,
      leaseTtlMs: 0,
      members: [{ id: 'me', partitions: 256, heartbeatAgeMs: 0, oldestLeaseAgeMs: null, newestLeaseAgeMs: null }],
      leases: { held: 0, oldestAgeMs: null, newestAgeMs: null, soonestExpiryMs: null },
    });
  });
});

describe('windowsReport', () => {
  it('each window keyed by name with its limit, use, length, scope and state', async () => {
    expect(await windowsReport(budget('shared', async () => WINDOWS), { perSecond: 200, perDay: 30 })).toEqual({
      perSecond: { limit: 200, used: 37, windowMs: 1_000, scope: 'shared', state: 'up' },
      perDay: { limit: 30, used: 12, windowMs: 86_400_000, scope: 'shared', state: 'up' },
    });
  });

  it('a shared budget that does not answer: the configured windows with used null, state down', async () => {
    const down = budget('shared', () => Promise.reject(new Error('redis down')), 'down');
    expect(await windowsReport(down, { perSecond: 200, perMinute: null, perHour: 100, perDay: null })).toEqual({
      perSecond: { limit: 200, used: null, windowMs: 1_000, scope: 'shared', state: 'down' },
      perHour: { limit: 100, used: null, windowMs: 3_600_000, scope: 'shared', state: 'down' },
    });
  });
});

describe('clusterStats (the async half of /stats)', () => {
  const parts = (member: ClusterMember, b: BudgetView, clock: FakeClock, up: boolean | undefined) => ({
    cluster: { member, redis: up === undefined ? undefined : { up } },
    budget: b,
    clock,
    loaded: { config: { rate: { perSecond: 200, perMinute: null, perHour: null, perDay: 30 } } },
  });

  it('answers with the summary, the windows and whether redis is up', async () => {
    const s = await clusterStats(parts(fakeMember(async () => TABLE), budget('shared', async () => WINDOWS), new FakeClock(0), true));
    expect(s.cluster).toEqual(summarizeCluster(TABLE));
    expect(s.rateWindows['perDay']).toEqual({ limit: 30, used: 12, windowMs: 86_400_000, scope: 'shared', state: 'up' });
    expect(s.redis).toEqual({ up: true });
  });

  it('a table that cannot be read: mode, owned and the error, never a rejection', async () => {
    const s = await clusterStats(parts(fakeMember(() => Promise.reject(new Error('MW_REDIS_UNAVAILABLE: redis down'))), budget('shared', async () => WINDOWS), new FakeClock(0), false));
    expect(s.cluster).toEqual({ mode: 'partitioned', owned: 4, partitions: 8, error: 'MW_REDIS_UNAVAILABLE: redis down' });
    expect(s.redis).toEqual({ up: false });
  });

  it('a hung store is given up on after the timeout on the clock: the table as an error, the windows as down', async () => {
    const clock = new FakeClock(0);
    const hung = () => new Promise<never>(() => undefined);
    let answer: Awaited<ReturnType<typeof clusterStats>> | undefined;
    void clusterStats(parts(fakeMember(hung), budget('shared', hung), clock, true), 2_000).then((s) => (answer = s));
    await flushMicrotasks();
    clock.advance(1_999);
    await flushMicrotasks();
    expect(answer).toBeUndefined();
    clock.advance(1);
    await vi_waitFor(() => answer !== undefined);
    expect(answer?.cluster).toMatchObject({ error: 'no answer within 2000 ms' });
    expect(answer?.rateWindows).toEqual({
      perSecond: { limit: 200, used: null, windowMs: 1_000, scope: 'shared', state: 'down' },
      perDay: { limit: 30, used: null, windowMs: 86_400_000, scope: 'shared', state: 'down' },
    });
    expect(clock.pending).toBe(0);
  });
});

describe('the cluster metrics', () => {
  it('partitioned: members, owned, total, the oldest own lease, each window, redis up; one status() and one use() per scrape', async () => {
    let statusCalls = 0;
    let useCalls = 0;
    const member = fakeMember(async () => (statusCalls++, TABLE));
    const b = budget('shared', async () => (useCalls++, WINDOWS));
    const m = parsePrometheusText(await metricsOf({ member, budget: b, redisUp: true }).text());
    expect(valueOf(m, 'mailwheel_cluster_members')).toBe(3);
    expect(valueOf(m, 'mailwheel_partitions_owned')).toBe(4);
    expect(valueOf(m, 'mailwheel_partitions_total')).toBe(8);
    expect(valueOf(m, 'mailwheel_partition_lease_age_seconds')).toBe(63);
    expect(valueOf(m, 'mailwheel_rate_window_used', { window: 'perSecond' })).toBe(37);
    expect(valueOf(m, 'mailwheel_rate_window_limit', { window: 'perDay' })).toBe(30);
    expect(valueOf(m, 'mailwheel_redis_up')).toBe(1);
    expect([statusCalls, useCalls]).toEqual([1, 1]);
    for (const name of ['mailwheel_cluster_members', 'mailwheel_rate_window_used', 'mailwheel_redis_up']) expect(m.get(name)?.help).not.toBe('');
  });

  it('redis down: redis_up 0, the unread parts absent, the scrape still answers', async () => {
    const fail = () => Promise.reject(new Error('redis down'));
    const m = parsePrometheusText(await metricsOf({ member: fakeMember(fail), budget: budget('shared', fail, 'down'), redisUp: false }).text());
    expect(valueOf(m, 'mailwheel_redis_up')).toBe(0);
    expect(valueOf(m, 'mailwheel_partitions_owned')).toBe(4);
    for (const name of ['mailwheel_cluster_members', 'mailwheel_partition_lease_age_seconds', 'mailwheel_rate_window_used', 'mailwheel_rate_window_limit']) {
      expect(m.get(name)?.samples ?? [], name).toEqual([]);
    }
  });

  it('solo: one member, every partition, no lease age, no redis_up', async () => {
    const m = parsePrometheusText(await metricsOf({ member: new SoloMember('me', 256), budget: budget('local', async () => []), redisUp: undefined }).text());
    expect(valueOf(m, 'mailwheel_cluster_members')).toBe(1);
    expect(valueOf(m, 'mailwheel_partitions_owned')).toBe(256);
    expect(valueOf(m, 'mailwheel_partitions_total')).toBe(256);
    expect(m.get('mailwheel_partition_lease_age_seconds')?.samples).toEqual([]);
    expect(m.get('mailwheel_redis_up')?.samples).toEqual([]);
  });
});

describe('cluster status, the text form', () => {
  it('partitioned: one line per member with host, pid, partitions, heartbeat and lease ages; leases; windows down while redis does not answer', () => {
    const sum = summarizeCluster(TABLE);
    const text = renderReport({
      mode: 'partitioned',
      redis: '10.0.0.5:6379',
      partitions: 8,
      free: sum.free,
      leaseTtlMs: 15_000,
      members: sum.members.map((m, i) => ({ ...m, host: i < 2 ? `h${i}` : null, pid: i < 2 ? 100 + i : null })),
      leases: sum.leases,
      rateWindows: { perDay: { limit: 30, used: null, windowMs: 86_400_000, scope: 'shared', state: 'down' } },
    });
    expect(text.split('\n')).toEqual([
      'partitioned over redis 10.0.0.5:6379: 8 partitions, 3 member(s), 1 free, lease ttl 15 s',
      '  a  host h0  pid 100  partitions 4  heartbeat 1 s ago  leases 60 s..63 s old',
      '  b  host h1  pid 101  partitions 3  heartbeat 3 s ago  leases 20 s..30 s old',
      '  c  not in the instance directory  partitions 0  heartbeat 300 ms ago  no leases',
      'leases: 7 held, ages 20 s..63 s, next expiry in 9 s',
      'rate windows, shared by every instance (redis): NOT ANSWERING:',
      '  perDay    ? of 30 used',
      '',
    ]);
  });
});

describe("README's metrics table", () => {
  it('documents every metric mailwheel registers (prom-client process metrics aside)', async () => {
    const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
    const documented = documentedMetrics(readme);
    const registered = (await metricsOf({ member: new SoloMember('me', 4), budget: budget('local', async () => []), redisUp: undefined }).registry.getMetricsAsJSON()).map((f) => f.name);
    expect(registered.length).toBeGreaterThan(30);
    expect(registered.filter((n) => !documented.has(n))).toEqual([]);
  });
});

/**
 * The metric names of the table under "HTTP and metrics": every backquoted name in a row, labels
 * dropped; a name written `_suffix` continues the row's first name's `mailwheel_<area>`.
 */
function documentedMetrics(readme: string): Set<string> {
  const out = new Set<string>();
  for (const line of readme.split('\n')) {
    if (!line.startsWith('| `mailwheel_')) continue;
    const names = [...line.split('|')[1]!.matchAll(/`([^`]+)`/g)].map((m) => m[1]!.replace(/\{.*\}$/, ''));
    const area = /^mailwheel_[a-z]+/.exec(names[0] ?? '')?.[0] ?? '';
    for (const n of names) out.add(n.startsWith('_') ? `${area}${n}` : n);
  }
  return out;
}

/** Waits for `cond` across macrotask turns (promise chains with several hops). */
async function vi_waitFor(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !cond(); i++) await flushMicrotasks();
  expect(cond()).toBe(true);
}
