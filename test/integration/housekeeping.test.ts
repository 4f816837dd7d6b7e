/**
 * The housekeeping jobs of the running App against the real MongoDB-wire server: retention
 * deletes events and delivery records past their age (and nothing younger), the daily summary
 * logs one line with the period's counts, and the scheduler checkpoint document only moves
 * forward ($max) so two instances agree on the furthest one.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MongoCheckpointStore } from '../../src/adapters/mongo/checkpoint-store.js';
import type { StateDoc } from '../../src/adapters/mongo/store.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { testDb, type TestDb } from '../helpers/db.js';
import { TestSmtpServer } from '../helpers/smtp-server.js';
import { usersDueAt } from '../helpers/users.js';

const DAY = 86_400_000;
let db: TestDb;
let smtp: TestSmtpServer;
let t: TestApp | undefined;

beforeAll(async () => {
  db = await testDb('housekeeping');
  smtp = await TestSmtpServer.start();
});

afterAll(async () => {
  await t?.app.close();
  await smtp?.close();
  await db?.cleanup();
});

it('retention deletes only what is older than its age; the daily summary logs the day', { timeout: 60_000 }, async () => {
  const now = Date.now();
  const events = db.db.collection('mailwheel_events');
  const deliveries = db.db.collection('mailwheel_deliveries');
  await events.insertMany([
    ...Array.from({ length: 30 }, (_, i) => ({ _id: `old${i}`, type: 'sent', at: new Date(now - 11 * DAY - i * 1000) })),
    ...Array.from({ length: 20 }, (_, i) => ({ _id: `new${i}`, type: 'sent', at: new Date(now - 9 * DAY) })),
  ] as never[]);
  await deliveries.insertMany([
    ...Array.from({ length: 15 }, (_, i) => ({ _id: `s:old${i}:09:00:2020-01-01`, type: 'claim', at: new Date(now - 4 * DAY) })),
    ...Array.from({ length: 15 }, (_, i) => ({ _id: `s:old${i}:09:00:2020-01-01#done`, type: 'done', status: 'sent', at: new Date(now - 4 * DAY) })),
    ...Array.from({ length: 5 }, (_, i) => ({ _id: `s:new${i}:09:00:2020-01-01`, type: 'claim', at: new Date(now - 2 * DAY) })),
  ] as never[]);
  const minute = '2027-06-01T10:00:00Z';
  await db.db.collection('users').insertMany(usersDueAt(12, minute, 'hk'));

  t = await startTestApp(db.uri, smtp.url, { retention: { eventsDays: 10, deliveriesDays: 3 } });
  const { app, logs } = t;
  await app.start();
  expect((await db.db.listCollections({ name: 'mailwheel_deliveries' }).toArray()).length).toBe(1);
  const indexes = await deliveries.indexes();
  expect(indexes.some((ix) => JSON.stringify(ix.key) === '{"at":1}')).toBe(true);

  expect(await app.housekeeping.run('retention')).toBe(true);
  expect(await events.countDocuments({ _id: { $regex: '^old' } } as never)).toBe(0);
  expect(await events.countDocuments({ _id: { $regex: '^new' } } as never)).toBe(20);
  expect(await deliveries.countDocuments({})).toBe(5);
  const done = logs.find((l) => l.msg === 'housekeeping retention done');
  expect(done?.['result']).toMatchObject({ eventsDeleted: 30, deliveriesDeleted: 30 });

  await app.runMinute(Date.parse(minute));
  expect(await app.housekeeping.run('dailySummary')).toBe(true);
  const summary = logs.find((l) => l.msg === 'daily summary');
  expect(summary).toMatchObject({ sent: 12, failed: 0, missed: 0, users: 12 });
  expect(await app.housekeeping.run('dailySummary')).toBe(true);
  expect(logs.filter((l) => l.msg === 'daily summary')[1]).toMatchObject({ sent: 0 });
  expect(app.stats()['housekeeping']).toMatchObject({ retention: { runs: 1, failures: 0 }, dailySummary: { runs: 2 } });
});

it('the checkpoint document only moves forward, whoever writes it', async () => {
  const col = db.db.collection<StateDoc>('mailwheel_state_cp_test');
  const a = new MongoCheckpointStore(col, 'a');
  const b = new MongoCheckpointStore(col, 'b');
  expect(await a.load()).toBeUndefined();
  await a.save(100);
  await b.save(90);
  expect(await a.load()).toBe(100);
  await b.save(120);
  expect(await a.load()).toBe(120);
  expect((await col.findOne({ _id: 'scheduler' }))?.instance).toBe('b');
});
