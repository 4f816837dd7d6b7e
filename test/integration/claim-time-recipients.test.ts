/**
 * Email and name are read at claim time (issue 17), on the real FerretDB and SMTP server: the
 * registry holds neither, so a user whose address changed after the sync gets mail at the new
 * address, and a user deleted or deactivated between the sync and the fire is not mailed: one
 * `skipped` event names why, nothing is claimed for them, and everybody else is sent.
 */
import type { Document } from 'mongodb';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { epochMinute } from '../../src/core/time.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { testDb, type TestDb } from '../helpers/db.js';
import { TestSmtpServer } from '../helpers/smtp-server.js';

const MINUTE = Date.parse('2027-04-01T07:00:00Z');
const IDS = ['stays', 'moved', 'deleted', 'off', 'unsub'];

let db: TestDb;
let smtp: TestSmtpServer;
let t: TestApp;

beforeAll(async () => {
  db = await testDb('claim_time_recipients');
  smtp = await TestSmtpServer.start();
  const docs: Document[] = IDS.map((id) => ({ _id: id, email: `${id}@example.test`, name: `Name ${id}`, active: true, timezone: 'UTC', emailTimes: ['07:00'] }));
  await db.db.collection('users').insertMany(docs);
  t = await startTestApp(db.uri, smtp.url, { analytics: { flushIntervalMs: 50 } });
});

afterAll(async () => {
  await t?.app.close();
  await smtp?.close();
  await db?.cleanup();
});

it('reads each fired batch of users once, by _id, at claim time; users gone since the sync are skipped with a reason', async () => {
  await t.app.sync.full(MINUTE);
  expect(t.app.registry.userCount).toBe(IDS.length);

  // Between the sync and the fire: the application changes its users.
  const users = db.db.collection<Document>('users');
  await users.updateOne({ _id: 'moved' } as Document, { $set: { email: 'new-home@example.test', name: 'Moved Away' } });
  await users.deleteOne({ _id: 'deleted' } as Document);
  await users.updateOne({ _id: 'off' } as Document, { $set: { active: false } });
  await users.updateOne({ _id: 'unsub' } as Document, { $set: { unsubscribed: true } });

  expect(await t.app.scheduler.runMinute(epochMinute(MINUTE))).toBe(IDS.length);
  await t.app.dispatcher.idle();

  expect(smtp.messages.map((m) => m.to[0]).sort()).toEqual(['new-home@example.test', 'stays@example.test']);
  expect(smtp.messages.find((m) => m.to[0] === 'new-home@example.test')?.raw).toContain('Moved Away');
  expect(t.app.dispatcher.stats.claimed).toBe(2);
  expect(t.app.scheduled.stats.gone).toBe(3);

  while (t.app.analytics.size > 0) await new Promise((r) => setTimeout(r, 20));
  const skipped = await db.db.collection('mailwheel_events').find({ type: 'skipped' }).toArray();
  expect(skipped.map((e) => [e['userId'], e['reason']]).sort()).toEqual([
    ['deleted', 'user deleted since the last sync'],
    ['off', 'user deactivated or unsubscribed since the last sync'],
    ['unsub', 'user deactivated or unsubscribed since the last sync'],
  ]);
  // Nothing was claimed for them: a later minute (or a later sync) decides afresh.
  const claimedUsers = await db.db.collection('mailwheel_deliveries').distinct('userId');
  expect(claimedUsers.sort()).toEqual(['moved', 'stays']);
});
