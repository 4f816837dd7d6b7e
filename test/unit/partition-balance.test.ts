import { describe, expect, it } from 'vitest';
import { fairShares, planBalance } from '../../src/core/partition-balance.js';

/**
 * A table of leases and members running rounds in turn, as the Redis member does: each member
 * plans from what it reads, takes free partitions (SET NX: only if still free) and gives back.
 * Counts every move so minimal movement can be asserted.
 */
class World {
  owners: Array<string | null>;
  members: string[] = [];
  moves = 0;
  constructor(readonly partitions: number) {
    this.owners = Array.from({ length: partitions }, () => null);
  }
  round(order: readonly string[] = this.members): void {
    for (const self of order) {
      const plan = planBalance({ self, partitions: this.partitions, members: this.members, owners: this.owners });
      for (const p of plan.take) {
        if (this.owners[p] !== null) continue;
        this.owners[p] = self;
        this.moves++;
      }
      for (const p of plan.release) {
        expect(this.owners[p]).toBe(self);
        this.owners[p] = null;
      }
    }
  }
  counts(): Record<string, number> {
    const c: Record<string, number> = {};
    for (const m of this.members) c[m] = 0;
    for (const o of this.owners) if (o !== null) c[o] = (c[o] ?? 0) + 1;
    return c;
  }
  stable(): boolean {
    return this.members.every((self) => {
      const plan = planBalance({ self, partitions: this.partitions, members: this.members, owners: this.owners });
      return plan.take.length === 0 && plan.release.length === 0;
    });
  }
  /** Rounds until nothing moves; returns how many rounds moved something. */
  converge(max = 10): number {
    for (let r = 0; r < max; r++) {
      if (this.stable()) return r;
      this.round();
    }
    throw new Error(`not converged after ${max} rounds: ${JSON.stringify(this.counts())}`);
  }
  /** A member dies: its leases expire (free) and it is no longer live. */
  kill(id: string): void {
    this.members = this.members.filter((m) => m !== id);
    this.owners = this.owners.map((o) => (o === id ? null : o));
  }
}

describe('fairShares', () => {
  it('splits 256 among 3 as 86/85/85, the +1 to the first by sorted id, whatever the input order', () => {
    expect(Object.fromEntries(fairShares(['c', 'a', 'b'], 256))).toEqual({ a: 86, b: 85, c: 85 });
    expect(Object.fromEntries(fairShares(['b', 'c', 'a', 'b'], 256))).toEqual({ a: 86, b: 85, c: 85 });
  });

  it('gives everyone P/m when it divides, and adds up to P for any m', () => {
    expect([...fairShares(['a', 'b', 'c', 'd'], 256).values()]).toEqual([64, 64, 64, 64]);
    for (let m = 1; m <= 20; m++) {
      const shares = [...fairShares(Array.from({ length: m }, (_, i) => `m${i}`), 256).values()];
      expect(shares.reduce((a, b) => a + b, 0)).toBe(256);
      expect(Math.max(...shares) - Math.min(...shares)).toBeLessThanOrEqual(1);
    }
  });
});

