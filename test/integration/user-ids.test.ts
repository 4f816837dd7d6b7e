/**
 * User ids of every type and length, on the real FerretDB and SMTP server:
 * - `_id: 1` and `_id: "1"` are two users: each gets exactly one scheduled mail and one broadcast
 *   mail, and each unsubscribes on its own (the suppression records the typed `_id`). (An
 *   ObjectId and its hex string cannot both be stored here: FerretDB v1 refuses the second as a
 *   duplicate `_id`, MongoDB does not; `test/unit/user-id.test.ts` covers that pair.)
 * - a 1,600-character id is mailed with every header line under 998 characters and can
 *   unsubscribe through the real HTTP handler; a 100 KB id is one `invalid` event, not mailed.
 */
import { ObjectId, type Document } from 'mongodb';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MongoBroadcastStore } from '../../src/adapters/mongo/broadcast-store.js';
import { MongoUserSource } from '../../src/adapters/mongo/user-source.js';
import { loadConfig } from '../../src/config/load.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { perUser, waitForStatus } from '../helpers/broadcasts.js';
import { testDb, type TestDb } from '../helpers/db.js';
import { TestSmtpServer, type ReceivedMessage } from '../helpers/smtp-server.js';

const MINUTE = Date.parse('2027-04-01T07:00:00Z');
const HEX = '65f0a1b2c3d4e5f6a7b8c9d0';
const LONG = 'L'.repeat(1600);
const HUGE = 'H'.repeat(100_000);
/** email -> _id */
const USERS: Array<[string, unknown]> = [
  ['num1@example.test', 1],
  ['str1@example.test', '1'],
  ['oid@example.test', new ObjectId(HEX)],
  ['long@example.test', LONG],
  ['keep@example.test', 'keep'],
];

let db: TestDb;
let smtp: TestSmtpServer;
let t: TestApp;

beforeAll(async () => {
  db = await testDb('user_ids');
  smtp = await TestSmtpServer.start();
  const docs: Document[] = [...USERS, ['huge@example.test', HUGE] as const].map(([email, _id]) => ({ _id, email, active: true, timezone: 'UTC', emailTimes: ['07:00', '07:01'] }));
  await db.db.collection('users').insertMany(docs);
  t = await startTestApp(db.uri, smtp.url, {
    http: { enabled: true, host: '127.0.0.1', port: 0 },
    unsubscribe: { secret: 'test-secret-0123456789abcdef', baseUrl: 'https://mail.example.test/mw', mailto: 'unsub@example.test', tokenTtlDays: 30 },
    broadcasts: { batchSize: 250, pollMs: 200, controlPollMs: 200, maxConcurrent: 1 },
    analytics: { flushIntervalMs: 50 },
  });
  await t.app.start();
});

afterAll(async () => {
  await t?.app.close();
  await smtp?.close();
  await db?.cleanup();
});

const countTo = (messages: readonly ReceivedMessage[]): Map<string, number> => {
  const n = new Map<string, number>();
  for (const m of messages) for (const to of m.to) n.set(to, (n.get(to) ?? 0) + 1);
  return n;
};

function expectShortHeaderLines(m: ReceivedMessage): void {
  const head = m.raw.slice(0, m.raw.indexOf('\r\n\r\n')).split('\r\n');
  const longest = Math.max(...head.map((l) => l.length));
  expect(longest, `longest header line to ${m.to[0]}`).toBeLessThanOrEqual(998);
}

