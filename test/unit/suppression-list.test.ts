/**
 * SuppressionList over an in-memory SuppressionStore: case-insensitive membership, the hard-bounce
 * limit, exactly one "newly suppressed" per address even under concurrent bounces, behaviour when
 * the store fails, and a reload that neither loses local additions nor blocks lookups.
 */
import { describe, expect, it } from 'vitest';
import { SuppressionList } from '../../src/core/suppression-list.js';
import type { SuppressedAddress, SuppressionEntry, SuppressionReason, SuppressionScope, SuppressionStore } from '../../src/ports/index.js';

interface Row {
  suppressed: boolean;
  reason?: SuppressionReason;
  userId?: string;
  detail?: string;
  hardBounces: number;
  scope?: SuppressionScope;
}

/** Keyed by lower-cased address, as the Mongo adapter keys `_id`. */
class MemoryStore implements SuppressionStore {
  readonly rows = new Map<string, Row>();
  suppressCalls = 0;
  failSuppress = false;
  /** When set, allSuppressed waits for it between batches. */
  gate: Promise<void> | undefined;

  async suppress(entry: SuppressionEntry): Promise<void> {
    this.suppressCalls++;
    await Promise.resolve();
    if (this.failSuppress) throw new Error('mongo down');
    const key = entry.email.toLowerCase();
    const row = this.rows.get(key) ?? { suppressed: false, hardBounces: 0 };
    const scope = row.suppressed && (row.scope ?? 'all') === 'all' ? 'all' : (entry.scope ?? 'all');
    this.rows.set(key, { ...row, suppressed: true, reason: entry.reason, userId: entry.userId ?? row.userId, detail: entry.detail ?? row.detail, scope });
  }

  async recordHardBounce(email: string, detail: string): Promise<number> {
    await Promise.resolve();
    const key = email.toLowerCase();
    const row = this.rows.get(key) ?? { suppressed: false, hardBounces: 0 };
    row.hardBounces++;
    row.detail = detail;
    this.rows.set(key, row);
    return row.hardBounces;
  }

  async *allSuppressed(): AsyncIterable<SuppressedAddress[]> {
    const all = [...this.rows].filter(([, r]) => r.suppressed).map(([k, r]) => ({ email: k, scope: r.scope ?? 'all' }));
    for (let i = 0; i < all.length; i += 2) {
      if (this.gate) await this.gate;
      yield all.slice(i, i + 2);
    }
  }
}

