/**
 * A timestamp gauge whose source has no value yet (no checkpoint saved, no minute processed,
 * nothing scheduled) has NO sample, as metrics.ts promises, rather than 0: prom-client writes 0
 * for a label-less gauge after a reset, and a 0 timestamp reads as "56 years ago" — the alert
 * MailwheelDueMinuteUnsent (`time() - mailwheel_scheduler_checkpoint_timestamp_seconds > 900`)
 * would fire on every daemon still in its first sync, and the dashboard's "Next fire in" would
 * show minus 56 years while nothing is scheduled.
 */
import { describe, expect, it } from 'vitest';
import { Metrics, type MetricSources } from '../../src/metrics/metrics.js';
import type { ClusterMember } from '../../src/ports/cluster.js';
import { parsePrometheusText } from '../helpers/prom-text.js';

const TIMESTAMPS = ['mailwheel_scheduler_checkpoint_timestamp_seconds', 'mailwheel_scheduler_last_minute_timestamp_seconds', 'mailwheel_next_fire_timestamp_seconds'];

function metricsWith(minutes: { checkpoint?: number; processed?: number; nextFire?: number }): Metrics {
  const member: ClusterMember = {
    mode: 'solo',
    partitions: 1,
    owned: () => new Set([0]),
    onChange: () => undefined,
    start: async () => undefined,
    stop: async () => undefined,
    status: () => Promise.reject(new Error('the cluster is not what this test reads')),
  };
  const sources: MetricSources = {
    queue: () => ({ waiting: 0, inFlight: 0, ratePerSecond: null, rateRatio: 1, breaker: { state: 'closed', opens: 0, probes: 0 } }),
    dispatcher: () => ({ backlog: 0, stats: { claimed: 0, skipped: 0, suppressed: 0, released: 0 } }),
    registry: () => ({ jobs: 0, users: 0, nextFireMinute: minutes.nextFire }),
    analytics: () => ({ size: 0, limit: 1, waiting: 0, stats: { written: 0, writeErrors: 0, peak: 0, blocked: 0 }, byType: new Map() }),
    scheduler: () => ({ lastProcessedMinute: minutes.processed, checkpointMinute: minutes.checkpoint }),
    cluster: () => ({ member, budget: { scope: 'local', state: 'up', use: async () => [] }, redisUp: undefined }),
  };
  return new Metrics(sources, { defaultMetrics: false });
}

describe('timestamp gauges', () => {
  it('have no sample while their source has no value (the family is still declared)', async () => {
    const m = parsePrometheusText(await metricsWith({}).text());
    for (const name of TIMESTAMPS) {
      expect(m.get(name)?.type, name).toBe('gauge');
      expect(m.get(name)?.samples, name).toEqual([]);
    }
  });

  it('show the minute start in seconds once there is one', async () => {
    const minute = 29_500_000; // an epoch minute in 2026
    const m = parsePrometheusText(await metricsWith({ checkpoint: minute, processed: minute + 1, nextFire: minute + 2 }).text());
    expect(TIMESTAMPS.map((n) => m.get(n)?.samples.map((s) => s.value))).toEqual([[minute * 60], [(minute + 1) * 60], [(minute + 2) * 60]]);
  });
});