it('run-minute: users whose ids print alike each get exactly one mail; the 100 KB id is one invalid event', async () => {
  const report = await t.app.runMinute(MINUTE);
  expect(report).toMatchObject({ due: USERS.length, sent: USERS.length });
  expect(countTo(smtp.messages)).toEqual(new Map(USERS.map(([email]) => [email, 1])));
  for (const m of smtp.messages) expectShortHeaderLines(m);

  // A rerun of the minute sends nothing: each user's claim holds for that user only.
  await t.app.runMinute(MINUTE);
  expect(smtp.messages.length).toBe(USERS.length);

  while (t.app.analytics.size > 0) await new Promise((r) => setTimeout(r, 20));
  const invalid = await db.db.collection('mailwheel_events').find({ type: 'invalid' }).toArray();
  expect(invalid.map((e) => e['reason'] as string)).toEqual([expect.stringMatching(/^_id: 100000 bytes long, more than 4096/)]);
  expect(String(invalid[0]?.['userId']).length).toBeLessThan(100);
});

it('a broadcast reaches each of them exactly once', async () => {
  const before = smtp.messages.length;
  const b = await new MongoBroadcastStore(db.db, 'mailwheel_').create({ subject: 'News', text: 'Hello', segment: '{}' });
  const done = await waitForStatus(db.db, b._id, ['done']);
  expect(done.counters).toMatchObject({ sent: USERS.length, failed: 0 });
  const mails = smtp.messages.slice(before);
  expect(countTo(mails)).toEqual(new Map(USERS.map(([email]) => [email, 1])));
  expect([...perUser(smtp, b._id).values()]).toEqual(USERS.map(() => 1));
  for (const m of mails) expectShortHeaderLines(m);
});

it('each unsubscribes separately through the HTTP handler; the suppression keeps the typed _id', async () => {
  const post = async (email: string): Promise<number> => {
    const m = smtp.messages.find((x) => x.to[0] === email);
    const link = /<(https:[^>]+)>/.exec(m?.headers.get('list-unsubscribe') ?? '')?.[1] ?? '';
    const res = await fetch(`http://127.0.0.1:${t.app.httpPort}/unsubscribe${new URL(link).search}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'List-Unsubscribe=One-Click',
    });
    return res.status;
  };
  const suppressions = db.db.collection<Document>('mailwheel_suppressions');

  expect(await post('num1@example.test')).toBe(200);
  expect(t.app.suppressions.has('num1@example.test')).toBe(true);
  expect(t.app.suppressions.has('str1@example.test')).toBe(false);
  expect(await suppressions.findOne({ _id: 'num1@example.test' } as Document)).toMatchObject({ suppressed: true, userId: 1 });

  expect(await post('str1@example.test')).toBe(200);
  expect(await suppressions.findOne({ _id: 'str1@example.test' } as Document)).toMatchObject({ suppressed: true, userId: '1' });
  expect(await post('oid@example.test')).toBe(200);
  const oid = await suppressions.findOne({ _id: 'oid@example.test' } as Document);
  expect(oid?.['userId'] instanceof ObjectId && oid['userId'].toHexString()).toBe(HEX);

  expect(await post('long@example.test')).toBe(200);
  expect(await suppressions.findOne({ _id: 'long@example.test' } as Document)).toMatchObject({ suppressed: true, userIdDigest: expect.stringMatching(/^h:/) });

  // The next slot goes to the one user left subscribed.
  const before = smtp.messages.length;
  const report = await t.app.runMinute(MINUTE + 60_000);
  expect(report).toMatchObject({ due: USERS.length, sent: 1, suppressed: 4 });
  expect(smtp.messages.slice(before).map((m) => m.to[0])).toEqual(['keep@example.test']);
});

it('looking a user up by its id text (preview, schedule show) finds the user of that type', async () => {
  const source = new MongoUserSource(db.db.collection('users'), loadConfig({ env: {} }).config);
  const emailOf = async (id: string) => (await source.byId(id))?.['email'];
  expect(await emailOf('n:1')).toBe('num1@example.test');
  expect(await emailOf('1')).toBe('str1@example.test');
  expect(await emailOf('s:1')).toBe('str1@example.test');
  expect(await emailOf(HEX)).toBe('oid@example.test');
  expect(await emailOf(`s:${HEX}`)).toBeUndefined();
  expect(await emailOf('n:2')).toBeUndefined();
});