describe('planBalance', () => {
  it('a lone member takes every free partition in its first round', () => {
    const plan = planBalance({ self: 'a', partitions: 256, members: ['a'], owners: Array(256).fill(null) });
    expect(plan.target).toBe(256);
    expect(plan.take).toHaveLength(256);
    expect(new Set(plan.take).size).toBe(256);
    expect(plan.release).toEqual([]);
  });

  it('counts itself live even when the members it read miss it (its heartbeat was just lost)', () => {
    const owners = Array(8).fill(null);
    expect(planBalance({ self: 'b', partitions: 8, members: ['a'], owners }).target).toBe(4);
  });

  it('three members starting together converge to 86/85/85 in one round with no partition taken twice', () => {
    const w = new World(256);
    w.members = ['m1', 'm2', 'm3'];
    expect(w.converge()).toBe(1);
    expect(w.counts()).toEqual({ m1: 86, m2: 85, m3: 85 });
    expect(w.moves).toBe(256);
  });

  it('is deterministic: the same view gives the same plan', () => {
    const owners: Array<string | null> = Array.from({ length: 256 }, (_, p) => (p % 3 === 0 ? 'a' : p % 3 === 1 ? 'b' : null));
    const view = { self: 'a', partitions: 256, members: ['c', 'a', 'b'], owners };
    expect(planBalance(view)).toEqual(planBalance({ ...view, members: ['b', 'c', 'a'] }));
  });

  it('a fourth member joining: the three give back exactly 64 between them and the newcomer gets 64 within two rounds', () => {
    const w = new World(256);
    w.members = ['m1', 'm2', 'm3'];
    w.converge();
    const before = [...w.owners];
    w.moves = 0;
    w.members = ['m1', 'm2', 'm3', 'm4'];
    // The others' round first (they see the newcomer's heartbeat), then the newcomer's.
    w.round(['m1', 'm2', 'm3']);
    w.round(['m4']);
    expect(w.counts()).toEqual({ m1: 64, m2: 64, m3: 64, m4: 64 });
    expect(w.stable()).toBe(true);
    // Minimal movement: only the newcomer's 64 moved; every other partition kept its owner.
    expect(w.moves).toBe(64);
    expect(w.owners.filter((o, p) => o !== before[p])).toHaveLength(64);
  });

  it('a member above its share gives back exactly its excess, the partitions farthest from its home first', () => {
    // 8 partitions, a (home 0) holds 0..5, b (home 4) holds none, 6 and 7 free: a's share is 4, it gives back 2.
    const owners = ['a', 'a', 'a', 'a', 'a', 'a', null, null];
    expect(planBalance({ self: 'a', partitions: 8, members: ['a', 'b'], owners })).toEqual({ target: 4, take: [], release: [5, 4] });
    // b takes the free ones nearest its home (4) first.
    expect(planBalance({ self: 'b', partitions: 8, members: ['a', 'b'], owners }).take).toEqual([6, 7]);
    // A member at its share moves nothing, even with partitions free.
    const fair = ['a', 'a', 'a', 'a', null, null, 'b', 'b'];
    expect(planBalance({ self: 'a', partitions: 8, members: ['a', 'b'], owners: fair })).toEqual({ target: 4, take: [], release: [] });
  });

  it('partitions of a member that is not live but whose leases have not expired are neither free nor counted', () => {
    // c is dead (not in members) and still holds 0..3: a and b share 8 (4 each) and take only free ones.
    const owners = ['c', 'c', 'c', 'c', null, null, null, null];
    const a = planBalance({ self: 'a', partitions: 8, members: ['a', 'b'], owners });
    expect(a.target).toBe(4);
    expect(a.take.every((p) => p >= 4)).toBe(true);
  });

  it('a member leaving (its leases expired): the others take its partitions within one round, the rest stays put', () => {
    const w = new World(256);
    w.members = ['m1', 'm2', 'm3'];
    w.converge();
    const before = [...w.owners];
    w.kill('m2');
    w.round();
    expect(w.counts()).toEqual({ m1: 128, m3: 128 });
    expect(w.stable()).toBe(true);
    // Nothing the survivors held moved.
    expect(before.every((o, p) => o === 'm2' || w.owners[p] === o)).toBe(true);
  });

  it('from any mix of joins and leaves, converges to fair shares with every partition owned', () => {
    const w = new World(100);
    const steps: Array<() => void> = [
      () => (w.members = ['x']),
      () => (w.members = ['x', 'y']),
      () => (w.members = ['x', 'y', 'a', 'q']),
      () => w.kill('y'),
      () => (w.members = [...w.members, 'zz', 'b']),
      () => w.kill('x'),
    ];
    for (const step of steps) {
      step();
      // Rounds with members in a different order each time.
      w.round([...w.members].reverse());
      w.converge();
      const counts = Object.values(w.counts());
      expect(counts.reduce((a, b) => a + b, 0)).toBe(100);
      expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
      expect(w.owners.every((o) => o !== null && w.members.includes(o))).toBe(true);
    }
  });
});
