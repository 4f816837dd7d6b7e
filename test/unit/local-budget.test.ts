/**
 * The in-process global budget the destination groups share (smtp/local-budget.ts), on a fake
 * clock: takes never exceed any window across callers, a restart's `used` is taken off, windows
 * refresh a full window after the start, and the exact per-second bound counts sends in flight
 * plus sends finished in the last second.
 */
import { describe, expect, it } from 'vitest';
import { LocalBudget } from '../../src/adapters/smtp/local-budget.js';
import { MINUTE_MS } from '../../src/core/time.js';
import { FakeClock } from '../helpers/fake-clock.js';

describe('LocalBudget: minute, hour and day windows', () => {
  it('two callers taking in turn get no more than the smallest window holds, then a wait until its refresh', async () => {
    const clock = new FakeClock(0);
    const budget = new LocalBudget({ perMinute: 10, perHour: 25 }, clock);
    const a = await budget.take(6);
    const b = await budget.take(6);
    const c = await budget.take(6);
    expect([a.granted, b.granted, c.granted]).toEqual([6, 4, 0]);
    expect(c.waitMs).toBe(MINUTE_MS);
    clock.advance(MINUTE_MS);
    expect((await budget.take(8)).granted).toBe(8);
    clock.advance(MINUTE_MS);
    // The hour has 25 - 18 = 7 left although the minute has 10.
    expect((await budget.take(10)).granted).toBe(7);
    expect(await budget.use()).toEqual([
      { name: 'perMinute', windowMs: MINUTE_MS, limit: 10, used: 7 },
      { name: 'perHour', windowMs: 60 * MINUTE_MS, limit: 25, used: 25 },
    ]);
  });

  it('starts each window with its limit less what a restart counted as used', async () => {
    const budget = new LocalBudget({ perDay: 30 }, new FakeClock(0), { perDay: 25 });
    expect((await budget.take(12)).granted).toBe(5);
    expect((await budget.take(1)).granted).toBe(0);
  });

  it('without windows every take is granted in full', async () => {
    const budget = new LocalBudget({ perSecond: null }, new FakeClock(0));
    expect((await budget.take(500)).granted).toBe(500);
    expect(await budget.use()).toEqual([]);
  });
});

describe('LocalBudget: the exact second', () => {
  it('admits while in flight + finished in the last second < perSecond; a cancel frees a place without counting', async () => {
    const clock = new FakeClock(0);
    const budget = new LocalBudget({ perSecond: 3 }, clock);
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await budget.startSend()).id);
    expect(ids.every((id) => id !== undefined)).toBe(true);
    const full = await budget.startSend();
    expect(full.id).toBeUndefined();
    expect(full.waitMs).toBeGreaterThan(0);
    await budget.cancelSend(ids[0] as string);
    expect((await budget.startSend()).id).toBeDefined();
    clock.advance(100);
    await budget.finishSend(ids[1] as string);
    await budget.finishSend(ids[2] as string);
    // Two finished 100 ms in, one still in flight: full until the finished ones are a second old.
    const wait = await budget.startSend();
    expect(wait.id).toBeUndefined();
    expect(wait.waitMs).toBeGreaterThanOrEqual(1000);
    clock.advance(1001);
    expect((await budget.startSend()).id).toBeDefined();
    // A finish of an unknown or already-finished place changes nothing.
    await budget.finishSend(ids[1] as string);
    expect((await budget.startSend()).id).toBeDefined();
    expect((await budget.startSend()).id).toBeUndefined();
  });
});
