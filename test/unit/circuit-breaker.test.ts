/**
 * CircuitBreaker on a fake clock: it opens after `threshold` consecutive connection failures and
 * probes with backoff (probeBaseMs x 2^n, capped at probeMaxMs) on the injected clock, closing on
 * the first successful probe; a close for good stops the probing.
 */
import { describe, expect, it } from 'vitest';
import { CircuitBreaker, type BreakerState } from '../../src/adapters/smtp/circuit-breaker.js';
import { FakeClock } from '../helpers/fake-clock.js';

function setup(answers: boolean[]) {
  const clock = new FakeClock(0);
  const probedAt: number[] = [];
  const changes: BreakerState[] = [];
  const probe = async (): Promise<boolean> => {
    probedAt.push(clock.now());
    return answers.shift() ?? true;
  };
  const breaker = new CircuitBreaker({ threshold: 3, probeMaxMs: 5000 }, probe, (s) => changes.push(s), clock);
  return { clock, breaker, probedAt, changes };
}

describe('CircuitBreaker', () => {
  it('opens at the threshold and probes at 1, 2, 4, then 5 s (the cap) apart on the injected clock', async () => {
    const { clock, breaker, probedAt, changes } = setup([false, false, false, true]);
    expect([breaker.failure(), breaker.failure()]).toEqual([false, false]);
    expect(breaker.failure()).toBe(true);
    expect(changes).toEqual(['open']);
    expect(clock.nextTimerAt()).toBe(1000);

    await clock.advanceAsync(20_000);
    expect(probedAt).toEqual([1000, 3000, 7000, 12_000]);
    expect(changes).toEqual(['open', 'closed']);
    expect(breaker.state).toBe('closed');
    expect(breaker.probes).toBe(4);
    expect(clock.pending).toBe(0);
  });

  it('stops probing for good on close()', async () => {
    const { clock, breaker, probedAt } = setup([false]);
    for (let i = 0; i < 3; i++) breaker.failure();
    expect(clock.pending).toBe(1);
    breaker.close();
    expect(clock.pending).toBe(0);
    await clock.advanceAsync(60_000);
    expect(probedAt).toEqual([]);
  });
});