describe('SuppressionList', () => {
  it('loads every suppressed address from the store, in batches, and ignores bounce-only rows', async () => {
    const store = new MemoryStore();
    for (const e of ['a@x.com', 'b@x.com', 'c@x.com', 'd@x.com', 'e@x.com']) store.rows.set(e, { suppressed: true, hardBounces: 0 });
    store.rows.set('bounced-once@x.com', { suppressed: false, hardBounces: 1 });
    const list = new SuppressionList(store, { hardBounceLimit: 3 });
    expect(await list.load()).toBe(5);
    expect(list.size).toBe(5);
    expect(list.has('e@x.com')).toBe(true);
    expect(list.has('bounced-once@x.com')).toBe(false);
  });

  it('compares addresses case-insensitively', () => {
    const list = new SuppressionList(new MemoryStore(), { hardBounceLimit: 1 });
    list.add('Ada@Example.COM');
    expect(list.has('ada@example.com')).toBe(true);
    expect(list.has('ADA@EXAMPLE.COM')).toBe(true);
    expect(list.size).toBe(1);
  });

  it('suppresses on the bounce that reaches the limit, and reports it once', async () => {
    const store = new MemoryStore();
    const list = new SuppressionList(store, { hardBounceLimit: 3 });
    expect(await list.recordHardBounce('Bob@x.com', '550 no such user', 'u1')).toEqual({ count: 1, suppressed: false });
    expect(await list.recordHardBounce('bob@x.com', '550 no such user', 'u1')).toEqual({ count: 2, suppressed: false });
    expect(list.has('bob@x.com')).toBe(false);
    expect(await list.recordHardBounce('BOB@x.com', '550 5.1.1 unknown', 'u1')).toEqual({ count: 3, suppressed: true });
    expect(list.has('bob@x.com')).toBe(true);
    expect(store.rows.get('bob@x.com')).toMatchObject({ suppressed: true, reason: 'hard-bounce', userId: 'u1', detail: '550 5.1.1 unknown', hardBounces: 3 });
    // A send already in flight may bounce again: counted, but not a second suppression.
    expect(await list.recordHardBounce('bob@x.com', '550', 'u1')).toEqual({ count: 4, suppressed: false });
    expect(store.suppressCalls).toBe(1);
  });

  it('concurrent bounces past the limit suppress the address exactly once', async () => {
    const store = new MemoryStore();
    const list = new SuppressionList(store, { hardBounceLimit: 1 });
    const results = await Promise.all(Array.from({ length: 5 }, () => list.recordHardBounce('c@x.com', '550', 'u2')));
    expect(results.filter((r) => r.suppressed)).toHaveLength(1);
    expect(store.suppressCalls).toBe(1);
  });

  it('takes a bounce suppression back out of memory when the store write fails, so the next bounce retries', async () => {
    const store = new MemoryStore();
    const list = new SuppressionList(store, { hardBounceLimit: 1 });
    store.failSuppress = true;
    await expect(list.recordHardBounce('d@x.com', '550', 'u3')).rejects.toThrow('mongo down');
    expect(list.has('d@x.com')).toBe(false);
    store.failSuppress = false;
    expect(await list.recordHardBounce('d@x.com', '550', 'u3')).toEqual({ count: 2, suppressed: true });
    expect(list.has('d@x.com')).toBe(true);
  });

  it('unsubscribe stores the reason and user, is idempotent, and honours the request in memory even if the store fails', async () => {
    const store = new MemoryStore();
    const list = new SuppressionList(store, { hardBounceLimit: 1 });
    await list.unsubscribe('Eve@X.com', 'u4');
    await list.unsubscribe('eve@x.com', 'u4');
    expect(list.size).toBe(1);
    expect(store.rows.get('eve@x.com')).toMatchObject({ suppressed: true, reason: 'unsubscribe', userId: 'u4', hardBounces: 0 });

    store.failSuppress = true;
    await expect(list.unsubscribe('frank@x.com', 'u5')).rejects.toThrow('mongo down');
    expect(list.has('frank@x.com')).toBe(true);
  });

  it('a reload keeps answering from the old set meanwhile and keeps what was added during it', async () => {
    const store = new MemoryStore();
    for (const e of ['a@x.com', 'b@x.com', 'c@x.com']) store.rows.set(e, { suppressed: true, hardBounces: 0 });
    const list = new SuppressionList(store, { hardBounceLimit: 1 });
    await list.load();
    store.rows.set('remote@x.com', { suppressed: true, hardBounces: 0 });
    let open!: () => void;
    store.gate = new Promise((r) => (open = r));
    const reloading = list.load();
    expect(list.load()).toBe(reloading); // a second caller joins the running load
    expect(list.has('a@x.com')).toBe(true);
    list.add('local@x.com');
    open();
    expect(await reloading).toBe(5);
    expect(list.has('remote@x.com')).toBe(true);
    expect(list.has('local@x.com')).toBe(true);
  });

  it('a marketing-only suppression stops broadcasts but not scheduled mail; `all` widens it, `marketing` never narrows `all`', async () => {
    const store = new MemoryStore();
    const list = new SuppressionList(store, { hardBounceLimit: 1 });
    expect(await list.suppress({ email: 'Complained@x.com', reason: 'complaint', source: 'arf', scope: 'marketing' })).toBe(true);
    expect(list.has('complained@x.com', 'broadcast')).toBe(true);
    expect(list.has('complained@x.com', 'scheduled')).toBe(false);
    expect(await list.suppress({ email: 'complained@x.com', reason: 'complaint', scope: 'marketing' })).toBe(false);
    expect(await list.suppress({ email: 'complained@x.com', reason: 'hard-bounce', scope: 'all' })).toBe(true);
    expect(list.has('complained@x.com', 'scheduled')).toBe(true);
    expect(await list.suppress({ email: 'complained@x.com', reason: 'complaint', scope: 'marketing' })).toBe(false);
    expect(list.has('complained@x.com', 'scheduled')).toBe(true);
    expect(store.rows.get('complained@x.com')?.scope).toBe('all');
    // A reload keeps each address's scope.
    expect(await list.suppress({ email: 'only-marketing@x.com', reason: 'complaint', scope: 'marketing' })).toBe(true);
    const fresh = new SuppressionList(store, { hardBounceLimit: 1 });
    expect(await fresh.load()).toBe(2);
    expect(fresh.has('only-marketing@x.com', 'broadcast')).toBe(true);
    expect(fresh.has('only-marketing@x.com', 'scheduled')).toBe(false);
    expect(fresh.has('complained@x.com', 'scheduled')).toBe(true);
  });

  it('rejects a hardBounceLimit below 1', () => {
    expect(() => new SuppressionList(new MemoryStore(), { hardBounceLimit: 0 })).toThrow(/hardBounceLimit/);
  });
});
