/**
 * What a start restores of the rate windows (core/rate-windows.ts): which windows are counted,
 * the arithmetic of what is left, and the grant limiter starting each window's reservoir with it
 * (real Bottleneck; the windows are a minute or longer, so nothing refreshes during a test).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { GrantLimiter } from '../../src/adapters/smtp/grant-limiter.js';
import { configuredWindows, tokensLeft } from '../../src/core/rate-windows.js';
import { DAY_MS, HOUR_MS, MINUTE_MS } from '../../src/core/time.js';
import { FakeClock } from '../helpers/fake-clock.js';

describe('configuredWindows', () => {
  it('lists the minute, hour and day windows that have a limit, shortest first; the second is never restored', () => {
    expect(configuredWindows({ perDay: 30, perMinute: 5 })).toEqual([
      { name: 'perMinute', ms: MINUTE_MS, limit: 5 },
      { name: 'perDay', ms: DAY_MS, limit: 30 },
    ]);
    expect(configuredWindows({ perMinute: null, perHour: 100, perDay: undefined })).toEqual([{ name: 'perHour', ms: HOUR_MS, limit: 100 }]);
  });

  it('is empty when none of them is configured (nothing to count at start)', () => {
    expect(configuredWindows({ perMinute: null, perHour: null, perDay: null })).toEqual([]);
    expect(configuredWindows({})).toEqual([]);
  });
});

describe('tokensLeft', () => {
  it('is the limit less the sends already made, never below 0', () => {
    expect(tokensLeft(30, undefined)).toBe(30);
    expect(tokensLeft(30, 0)).toBe(30);
    expect(tokensLeft(30, 12)).toBe(18);
    expect(tokensLeft(30, 30)).toBe(0);
    expect(tokensLeft(30, 95)).toBe(0);
  });
});

describe('GrantLimiter started with sends already made', () => {
  const limiters: GrantLimiter[] = [];
  const limiter = (...args: ConstructorParameters<typeof GrantLimiter>) => {
    const g = new GrantLimiter(...args);
    limiters.push(g);
    return g;
  };
  afterEach(async () => {
    for (const g of limiters.splice(0)) {
      g.stop();
      await g.disconnect();
    }
  });

  it('starts each configured window with its limit less the restored sends, and grants count from there', async () => {
    const g = limiter({ perSecond: null, perMinute: 10, perHour: 100, perDay: 30 }, 0, { perMinute: 3, perHour: 20, perDay: 25 });
    expect(await g.left()).toEqual({ perMinute: 7, perHour: 80, perDay: 5 });
    expect(await g.grant('scheduled', ['a', 'b', 'c', 'd', 'e'])).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(await g.left()).toEqual({ perMinute: 2, perHour: 75, perDay: 0 });
  });

  it('starts a window already over its limit empty, not negative', async () => {
    const g = limiter({ perSecond: null, perHour: 50, perDay: 30 }, 0, { perHour: 41, perDay: 41 });
    expect(await g.left()).toEqual({ perHour: 9, perDay: 0 });
  });

  it('without restored sends (or for a window not configured) the windows start full, as before', async () => {
    expect(await limiter({ perSecond: null, perMinute: 10, perDay: 30 }, 0).left()).toEqual({ perMinute: 10, perDay: 30 });
    expect(await limiter({ perSecond: null, perDay: 30 }, 0, { perMinute: 10, perHour: 10 }).left()).toEqual({ perDay: 30 });
    expect(await limiter({ perSecond: 5, perMinute: null, perHour: null, perDay: null }, 200, { perDay: 10 }).left()).toEqual({});
  });

  it('never offers a grant heavier than the emptiest window has left, and at least 1 (it waits for the refresh)', async () => {
    const clock = new FakeClock(0);
    const g = limiter({ perSecond: null, perMinute: 10, perDay: 30 }, 0, { perDay: 25 }, clock);
    expect(g.maxGrant()).toBe(5);
    await g.grant('scheduled', ['a', 'b', 'c']);
    expect(g.maxGrant()).toBe(2);
    expect(await g.left()).toEqual({ perMinute: 7, perDay: 2 });
    await g.grant('scheduled', ['d', 'e']);
    expect(g.maxGrant()).toBe(1);
    // A minute on: the minute window is full again, the day window still empty.
    clock.jump(MINUTE_MS);
    expect(g.maxGrant()).toBe(1);
    clock.jump(DAY_MS);
    expect(g.maxGrant()).toBe(10);
  });

  it('without windows any grant size goes', () => {
    expect(limiter({ perSecond: 5, perMinute: null, perHour: null, perDay: null }, 200).maxGrant()).toBe(Infinity);
  });
});
