/**
 * ArrivalGate: a send starts only while (in flight + completed in the last second) < limit, so no
 * sliding one-second window of completions can exceed the limit, whatever the latencies.
 */
import { describe, expect, it } from 'vitest';
import { ArrivalGate } from '../../src/adapters/smtp/arrival-gate.js';

describe('ArrivalGate', () => {
  it('admits up to the limit, then waits until the oldest completion leaves the window', () => {
    const g = new ArrivalGate(3);
    expect([g.tryStart(0), g.tryStart(0), g.tryStart(0)]).toEqual([0, 0, 0]);
    expect(g.tryStart(0)).toBeGreaterThan(0); // three in flight
    g.finish(100);
    // 2 in flight + 1 completed at t=100: still full until t=1100 has passed.
    expect(g.tryStart(500)).toBe(601);
    expect(g.tryStart(1101)).toBe(0);
  });

  it('never lets a sliding window of completions exceed the limit (randomised latencies)', () => {
    const limit = 50;
    const g = new ArrivalGate(limit);
    let now = 0;
    const inFlight: number[] = []; // completion times
    const completions: number[] = [];
    let rnd = 12345;
    const random = () => ((rnd = (rnd * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    while (completions.length < 2000) {
      // Complete what is due, then try to start as many as allowed.
      inFlight.sort((a, b) => a - b);
      while (inFlight.length > 0 && (inFlight[0] as number) <= now) {
        const t = inFlight.shift() as number;
        g.finish(t);
        completions.push(t);
      }
      while (g.tryStart(now) === 0) inFlight.push(now + 1 + Math.floor(random() * (random() < 0.1 ? 300 : 20)));
      now += 1;
    }
    let max = 0;
    for (let i = 0, j = 0; i < completions.length; i++) {
      while ((completions[i] as number) - (completions[j] as number) >= 1000) j++;
      max = Math.max(max, i - j + 1);
    }
    expect(max).toBeLessThanOrEqual(limit);
    // And it does not starve: 2,000 completions at 50/s take about 40 s of simulated time.
    expect(now).toBeLessThan(45_000);
  });
});
