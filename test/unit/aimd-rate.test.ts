/**
 * AimdRate: multiplicative decrease on a deferral (once per window, and not for messages started
 * before the last decrease), additive increase per accepted message back to the configured rate,
 * a floor relative to that rate. Simulated sending at the controller's own rate checks where it
 * settles against a server that defers a fixed share whatever the pace, and one that defers
 * only above a pace it accepts.
 */
import { describe, expect, it } from 'vitest';
import { AimdRate, type AimdOptions } from '../../src/adapters/smtp/aimd-rate.js';

const OPTS: AimdOptions = { maxRate: 50, decrease: 0.7, windowMs: 2000, recoveryPerSecond: 0.2, floor: 0.1 };

/** Sends at the controller's rate for `seconds`; `defers(rate, i)` says whether message i is deferred. Returns the average rate. */
function simulate(aimd: AimdRate, seconds: number, defers: (rate: number, i: number) => boolean): { average: number; min: number; max: number } {
  let now = 0;
  let i = 0;
  let sum = 0;
  let min = Infinity;
  let max = 0;
  let samples = 0;
  while (now < seconds * 1000) {
    const rate = aimd.rate;
    sum += rate;
    samples++;
    if (now > 10_000) {
      min = Math.min(min, rate);
      max = Math.max(max, rate);
    }
    // 50 ms of latency: the answer comes after the next messages have started.
    if (defers(rate, i++)) aimd.deferred(now + 50, now);
    else aimd.accepted();
    now += 1000 / rate;
  }
  return { average: sum / samples, min, max };
}

describe('AimdRate', () => {
  it('starts at the configured rate; a deferral multiplies it by `decrease`', () => {
    const a = new AimdRate(OPTS);
    expect(a.rate).toBe(50);
    expect(a.slowed).toBe(false);
    expect(a.deferred(1000, 990)).toBe(true);
    expect(a.rate).toBeCloseTo(35);
    expect(a.slowed).toBe(true);
    expect(a.decreases).toBe(1);
  });

  it('counts a burst of deferrals once: not again within the window, nor for messages started before the decrease', () => {
    const a = new AimdRate(OPTS);
    a.deferred(1000, 990);
    expect(a.deferred(1500, 1200)).toBe(false); // within the window
    expect(a.deferred(3500, 900)).toBe(false); // past the window, but sent at the old rate
    expect(a.rate).toBeCloseTo(35);
    expect(a.deferred(3500, 3400)).toBe(true);
    expect(a.rate).toBeCloseTo(24.5);
  });

  it('never goes below floor x the configured rate', () => {
    const a = new AimdRate(OPTS);
    for (let t = 0; t < 100_000; t += 2000) a.deferred(t, t);
    expect(a.rate).toBeCloseTo(5); // 10 % of 50, not an absolute rate
    const b = new AimdRate({ ...OPTS, maxRate: 1000 });
    for (let t = 0; t < 100_000; t += 2000) b.deferred(t, t);
    expect(b.rate).toBeCloseTo(100);
  });

  it('recovers by recoveryPerSecond x the configured rate per second of accepted sending, up to the configured rate', () => {
    const a = new AimdRate(OPTS);
    for (let t = 0; t < 100_000; t += 2000) a.deferred(t, t);
    expect(a.rate).toBeCloseTo(5);
    // Sending at its own rate for one second adds about 0.2 x 50 = 10/s.
    let elapsed = 0;
    while (elapsed < 1000) {
      elapsed += 1000 / a.rate;
      a.accepted();
    }
    expect(a.rate).toBeGreaterThan(13);
    expect(a.rate).toBeLessThan(17);
    let reached = false;
    for (let i = 0; i < 1000 && !reached; i++) reached = a.accepted();
    expect(reached).toBe(true);
    expect(a.rate).toBe(50);
    expect(a.slowed).toBe(false);
    expect(a.accepted()).toBe(false);
    expect(a.rate).toBe(50);
  });

  it('a server deferring 30 % of messages whatever the pace: the rate stays well above half, never near the floor', () => {
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const r = simulate(new AimdRate(OPTS), 300, () => random() < 0.3);
    expect(r.average).toBeGreaterThan(0.6 * 50);
    expect(r.min).toBeGreaterThan(0.3 * 50);
  });

  it('a server deferring everything above 20/s: the rate settles just under 20/s, not at the floor', () => {
    const r = simulate(new AimdRate(OPTS), 300, (rate) => rate > 20);
    expect(r.max).toBeLessThan(22);
    expect(r.min).toBeGreaterThan(12);
    expect(r.average).toBeGreaterThan(15);
  });

  it('refuses a non-positive ceiling', () => {
    expect(() => new AimdRate({ ...OPTS, maxRate: 0 })).toThrow(RangeError);
  });
});
