/**
 * `/metrics` for bounces and complaints: the reports and refusals counters, today's rates over the
 * cluster's sends, and the per-broadcast rates of the broadcasts running, paused or finished in
 * the last 24 h (bounded). Scraped as Prometheus text and parsed strictly. The stores are small
 * in-memory stand-ins for the ports (the Mongo reader is exercised by test/cli/broadcast-feedback).
 */
import { describe, expect, it, vi } from 'vitest';
import { DaySends, feedbackRateReader, MAX_RATED_BROADCASTS, ratedBroadcasts } from '../../src/app/feedback-rates.js';
import { RefusalCounter } from '../../src/core/feedback-refusals.js';
import { Metrics } from '../../src/metrics/metrics.js';
import type { BroadcastDoc, BroadcastStatus } from '../../src/ports/broadcasts.js';
import type { FeedbackCounts, FeedbackTally } from '../../src/ports/feedback.js';
import type { SentCounter } from '../../src/ports/stores.js';
import { SoloMember } from '../../src/core/solo-member.js';
import { FakeClock, flushMicrotasks } from '../helpers/fake-clock.js';
import { parsePrometheusText, valueOf } from '../helpers/prom-text.js';

const NOW = '2026-03-08T15:00:00Z';
const HOUR = 3_600_000;

function metrics(): Metrics {
  return new Metrics(
    {
      queue: () => ({ waiting: 0, inFlight: 0, ratePerSecond: null, rateRatio: 1, breaker: { state: 'closed', opens: 0, probes: 0 } }),
      dispatcher: () => ({ backlog: 0, stats: { claimed: 0, skipped: 0, suppressed: 0, released: 0 } }),
      registry: () => ({ jobs: 0, users: 0, nextFireMinute: undefined }),
      analytics: () => ({ size: 0, limit: 1, waiting: 0, stats: { written: 0, writeErrors: 0, peak: 0, blocked: 0 }, byType: new Map() }),
      scheduler: () => ({ lastProcessedMinute: undefined, checkpointMinute: undefined }),
      cluster: () => ({ member: new SoloMember('me', 4), budget: { scope: 'local', state: 'up', use: async () => [] }, redisUp: undefined }),
    },
    { defaultMetrics: false },
  );
}

function broadcast(id: string, status: BroadcastStatus, sent: number, createdAgoMs: number, finishedAgoMs?: number, now = Date.parse(NOW)): BroadcastDoc {
  return {
    _id: id,
    subject: 's',
    text: 't',
    segment: '{}',
    status,
    createdAt: new Date(now - createdAgoMs),
    counters: { sent, failed: 0, skipped: 0, suppressed: 0 },
    gen: 1,
    updatedAt: new Date(now),
    ...(finishedAgoMs === undefined ? {} : { finishedAt: new Date(now - finishedAgoMs) }),
  };
}

/** The feedback_counts documents, by `_id`, as the sink keeps them. */
class MemoryCounts implements FeedbackCounts {
  readonly docs = new Map<string, FeedbackTally>();
  async forBroadcast(id: string): Promise<FeedbackTally> {
    return this.docs.get(`b:${id}`) ?? { hardBounces: 0, softBounces: 0, complaints: 0 };
  }
  async forDay(day: string): Promise<FeedbackTally> {
    return this.docs.get(`d:${day}`) ?? { hardBounces: 0, softBounces: 0, complaints: 0 };
  }
}

/** Delivery records' sends at given instants; counts those within the window like MongoSentCounter. */
class MemorySent implements SentCounter {
  readonly at: number[] = [];
  reads = 0;
  async countSent(now: number, windowsMs: readonly number[]): Promise<number[]> {
    this.reads++;
    return windowsMs.map((w) => this.at.filter((t) => now - t <= w).length);
  }
}

async function scrape(m: Metrics): Promise<ReturnType<typeof parsePrometheusText>> {
  return parsePrometheusText(await m.text());
}

