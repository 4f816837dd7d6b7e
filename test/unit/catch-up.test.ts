/**
 * Catch-up logic with fakes: where the start-up schedule begins given the checkpoint, the ledger
 * that keeps the checkpoint behind unfinished minutes, the send-or-missed split, and recording a
 * missed fire once through the claims.
 */
import { describe, expect, it } from 'vitest';
import { CatchUp, MinuteLedger, planCatchUp } from '../../src/core/catch-up.js';
import type { ClaimResult, ClaimStore, Delivery, OutcomeEvent } from '../../src/ports/index.js';
import { silentLogger } from '../helpers/fakes.js';

const log = silentLogger();
const MIN = 60_000;
const T = Date.parse('2027-05-10T09:30:20Z');
const opts = { graceMs: 15 * MIN, lookbackMs: 24 * 3_600_000 };

function delivery(key: string, dueAt: number): Delivery {
  return { key, kind: 'scheduled', userId: key, email: `${key}@example.test`, name: undefined, dueAt };
}

class MemoryClaims implements ClaimStore {
  readonly owned = new Set<string>();
  readonly done = new Map<string, string>();
  async claim(keys: readonly string[]): Promise<ClaimResult> {
    const claimed: string[] = [];
    const taken: string[] = [];
    for (const k of keys) (this.owned.has(k) ? taken : claimed).push(k);
    for (const k of claimed) this.owned.add(k);
    return { claimed, taken };
  }
  async complete(outcomes: ReadonlyArray<{ key: string; status: string }>): Promise<void> {
    for (const o of outcomes) this.done.set(o.key, o.status);
  }
  async release(keys: readonly string[]): Promise<void> {
    for (const k of keys) this.owned.delete(k);
  }
}

describe('planCatchUp', () => {
  const minute = (iso: string) => Date.parse(iso) / MIN;
  it('first start: from the start of this minute, nothing to backfill', () => {
    expect(planCatchUp(undefined, T, opts)).toEqual({ fromMs: Date.parse('2027-05-10T09:30:00Z'), minutes: 0 });
  });
  it('after downtime: from the minute after the checkpoint', () => {
    expect(planCatchUp(minute('2027-05-10T09:10:00Z'), T, opts)).toEqual({ fromMs: Date.parse('2027-05-10T09:11:00Z'), minutes: 19 });
  });
  it('checkpoint at the previous minute or later (another instance runs): nothing to backfill', () => {
    expect(planCatchUp(minute('2027-05-10T09:29:00Z'), T, opts)).toEqual({ fromMs: Date.parse('2027-05-10T09:30:00Z'), minutes: 0 });
    expect(planCatchUp(minute('2027-05-10T09:30:00Z'), T, opts)).toEqual({ fromMs: Date.parse('2027-05-10T09:31:00Z'), minutes: 0 });
    // A checkpoint from a clock ahead of ours never pushes the schedule beyond the next minute.
    expect(planCatchUp(minute('2027-05-10T11:00:00Z'), T, opts).fromMs).toBe(Date.parse('2027-05-10T09:31:00Z'));
  });
  it('downtime longer than the lookback: enumerates the lookback, reports the rest', () => {
    const p = planCatchUp(minute('2027-05-01T00:00:00Z'), T, opts);
    expect(p.fromMs).toBe(Date.parse('2027-05-09T09:30:00Z'));
    expect(p.minutes).toBe(1440);
    expect(p.uncovered).toEqual({ fromMs: Date.parse('2027-05-01T00:01:00Z'), toMs: Date.parse('2027-05-09T09:30:00Z') });
  });
});

describe('MinuteLedger', () => {
  it('the mark follows the processed minute while nothing is open', () => {
    const l = new MinuteLedger();
    expect(l.mark(undefined)).toBeUndefined();
    expect(l.mark(100)).toBe(100);
  });
  it('stays before the earliest minute with deliveries open, and moves on once they settle', () => {
    const l = new MinuteLedger();
    l.begin(100, 3);
    l.begin(102, 1);
    expect(l.mark(105)).toBe(99);
    l.settle(100, 2);
    expect(l.mark(105)).toBe(99);
    l.settle(100);
    expect(l.mark(105)).toBe(101);
    l.settle(102);
    expect(l.mark(105)).toBe(105);
    expect(l.open).toBe(0);
  });
  it('a minute opened after the processed one does not hold the mark back', () => {
    const l = new MinuteLedger();
    l.begin(110, 5);
    expect(l.mark(105)).toBe(105);
  });
});

describe('CatchUp', () => {
  it('without begin() (run-minute) everything is sent, whatever its age', () => {
    const c = new CatchUp({ claims: new MemoryClaims(), events: { record: async () => {} } }, opts, log);
    const old = delivery('a', T - 3 * 3_600_000);
    expect(c.split([old])).toEqual({ send: [old], missed: [] });
  });

  it('splits by age at the start instant: within grace sent, older missed, due after start always sent', () => {
    const c = new CatchUp({ claims: new MemoryClaims(), events: { record: async () => {} } }, opts, log);
    c.begin(T);
    const fresh = delivery('fresh', T - 15 * MIN);
    const stale = delivery('stale', T - 15 * MIN - 1);
    const future = delivery('future', T + 20 * MIN);
    expect(c.split([fresh, stale, future])).toEqual({ send: [fresh, future], missed: [stale] });
    expect(c.stats.lateSent).toBe(1);
  });

  it('records each missed fire once: claimed, one event, completed as missed; a second time nothing', async () => {
    const claims = new MemoryClaims();
    claims.owned.add('sent-before'); // its key was claimed (sent) before the downtime
    const events: OutcomeEvent[] = [];
    const c = new CatchUp({ claims, events: { record: async (e) => void events.push(e) } }, opts, log);
    c.begin(T);
    const ds = ['m1', 'm2', 'sent-before'].map((k) => delivery(k, T - 2 * 3_600_000));
    expect(await c.recordMissed(ds)).toBe(2);
    expect(events.map((e) => [e.type, e.key])).toEqual([
      ['missed', 'm1'],
      ['missed', 'm2'],
    ]);
    expect(events[0]?.reason).toMatch(/^due 2027-05-10T07:30:20.000Z, 7200 s before the daemon started \(grace 900 s\)$/);
    expect([...claims.done]).toEqual([
      ['m1', 'missed'],
      ['m2', 'missed'],
    ]);
    expect(await c.recordMissed(ds)).toBe(0);
    expect(events).toHaveLength(2);
  });
});
