/**
 * The suppression store as an operator tool, on the real MongoDB-wire server: find, list (reason
 * filter, limit, batches), remove (keeps the bounce count), and importMany's counts on both of its
 * roads (a scan first into a small collection, duplicate keys into a large one).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MongoSuppressionStore, type SuppressionDoc } from '../../src/adapters/mongo/suppression-store.js';
import type { SuppressionImport, SuppressionRecord } from '../../src/ports/index.js';
import { testDb, type TestDb } from '../helpers/db.js';

let db: TestDb;
let n = 0;
/** A fresh collection per test. */
const fresh = () => db.db.collection<SuppressionDoc>(`sa_${n++}_suppressions`);

beforeAll(async () => {
  db = await testDb('suppression_admin');
});
afterAll(async () => {
  await db?.cleanup();
});

async function all(it: AsyncIterable<SuppressionRecord[]>): Promise<SuppressionRecord[]> {
  const out: SuppressionRecord[] = [];
  for await (const b of it) out.push(...b);
  return out;
}

const at = new Date('2026-01-02T03:04:05.678Z');
const row = (email: string, over: Partial<SuppressionImport> = {}): SuppressionImport => ({ email, reason: 'manual', source: 'import', scope: 'all', at, ...over });

it('find and list return suppressed addresses only, with reason, source, scope and time; list filters and limits', async () => {
  const col = fresh();
  const store = new MongoSuppressionStore(col, { batchSize: 3 });
  await store.recordHardBounce('counted@example.com', '550 no such user');
  await store.suppress({ email: 'A@Example.com', reason: 'complaint', source: 'ses', scope: 'marketing', detail: 'abuse' });
  for (let i = 0; i < 7; i++) await store.suppress({ email: `b${i}@example.com`, reason: 'hard-bounce', source: 'smtp' });
  expect(await store.find('counted@example.com')).toBeUndefined();
  expect(await store.find('a@EXAMPLE.com')).toMatchObject({ email: 'a@example.com', reason: 'complaint', source: 'ses', scope: 'marketing', detail: 'abuse' });
  const batches: number[] = [];
  for await (const b of store.list()) batches.push(b.length);
  expect(batches).toEqual([3, 3, 2]);
  expect((await all(store.list({ reason: 'hard-bounce' }))).map((r) => r.email).sort()).toEqual(Array.from({ length: 7 }, (_, i) => `b${i}@example.com`));
  expect(await all(store.list({ reason: 'complaint' }))).toHaveLength(1);
  expect(await all(store.list({ limit: 4 }))).toHaveLength(4);
});

it('remove lifts the suppression but keeps the bounce count, so the next hard bounce counts on', async () => {
  const col = fresh();
  const store = new MongoSuppressionStore(col);
  await store.recordHardBounce('x@example.com', '550');
  await store.suppress({ email: 'x@example.com', reason: 'hard-bounce', source: 'smtp' });
  const was = await store.remove('X@example.com');
  expect(was).toMatchObject({ email: 'x@example.com', reason: 'hard-bounce', source: 'smtp' });
  expect(await store.find('x@example.com')).toBeUndefined();
  expect(await store.remove('x@example.com')).toBeUndefined();
  expect(await col.findOne({ _id: 'x@example.com' })).toMatchObject({ suppressed: false, hardBounces: 1 });
  expect(await store.recordHardBounce('x@example.com', '550')).toBe(2);
  const loaded: string[] = [];
  for await (const b of store.allSuppressed()) loaded.push(...b.map((s) => s.email));
  expect(loaded).toEqual([]);
});

for (const road of ['scan first (small collection)', 'duplicate keys (large collection)'] as const) {
  it(`importMany counts added, widened and already suppressed, and changes nothing on a re-run: ${road}`, async () => {
    const col = fresh();
    const store = new MongoSuppressionStore(col);
    if (road === 'duplicate keys (large collection)') {
      // Larger than 10 x the import: the store goes by duplicate keys and point reads.
      await col.insertMany(Array.from({ length: 200 }, (_, i) => ({ _id: `filler${i}@example.com`, suppressed: true, reason: 'manual' as const, hardBounces: 0, updatedAt: at })));
    }
    await store.suppress({ email: 'all@example.com', reason: 'complaint', source: 'ses' });
    await store.suppress({ email: 'mkt@example.com', reason: 'complaint', source: 'ses', scope: 'marketing' });
    await store.suppress({ email: 'mkt2@example.com', reason: 'complaint', source: 'ses', scope: 'marketing' });
    await store.recordHardBounce('bounced@example.com', '550');
    await store.suppress({ email: 'lifted@example.com', reason: 'manual' });
    await store.remove('lifted@example.com');
    const entries = [
      row('new1@example.com', { reason: 'hard-bounce', source: 'dsn' }),
      row('ALL@example.com'),
      row('mkt@example.com'),
      row('mkt2@example.com', { scope: 'marketing' }),
      row('bounced@example.com'),
      row('lifted@example.com'),
      row('new1@example.com'),
      row('new2@example.com', { scope: 'marketing' }),
    ];
    expect(await store.importMany(entries)).toEqual({ added: 4, widened: 1, alreadySuppressed: 3 });
    expect(await store.find('all@example.com')).toMatchObject({ reason: 'complaint', source: 'ses' });
    expect(await store.find('mkt@example.com')).toMatchObject({ reason: 'manual', source: 'import', scope: 'all', updatedAt: at });
    expect(await store.find('new1@example.com')).toEqual({ email: 'new1@example.com', reason: 'hard-bounce', source: 'dsn', scope: 'all', updatedAt: at });
    expect(await store.find('new2@example.com')).toMatchObject({ scope: 'marketing' });
    expect(await col.findOne({ _id: 'bounced@example.com' })).toMatchObject({ suppressed: true, hardBounces: 1, reason: 'manual' });
    expect(await store.importMany(entries)).toEqual({ added: 0, widened: 0, alreadySuppressed: 8 });
  });
}
