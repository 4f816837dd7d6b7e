/**
 * Three instances write the marks of their shares of 256 partitions at the same moment, as they do at the end
 * of a busy minute, each over its own MongoDB client, on the real FerretDB. FerretDB v1 keeps one
 * SQLite connection per update of a request until the request ends, out of 100 per database
 * (docs/ARCHITECTURE.md "Known limits"): with bulks of 50 the three requests held all 100 and the
 * database stopped answering anything, for good. With SAVE_CHUNK the writes finish, every time.
 * The bound is generous (a loaded machine); a stalled database never answers at all.
 */
import { MongoClient } from 'mongodb';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MongoPartitionMarks, SAVE_CHUNK } from '../../src/adapters/mongo/partition-marks.js';
import type { StateDoc } from '../../src/adapters/mongo/store.js';
import { testDb, type TestDb } from '../helpers/db.js';

const INSTANCES = 3;
const PARTITIONS = 256;
const ROUNDS = 4;

let db: TestDb;
const clients: MongoClient[] = [];

beforeAll(async () => {
  db = await testDb('partition_marks_concurrent');
  for (let i = 0; i < INSTANCES; i++) clients.push(await new MongoClient(db.uri).connect());
});

afterAll(async () => {
  // Closing the clients also ends any request FerretDB still holds (a failed run).
  await Promise.all(clients.map((c) => c.close(true)));
  await db?.cleanup();
});

it(`${INSTANCES} instances write their shares of ${PARTITIONS} marks at once, ${ROUNDS} times: every write finishes`, { timeout: 180_000 }, async () => {
  expect(SAVE_CHUNK * INSTANCES).toBeLessThan(100);
  const marks = clients.map((c, i) => new MongoPartitionMarks(c.db(db.dbName).collection<StateDoc>('mailwheel_state'), `instance-${i}`));
  const all = Array.from({ length: PARTITIONS }, (_, p) => p);
  // Each instance marks its own share, as owners do (86, 85, 85 partitions).
  const shares = marks.map((_, i) => all.filter((p) => p % INSTANCES === i));
  for (let round = 1; round <= ROUNDS; round++) {
    const writes = Promise.all(marks.map((m, i) => m.save(shares[i] ?? [], 1000 + round)));
    const outcome = await Promise.race([writes.then(() => 'done'), new Promise((r) => setTimeout(() => r('no answer'), 120_000).unref())]);
    expect(outcome, `round ${round}`).toBe('done');
  }
  const loaded = await marks[0]?.load(all);
  expect(loaded?.size).toBe(PARTITIONS);
  expect([...(loaded?.values() ?? [])].every((m) => m === 1000 + ROUNDS)).toBe(true);
});
