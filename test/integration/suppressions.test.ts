/**
 * The suppression collection on the real MongoDB-wire server: bounce counts, idempotent
 * suppression, case-insensitive keys, concurrent upserts of a new address, streaming in batches,
 * and a SuppressionList that finds everything again after a restart (a new client).
 */
import { MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MongoSuppressionStore, type SuppressionDoc } from '../../src/adapters/mongo/suppression-store.js';
import { SuppressionList } from '../../src/core/suppression-list.js';
import { testDb, type TestDb } from '../helpers/db.js';

const COLLECTION = 'mailwheel_suppressions';
let db: TestDb;

const col = () => db.db.collection<SuppressionDoc>(COLLECTION);
const doc = (email: string) => col().findOne({ _id: email });

beforeAll(async () => {
  db = await testDb('suppressions');
});
afterAll(async () => {
  await db?.cleanup();
});

describe('MongoSuppressionStore', () => {
  it('counts hard bounces per lower-cased address without suppressing', async () => {
    const store = new MongoSuppressionStore(col());
    expect(await store.recordHardBounce('Bounce@Example.com', '550 5.1.1 no such user')).toBe(1);
    expect(await store.recordHardBounce('bounce@example.com', '550 5.1.1 no such user')).toBe(2);
    expect(await store.recordHardBounce('BOUNCE@EXAMPLE.COM', '550 mailbox gone')).toBe(3);
    expect(await doc('bounce@example.com')).toMatchObject({ suppressed: false, hardBounces: 3, detail: '550 mailbox gone' });
    expect(await col().countDocuments({})).toBe(1);
  });

  it('suppress is idempotent, keeps the bounce count, and keeps a user id a later call does not give', async () => {
    const store = new MongoSuppressionStore(col());
    await store.recordHardBounce('twice@example.com', '550');
    await store.suppress({ email: 'Twice@Example.com', userId: 'u1', reason: 'hard-bounce', detail: '550' });
    const first = await doc('twice@example.com');
    await store.suppress({ email: 'twice@example.com', reason: 'unsubscribe' });
    const second = await doc('twice@example.com');
    expect(second).toMatchObject({ _id: 'twice@example.com', suppressed: true, reason: 'unsubscribe', userId: 'u1', detail: '550', hardBounces: 1 });
    expect(second?.updatedAt.getTime()).toBeGreaterThanOrEqual(first?.updatedAt.getTime() ?? Infinity);
    expect(await col().countDocuments({ _id: 'twice@example.com' })).toBe(1);
  });

  it('a new address suppressed by many writers at once ends up as one document', async () => {
    const store = new MongoSuppressionStore(col());
    await Promise.all(Array.from({ length: 10 }, (_, i) => store.suppress({ email: 'race@example.com', userId: `u${i}`, reason: 'manual' })));
    expect(await col().countDocuments({ _id: 'race@example.com' })).toBe(1);
    expect(await doc('race@example.com')).toMatchObject({ suppressed: true, reason: 'manual', hardBounces: 0 });
  });

  it('concurrent bounces and a suppression of one address from one process lose nothing', async () => {
    // FerretDB v1 updates are unlocked read-modify-write: without the per-address chain, 20
    // concurrent increments were measured to leave the count at 9.
    const store = new MongoSuppressionStore(col());
    const writes: Array<Promise<number | void>> = Array.from({ length: 20 }, (_, i) => store.recordHardBounce(i % 2 ? 'Busy@example.com' : 'busy@example.com', `550 #${i}`));
    writes.splice(10, 0, store.suppress({ email: 'busy@example.com', userId: 'u9', reason: 'hard-bounce' }));
    const counts = (await Promise.all(writes)).filter((c): c is number => typeof c === 'number');
    expect(counts.sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(await doc('busy@example.com')).toMatchObject({ suppressed: true, userId: 'u9', hardBounces: 20, detail: '550 #19' });
  });

  it('streams every suppressed address, and only those, in batches of batchSize', async () => {
    const stream = db.db.collection<SuppressionDoc>('stream_suppressions');
    const updatedAt = new Date();
    // Set-up by insertMany: one round trip instead of 250 upserts.
    await stream.insertMany([
      ...Array.from({ length: 250 }, (_, i) => ({ _id: `s${i}@example.com`, suppressed: true, reason: 'manual' as const, hardBounces: 0, updatedAt })),
      ...Array.from({ length: 7 }, (_, i) => ({ _id: `b${i}@example.com`, suppressed: false, hardBounces: 1, updatedAt })),
    ]);
    const store = new MongoSuppressionStore(stream, { batchSize: 100 });
    const batches: string[][] = [];
    for await (const b of store.allSuppressed()) batches.push(b.map((s) => s.email));
    expect(batches.map((b) => b.length)).toEqual([100, 100, 50]);
    const all = new Set(batches.flat());
    expect(all.size).toBe(250);
    expect([...all].every((e) => e.startsWith('s'))).toBe(true);
  });
});

describe('SuppressionList over the real store', () => {
  it('suppresses at the hard-bounce limit, and a restarted process loads everything again', async () => {
    const limit = 2;
    const list = new SuppressionList(new MongoSuppressionStore(col()), { hardBounceLimit: limit });
    await list.load();
    expect(await list.recordHardBounce('Limit@Example.com', '550 unknown user', 'u7')).toEqual({ count: 1, suppressed: false });
    expect(await list.recordHardBounce('limit@example.com', '550 unknown user', 'u7')).toEqual({ count: 2, suppressed: true });
    await list.unsubscribe('Leaver@Example.com', 'u8');
    await list.unsubscribe('leaver@example.com', 'u8');
    expect(await doc('limit@example.com')).toMatchObject({ suppressed: true, reason: 'hard-bounce', userId: 'u7', hardBounces: 2 });
    expect(await doc('leaver@example.com')).toMatchObject({ suppressed: true, reason: 'unsubscribe', userId: 'u8', hardBounces: 0 });

    // "Restart": a new client and a new list see the same suppressions, whatever the case.
    const client = new MongoClient(db.uri);
    await client.connect();
    try {
      const restarted = new SuppressionList(new MongoSuppressionStore(client.db(db.dbName).collection<SuppressionDoc>(COLLECTION)), { hardBounceLimit: limit });
      await restarted.load();
      for (const e of ['LIMIT@example.com', 'leaver@EXAMPLE.com', 'twice@example.com', 'race@example.com']) expect(restarted.has(e), e).toBe(true);
      // Counted but under its limit in the earlier test (that store had no list): not suppressed.
      expect(restarted.has('bounce@example.com')).toBe(false);
      expect(restarted.size).toBe(await col().countDocuments({ suppressed: true }));
    } finally {
      await client.close();
    }
  });
});
