/**
 * The status page's pure parts: the 24 h curve from the registry's buckets (checked against the
 * plan's own fire counting), the recent failures (bounded, addresses masked) and the broadcasts'
 * progress, rate and ETA.
 */
import { describe, expect, it } from 'vitest';
import { countFires } from '../../src/core/capacity-plan.js';
import { JobRegistry } from '../../src/core/job-registry.js';
import type { UserRecord } from '../../src/core/types.js';
import type { BroadcastDoc } from '../../src/ports/broadcasts.js';
import type { Outcome } from '../../src/ports/index.js';
import { SmtpError } from '../../src/errors.js';
import { broadcastRows, ProgressRates } from '../../src/status/broadcast-progress.js';
import { maskAddresses, RecentFailures, tapFailures } from '../../src/status/recent-failures.js';
import { FiredMinutes, sendCurve } from '../../src/status/send-curve.js';

// A June day: no zone used here changes its clock within the next 24 h.
const NOW = Date.parse('2027-06-10T10:17:25Z');
const FROM = Date.parse('2027-06-10T10:17:00Z');
const ZONES = ['UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Kolkata', 'Australia/Sydney', 'Pacific/Auckland'];

function users(n: number): UserRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `u${i}`,
    email: `u${i}@example.test`,
    name: undefined,
    timezone: ZONES[i % ZONES.length] as string,
    times: [`${String((i * 7) % 24).padStart(2, '0')}:${String((i * 13) % 60).padStart(2, '0')}`, ...(i % 3 === 0 ? ['10:20'] : [])],
    days: i % 5 === 0 ? [1, 3] : undefined,
  }));
}

describe('sendCurve', () => {
  it('counts the same fires per minute as the plan does (countFires on a copy), without draining the registry', () => {
    const live = new JobRegistry();
    const copy = new JobRegistry();
    for (const u of users(600)) {
      live.upsertUser(u, FROM);
      copy.upsertUser(u, FROM);
    }
    const before = live.bucketSizes();
    const curve = sendCurve(live.bucketSizes(), new FiredMinutes(), NOW, 1440, { perSecond: 10 });
    const planned = countFires(copy, FROM, 1440);
    expect(curve.fromMs).toBe(FROM);
    expect(Array.from(curve.scheduled)).toEqual(Array.from(planned));
    expect(curve.totals.scheduled).toBe(planned.reduce((a, b) => a + b, 0));
    expect(curve.totals.scheduled).toBeGreaterThan(400);
    expect(live.bucketSizes()).toEqual(before);
    expect(curve.capacityPerMinute).toBe(600);
    // The busiest minute first: 10:20 in several zones at once.
    const top = curve.peaks[0];
    expect(top?.sends).toBe(Math.max(...planned));
  });

  it('counts an overdue bucket in the first minute, the fired minutes as claimed, and no capacity without a short window', () => {
    const first = Math.floor(NOW / 60_000);
    const fired = new FiredMinutes();
    fired.note(first - 1, 7); // before the curve: not shown
    fired.note(first, 40);
    fired.note(first, 2);
    const curve = sendCurve([[first - 3, 5], [first, 1], [first + 10, 3], [first + 1440, 9]], fired, NOW, 1440, { perHour: 1000 });
    expect(curve.scheduled[0]).toBe(6);
    expect(curve.scheduled[10]).toBe(3);
    expect(curve.totals.scheduled).toBe(9);
    expect(curve.claimed[0]).toBe(42);
    expect(curve.totals.claimed).toBe(42);
    expect(curve.capacityPerMinute).toBeNull();
  });

  it('keeps fired counts for two hours only', () => {
    const fired = new FiredMinutes();
    fired.note(1000, 5);
    fired.note(1200, 1);
    expect(Array.from(fired.within(1000, 1))).toEqual([0]);
    expect(Array.from(fired.within(1200, 1))).toEqual([1]);
  });
});