function setup() {
  const clock = new FakeClock(NOW);
  const counts = new MemoryCounts();
  const sent = new MemorySent();
  let local = 0;
  const daySends = new DaySends({ sent, localSent: () => local, clock, refreshMs: 10 * 60_000 });
  const docs: BroadcastDoc[] = [];
  const refusals = new RefusalCounter();
  const reports = new Map<string, { source: 'ses' | 'dsn' | 'arf'; kind: 'hard-bounce' | 'soft-bounce' | 'complaint'; n: number }>();
  const m = metrics();
  m.setFeedbackSource({
    reports: () => reports.values(),
    refusals: () => refusals.counts(),
    rates: feedbackRateReader({ counts, broadcasts: { list: async () => docs }, daySends, clock }),
  });
  return { clock, counts, sent, daySends, docs, refusals, reports, m, sendLocally: (n: number) => (local += n) };
}

describe('/metrics: bounces and complaints', () => {
  it('mirrors the reports per source and kind and the refusals per source and reason', async () => {
    const s = setup();
    s.reports.set('dsn/hard', { source: 'dsn', kind: 'hard-bounce', n: 7 });
    s.reports.set('arf/complaint', { source: 'arf', kind: 'complaint', n: 2 });
    for (let i = 0; i < 3; i++) s.refusals.refuse('ses', 'bad-signature');
    s.refusals.refuse('dsn', 'unknown-message');
    const m = await scrape(s.m);
    expect(m.get('mailwheel_feedback_reports_total')?.type).toBe('counter');
    expect(valueOf(m, 'mailwheel_feedback_reports_total', { source: 'dsn', kind: 'hard-bounce' })).toBe(7);
    expect(valueOf(m, 'mailwheel_feedback_reports_total', { source: 'arf', kind: 'complaint' })).toBe(2);
    expect(valueOf(m, 'mailwheel_feedback_refused_total', { source: 'ses', reason: 'bad-signature' })).toBe(3);
    expect(valueOf(m, 'mailwheel_feedback_refused_total', { source: 'dsn', reason: 'unknown-message' })).toBe(1);
  });

  it("rates today's reports over today's sends (UTC day), adding this instance's sends since the last read", async () => {
    const s = setup();
    const now = s.clock.now();
    // 1,000 sends today, 500 yesterday (not counted), then 1,000 more here after the read.
    for (let i = 0; i < 1_000; i++) s.sent.at.push(now - (i % 10) * HOUR);
    for (let i = 0; i < 500; i++) s.sent.at.push(now - 20 * HOUR);
    s.counts.docs.set('d:2026-03-08', { hardBounces: 20, softBounces: 9, complaints: 3 });
    s.counts.docs.set('d:2026-03-07', { hardBounces: 999, softBounces: 0, complaints: 999 });

    // The first scrape starts the read and does not wait for it: no day rate yet, rather than a guess.
    let m = await scrape(s.m);
    expect(() => valueOf(m, 'mailwheel_bounce_rate', { period: 'day' })).toThrow(/no series/);
    await vi.waitFor(() => expect(s.daySends.today()).toBe(1_000));
    m = await scrape(s.m);
    expect(valueOf(m, 'mailwheel_bounce_rate', { period: 'day' })).toBeCloseTo(0.02, 12);
    expect(valueOf(m, 'mailwheel_complaint_rate', { period: 'day' })).toBeCloseTo(0.003, 12);

    s.sendLocally(1_000);
    m = await scrape(s.m);
    expect(valueOf(m, 'mailwheel_bounce_rate', { period: 'day' })).toBeCloseTo(0.01, 12);
    expect(s.sent.reads).toBe(1);
  });

  it('reads the sends again after refreshMs, and from scratch on a new UTC day', async () => {
    const s = setup();
    s.sent.at.push(s.clock.now());
    await s.daySends.refresh();
    expect(s.daySends.today()).toBe(1);
    s.clock.advance(10 * 60_000);
    s.sent.at.push(s.clock.now());
    expect(s.daySends.today()).toBe(1); // the stale value, while the read runs
    await flushMicrotasks();
    expect(s.daySends.today()).toBe(2);
    s.clock.advance(9 * HOUR); // 2026-03-09T00:10Z
    expect(s.daySends.today()).toBeUndefined();
    await flushMicrotasks();
    expect(s.daySends.today()).toBe(0);
  });

  it('nothing sent today: no day rate (no division by zero)', async () => {
    const s = setup();
    s.counts.docs.set('d:2026-03-08', { hardBounces: 1, softBounces: 0, complaints: 1 });
    await s.daySends.refresh();
    const m = await scrape(s.m);
    expect(m.get('mailwheel_bounce_rate')?.samples).toEqual([]);
    expect(m.get('mailwheel_complaint_rate')?.samples).toEqual([]);
  });

  it('rates each running, paused or recently finished broadcast; not older ones, nor one that sent nothing', async () => {
    const s = setup();
    s.docs.push(
      broadcast('run', 'running', 2_000, HOUR),
      broadcast('paused', 'paused', 1_000, 2 * HOUR),
      broadcast('recent', 'done', 500, 30 * HOUR, 23 * HOUR),
      broadcast('old', 'done', 500, 50 * HOUR, 25 * HOUR),
      broadcast('queued', 'queued', 0, 0),
      broadcast('fresh', 'running', 0, 0),
    );
    s.counts.docs.set('b:run', { hardBounces: 40, softBounces: 5, complaints: 2 });
    s.counts.docs.set('b:paused', { hardBounces: 0, softBounces: 0, complaints: 6 });
    s.counts.docs.set('b:recent', { hardBounces: 5, softBounces: 0, complaints: 0 });
    s.counts.docs.set('b:old', { hardBounces: 5, softBounces: 0, complaints: 5 });
    s.counts.docs.set('b:fresh', { hardBounces: 1, softBounces: 0, complaints: 1 });
    const m = await scrape(s.m);
    expect(valueOf(m, 'mailwheel_broadcast_bounce_rate', { broadcast: 'run' })).toBeCloseTo(0.02, 12);
    expect(valueOf(m, 'mailwheel_broadcast_complaint_rate', { broadcast: 'run' })).toBeCloseTo(0.001, 12);
    expect(valueOf(m, 'mailwheel_broadcast_complaint_rate', { broadcast: 'paused' })).toBeCloseTo(0.006, 12);
    expect(valueOf(m, 'mailwheel_broadcast_bounce_rate', { broadcast: 'recent' })).toBeCloseTo(0.01, 12);
    const labelled = new Set(m.get('mailwheel_broadcast_bounce_rate')?.samples.map((x) => x.labels['broadcast']));
    expect(labelled).toEqual(new Set(['run', 'paused', 'recent']));
  });

  it('keeps the broadcast series bounded, newest first', () => {
    const now = Date.parse(NOW);
    const docs = Array.from({ length: MAX_RATED_BROADCASTS + 5 }, (_, i) => broadcast(`b${i}`, 'running', 10, i * 1_000));
    const rated = ratedBroadcasts(docs, now);
    expect(rated).toHaveLength(MAX_RATED_BROADCASTS);
    expect(rated[0]?._id).toBe('b0');
    expect(rated.map((d) => d._id)).not.toContain(`b${MAX_RATED_BROADCASTS}`);
  });

  it('a rates read that fails leaves the rate series out; the counters still scrape', async () => {
    const m = metrics();
    m.setFeedbackSource({ reports: () => [{ source: 'ses', kind: 'complaint', n: 1 }], refusals: () => [], rates: () => Promise.reject(new Error('mongo down')) });
    const f = await scrape(m);
    expect(valueOf(f, 'mailwheel_feedback_reports_total', { source: 'ses', kind: 'complaint' })).toBe(1);
    expect(f.get('mailwheel_broadcast_bounce_rate')?.samples).toEqual([]);
    expect(f.get('mailwheel_bounce_rate')?.samples).toEqual([]);
  });
});
