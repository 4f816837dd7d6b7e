/**
 * The relay choice (relay-set.ts SmoothWeighted): shares follow the weights and are spread out,
 * a relay that is not eligible (down, or already tried in this send) gets nothing and its share
 * goes to the others, and a relay back from an outage starts afresh instead of catching up.
 * Plus how the config becomes relays and the send queue's concurrency.
 */
import { describe, expect, it } from 'vitest';
import { relayCapacity, relaysOf, SmoothWeighted } from '../../src/adapters/smtp/relay-set.js';
import type { Config } from '../../src/config/schema.js';

function picks(wrr: SmoothWeighted, n: number, eligible: (i: number) => boolean = () => true): Array<number | undefined> {
  return Array.from({ length: n }, () => wrr.pick(eligible));
}

function counts(xs: Array<number | undefined>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) out[String(x)] = (out[String(x)] ?? 0) + 1;
  return out;
}

describe('SmoothWeighted', () => {
  it('gives each relay its weight share, interleaved (5:1:1 is a a b a c a a)', () => {
    const wrr = new SmoothWeighted([5, 1, 1]);
    expect(picks(wrr, 7)).toEqual([0, 0, 1, 0, 2, 0, 0]);
    expect(counts(picks(wrr, 700))).toEqual({ 0: 500, 1: 100, 2: 100 });
  });

  it('3:1 never sends more than 3 in a row to the heavier one', () => {
    const seq = picks(new SmoothWeighted([3, 1]), 400);
    expect(counts(seq)).toEqual({ 0: 300, 1: 100 });
    let run = 0;
    let longest = 0;
    for (const x of seq) longest = Math.max(longest, (run = x === 0 ? run + 1 : 0));
    expect(longest).toBe(3);
  });

  it('a relay that is not eligible gets nothing; the others share its traffic by their weights', () => {
    const wrr = new SmoothWeighted([2, 1, 1]);
    const down = 0;
    expect(counts(picks(wrr, 200, (i) => i !== down))).toEqual({ 1: 100, 2: 100 });
    expect(wrr.pick(() => false)).toBeUndefined();
  });

  it('after reset, a recovered relay gets its share again, not a burst making up for the outage', () => {
    const wrr = new SmoothWeighted([1, 1]);
    picks(wrr, 101, (i) => i === 1); // relay 0 down for a while
    wrr.reset(0);
    const after = picks(wrr, 20);
    expect(counts(after)).toEqual({ 0: 10, 1: 10 });
    expect(after.slice(0, 4).filter((x) => x === 0)).toHaveLength(2);
  });
});

describe('relaysOf and relayCapacity', () => {
  const smtp = (over: Partial<Config['smtp']>): Config['smtp'] =>
    ({ url: 'smtp://a.example:25', from: 'x <x@example.com>', poolSize: 10, maxMessagesPerConnection: 100, rejectUnauthorized: true, ca: null, connectionTimeoutMs: 1000, socketTimeoutMs: 1000, relays: [], ...over }) as Config['smtp'];

  it('no relays: smtp.url is the one relay, with smtp.poolSize (the behaviour before)', () => {
    expect(relaysOf(smtp({}))).toEqual([{ url: 'smtp://a.example:25', weight: 1, poolSize: 10, setting: 'smtp.url' }]);
    expect(relayCapacity(smtp({}))).toBe(10);
  });

  it('relays replace smtp.url; a null poolSize is smtp.poolSize; the capacity is the sum of the pools', () => {
    const s = smtp({ relays: [{ url: 'smtp://b.example:587', weight: 3, poolSize: 4 }, { url: 'smtp://c.example:587', weight: 1, poolSize: null }] });
    expect(relaysOf(s)).toEqual([
      { url: 'smtp://b.example:587', weight: 3, poolSize: 4, setting: 'smtp.relays[0].url' },
      { url: 'smtp://c.example:587', weight: 1, poolSize: 10, setting: 'smtp.relays[1].url' },
    ]);
    expect(relayCapacity(s)).toBe(14);
  });
});
