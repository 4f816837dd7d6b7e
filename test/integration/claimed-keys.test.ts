/**
 * claimedKeys (used by `mailwheel plan`) on the real MongoDB-wire server, through both of its
 * reads: the `_id $in` lookups when the deliveries collection is large next to the keys asked
 * about, the streamed scan when it is not. Same answer either way; done records are not claims.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { claimedKeys } from '../../src/adapters/mongo/claimed-keys.js';
import type { DeliveryDoc } from '../../src/adapters/mongo/store.js';
import { testDb, type TestDb } from '../helpers/db.js';

let db: TestDb;

beforeAll(async () => {
  db = await testDb('claimed_keys');
  const docs: DeliveryDoc[] = [];
  for (let i = 0; i < 50; i++) docs.push({ _id: `s:u${i}:09:00:2027-02-01`, type: 'claim', kind: 'scheduled', userId: `u${i}`, owner: 'o', gen: 'g', at: new Date() });
  docs.push({ _id: 's:u99:09:00:2027-02-01#done', type: 'done', key: 's:u99:09:00:2027-02-01', status: 'sent', at: new Date() });
  await db.db.collection<DeliveryDoc>('deliveries').insertMany(docs);
});

afterAll(async () => {
  await db?.cleanup();
});

it('finds exactly the claimed keys, by lookups (few keys) and by one scan (many keys)', async () => {
  const col = db.db.collection<DeliveryDoc>('deliveries');
  // 3 keys against 51 records: lookups.
  expect([...(await claimedKeys(col, ['s:u1:09:00:2027-02-01', 's:u1:09:00:2027-02-02', 's:u99:09:00:2027-02-01']))]).toEqual(['s:u1:09:00:2027-02-01']);
  // 20 keys against 51 records: one scan.
  const asked = Array.from({ length: 20 }, (_, i) => `s:u${i * 5}:09:00:2027-02-01`);
  expect([...(await claimedKeys(col, asked))].sort()).toEqual(asked.filter((_, i) => i * 5 < 50).sort());
  expect((await claimedKeys(db.db.collection<DeliveryDoc>('empty'), asked)).size).toBe(0);
});