describe('RecentFailures', () => {
  it('keeps the last N, newest first, with the domain only and every address in the reply masked', () => {
    const f = new RecentFailures(3);
    for (let i = 0; i < 5; i++) f.note(i, 'failed', { kind: 'scheduled', email: `Bob.${i}@Example.COM`, broadcastId: undefined }, { message: `550 5.1.1 <bob.${i}@example.com>: user unknown; cc alice+x@mail.example.org`, smtpCode: 550 }, 1);
    const list = f.list();
    expect(list.map((e) => e.atMs)).toEqual([4, 3, 2]);
    expect(f.seen).toBe(5);
    expect(list[0]).toMatchObject({ domain: 'example.com', smtpCode: 550, reply: '550 5.1.1 <…@example.com>: user unknown; cc …@mail.example.org' });
    expect(JSON.stringify(list)).not.toMatch(/bob|alice/i);
    expect(maskAddresses('421 try again later')).toBe('421 try again later');
  });

  it('taps the send hooks: failures and retries are noted, every call is passed on', async () => {
    const f = new RecentFailures();
    const seen: string[] = [];
    const hooks = tapFailures({ onOutcome: (o) => void seen.push(o.status), onRetry: (_d, attempt) => void seen.push(`retry ${attempt}`) }, f, { now: () => 123 } as never);
    const delivery = { key: 'k', kind: 'broadcast', userId: 'u', email: 'x@y.test', name: undefined, broadcastId: 'b1', dueAt: 0 } as const;
    await hooks.onOutcome({ delivery, status: 'sent', attempts: 1, latencyMs: 1 } satisfies Outcome);
    await hooks.onRetry?.(delivery, 1, 100, new SmtpError('451 later', { retryable: true, smtpCode: 451 }));
    await hooks.onOutcome({ delivery, status: 'failed', attempts: 2, latencyMs: 1, error: new SmtpError('554 no', { retryable: false, smtpCode: 554 }) });
    expect(seen).toEqual(['sent', 'retry 1', 'failed']);
    expect(f.list().map((e) => [e.outcome, e.smtpCode, e.broadcastId, e.domain, e.atMs])).toEqual([
      ['failed', 554, 'b1', 'y.test', 123],
      ['retry', 451, 'b1', 'y.test', 123],
    ]);
  });
});

describe('broadcastRows', () => {
  const doc = (over: Partial<BroadcastDoc>): BroadcastDoc => ({
    _id: 'b1',
    subject: 'Hello',
    text: 't',
    segment: '{}',
    status: 'running',
    createdAt: new Date(0),
    counters: { total: 1000, sent: 0, failed: 0, skipped: 0, suppressed: 0 },
    gen: 1,
    updatedAt: new Date(0),
    ...over,
  });

  it('progress from the live run, the rate over the last minute, and the ETA from what is left', () => {
    const rates = new ProgressRates();
    const live = (sent: number) => [{ id: 'b1', total: 1000, sent, failed: 0, skipped: 0, suppressed: 0 }];
    const [first] = broadcastRows([doc({})], live(100), rates, 0);
    expect(first).toMatchObject({ done: 100, progress: 0.1, ratePerSecond: null, etaSeconds: null, local: true });
    const [second] = broadcastRows([doc({})], live(300), rates, 10_000);
    expect(second).toMatchObject({ done: 300, ratePerSecond: 20, etaSeconds: 35 });
    // Samples older than a minute no longer count: the rate follows a slowdown.
    broadcastRows([doc({})], live(400), rates, 70_000);
    const [late] = broadcastRows([doc({})], live(400), rates, 80_000);
    expect(late?.ratePerSecond).toBeCloseTo(100 / 70, 5);
  });

  it('a paused broadcast has no ETA; a held one says until when; counters from the document when another daemon runs it', () => {
    const rates = new ProgressRates();
    const rows = broadcastRows(
      [doc({ status: 'paused', counters: { total: 10, sent: 4, failed: 1, skipped: 0, suppressed: 0 } }), doc({ _id: 'b2', status: 'queued', at: new Date(5_000), counters: { sent: 0, failed: 0, skipped: 0, suppressed: 0 } })],
      [],
      rates,
      1_000,
    );
    expect(rows[0]).toMatchObject({ id: 'b1', paused: true, done: 5, progress: 0.5, etaSeconds: null, local: false });
    expect(rows[1]).toMatchObject({ id: 'b2', heldUntil: new Date(5_000).toISOString(), total: null, progress: null });
  });
});
