/**
 * `mailwheel_ready` and `mailwheel_ready_check{check}` (issue 18: the "readiness failing" alert
 * needs a series): they follow what the real Readiness answers (fake clock, fake pings), one check
 * per scrape for both gauges, and a check that does not answer within the timeout reads as not
 * ready without holding up the scrape.
 */
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { Readiness } from '../../src/app/readiness.js';
import { registerReadinessGauges } from '../../src/metrics/readiness-gauges.js';
import { FakeClock, flushMicrotasks } from '../helpers/fake-clock.js';
import { parsePrometheusText, valueOf } from '../helpers/prom-text.js';

function setup(withRedis: boolean) {
  const clock = new FakeClock('2026-12-03T09:00:00Z');
  const state = { synced: true, mongo: 'up' as 'up' | 'down' | 'hang', smtp: true, redis: true, checks: 0 };
  const readiness = new Readiness(
    {
      synced: () => state.synced,
      pingMongo: () => {
        if (state.mongo === 'hang') return new Promise(() => {});
        return state.mongo === 'up' ? Promise.resolve() : Promise.reject(new Error('down'));
      },
      verifySmtp: async () => state.smtp,
      breaker: () => 'closed',
      ...(withRedis ? { pingRedis: () => (state.redis ? Promise.resolve('PONG') : Promise.reject(new Error('down'))) } : {}),
      clock,
    },
    // No caching of the handshake: each scrape sees the SMTP answer set just before it.
    { smtpCheckCacheMs: -1, smtpCheckFailedCacheMs: -1 },
  );
  const registry = new Registry();
  registerReadinessGauges(
    registry,
    () => {
      state.checks++;
      return readiness.check();
    },
    { clock, timeoutMs: 2_000 },
  );
  return { clock, state, scrape: async () => parsePrometheusText(await registry.metrics()) };
}

const checksOf = (m: ReturnType<typeof parsePrometheusText>): Record<string, number> =>
  Object.fromEntries((m.get('mailwheel_ready_check')?.samples ?? []).map((s) => [s.labels.check, s.value]));

describe('readiness gauges', () => {
  it('1 while every check passes, 0 naming the failing check otherwise; one check per scrape', async () => {
    const t = setup(false);
    let m = await t.scrape();
    expect(valueOf(m, 'mailwheel_ready')).toBe(1);
    expect(checksOf(m)).toEqual({ synced: 1, mongodb: 1, smtp: 1 });
    expect(t.state.checks).toBe(1);

    t.state.mongo = 'down';
    m = await t.scrape();
    expect(valueOf(m, 'mailwheel_ready')).toBe(0);
    expect(checksOf(m)).toEqual({ synced: 1, mongodb: 0, smtp: 1 });

    t.state.mongo = 'up';
    t.state.synced = false;
    t.state.smtp = false;
    m = await t.scrape();
    expect(valueOf(m, 'mailwheel_ready')).toBe(0);
    expect(checksOf(m)).toEqual({ synced: 0, mongodb: 1, smtp: 0 });
    expect(t.state.checks).toBe(3);
  });

  it('with Redis, a Redis that does not answer is named', async () => {
    const t = setup(true);
    expect(checksOf(await t.scrape())).toEqual({ synced: 1, mongodb: 1, smtp: 1, redis: 1 });
    t.state.redis = false;
    const m = await t.scrape();
    expect(valueOf(m, 'mailwheel_ready')).toBe(0);
    expect(checksOf(m)).toEqual({ synced: 1, mongodb: 1, smtp: 1, redis: 0 });
  });

  it('a check hanging past the timeout reads as not ready, with no per-check samples', async () => {
    const t = setup(false);
    t.state.mongo = 'hang';
    let done = false;
    const scraping = t.scrape().then((m) => {
      done = true;
      return m;
    });
    await flushMicrotasks();
    await t.clock.advanceAsync(1_999);
    expect(done).toBe(false);
    await t.clock.advanceAsync(1);
    const m = await scraping;
    expect(valueOf(m, 'mailwheel_ready')).toBe(0);
    expect(m.get('mailwheel_ready_check')?.samples).toEqual([]);
    // The next scrape asks again (a timed-out read is not kept).
    t.state.mongo = 'up';
    expect(valueOf(await t.scrape(), 'mailwheel_ready')).toBe(1);
    expect(t.state.checks).toBe(2);
  });
});
