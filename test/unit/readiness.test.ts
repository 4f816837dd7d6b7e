/**
 * `/readyz`'s logic on a fake clock: every check must pass, an open breaker answers without a
 * handshake, and a handshake's answer is reused for `smtpCheckCacheMs` after a success and
 * `smtpCheckFailedCacheMs` after a failure (config http.*), shared by concurrent probes.
 */
import { describe, expect, it } from 'vitest';
import { Readiness } from '../../src/app/readiness.js';
import type { BreakerState } from '../../src/ports/index.js';
import { FakeClock, flushMicrotasks } from '../helpers/fake-clock.js';

function setup(answers: boolean[], withRedis = false) {
  const clock = new FakeClock('2026-01-05T09:00:00Z');
  const state: { synced: boolean; breaker: BreakerState; mongoUp: boolean; handshakes: number; redisUp: boolean } = { synced: true, breaker: 'closed', mongoUp: true, handshakes: 0, redisUp: true };
  const readiness = new Readiness(
    {
      synced: () => state.synced,
      pingMongo: async () => {
        if (!state.mongoUp) throw new Error('down');
      },
      verifySmtp: async () => answers[state.handshakes++] ?? true,
      breaker: () => state.breaker,
      ...(withRedis
        ? {
            pingRedis: async () => {
              if (!state.redisUp) throw new Error('Stream is not writeable');
            },
          }
        : {}),
      clock,
    },
    { smtpCheckCacheMs: 30_000, smtpCheckFailedCacheMs: 5_000 },
  );
  return { clock, state, readiness };
}

describe('Readiness', () => {
  it('ready only when synced, MongoDB answers and SMTP answers', async () => {
    const t = setup([true]);
    expect(await t.readiness.check()).toEqual({ ok: true, synced: true, mongodb: true, smtp: true, breaker: 'closed' });
    t.state.synced = false;
    expect((await t.readiness.check()).ok).toBe(false);
    t.state.synced = true;
    t.state.mongoUp = false;
    expect(await t.readiness.check()).toMatchObject({ ok: false, mongodb: false });
  });

  it('with Redis configured: not ready while Redis does not answer, and the body names redis', async () => {
    const t = setup([true], true);
    expect(await t.readiness.check()).toEqual({ ok: true, synced: true, mongodb: true, smtp: true, breaker: 'closed', redis: true });
    t.state.redisUp = false;
    expect(await t.readiness.check()).toEqual({ ok: false, synced: true, mongodb: true, smtp: true, breaker: 'closed', redis: false });
    t.state.redisUp = true;
    expect(await t.readiness.check()).toMatchObject({ ok: true, redis: true });
  });

  it('an open breaker is unreachable without a handshake', async () => {
    const t = setup([]);
    t.state.breaker = 'open';
    expect(await t.readiness.check()).toMatchObject({ ok: false, smtp: false, breaker: 'open' });
    expect(t.state.handshakes).toBe(0);
  });

  it('reuses a success for smtpCheckCacheMs and a failure for smtpCheckFailedCacheMs', async () => {
    const t = setup([true, false, true]);
    await Promise.all([t.readiness.smtpReachable(), t.readiness.smtpReachable()]);
    expect(t.state.handshakes).toBe(1);
    await flushMicrotasks();
    t.clock.jump(30_000);
    expect(await t.readiness.smtpReachable()).toBe(true);
    expect(t.state.handshakes).toBe(1);
    t.clock.jump(1);
    expect(await t.readiness.smtpReachable()).toBe(false);
    expect(t.state.handshakes).toBe(2);
    await flushMicrotasks();
    t.clock.jump(5_000);
    expect(await t.readiness.smtpReachable()).toBe(false);
    t.clock.jump(1);
    expect(await t.readiness.smtpReachable()).toBe(true);
    expect(t.state.handshakes).toBe(3);
  });
});
