/**
 * One-click unsubscribe end to end: the message as received carries RFC 8058 headers; POSTing to
 * the https link in `List-Unsubscribe` (to the daemon's own HTTP server) suppresses the user, and
 * the next slot is not sent to them.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { testDb, type TestDb } from '../helpers/db.js';
import { TestSmtpServer } from '../helpers/smtp-server.js';

let db: TestDb;
let smtp: TestSmtpServer;
let t: TestApp;
const MINUTE = Date.parse('2027-04-01T07:00:00Z');

beforeAll(async () => {
  db = await testDb('unsub_e2e');
  smtp = await TestSmtpServer.start();
  await db.db.collection<{ _id: string }>('users').insertMany(
    ['alice', 'bob'].map((id) => ({ _id: id, email: `${id}@example.test`, active: true, timezone: 'UTC', emailTimes: ['07:00', '07:01'] })),
  );
  t = await startTestApp(db.uri, smtp.url, {
    http: { enabled: true, host: '127.0.0.1', port: 0 },
    unsubscribe: { secret: 'test-secret-0123456789abcdef', baseUrl: 'https://mail.example.test/mw', mailto: 'unsub@example.test', tokenTtlDays: 30 },
  });
  await t.app.start();
});

afterAll(async () => {
  await t?.app.close();
  await smtp?.close();
  await db?.cleanup();
});

it('the received message carries List-Unsubscribe (mailto + https) and List-Unsubscribe-Post', async () => {
  await t.app.runMinute(MINUTE);
  const alice = smtp.messages.find((m) => m.to[0] === 'alice@example.test');
  expect(alice).toBeDefined();
  const header = alice?.headers.get('list-unsubscribe') ?? '';
  expect(header).toMatch(/<mailto:unsub@example\.test\?subject=[^>]+>/);
  expect(header).toMatch(/<https:\/\/mail\.example\.test\/mw\/unsubscribe\?t=[^>]+>/);
  expect(alice?.headers.get('list-unsubscribe-post')).toBe('List-Unsubscribe=One-Click');
});

it('a one-click POST to that link suppresses the user; their next slot is not sent', async () => {
  const alice = smtp.messages.find((m) => m.to[0] === 'alice@example.test');
  const link = /<(https:[^>]+)>/.exec(alice?.headers.get('list-unsubscribe') ?? '')?.[1] ?? '';
  // The public base URL would be proxied to the daemon; here we call the daemon directly.
  const url = new URL(link);
  const res = await fetch(`http://127.0.0.1:${t.app.httpPort}/unsubscribe${url.search}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'List-Unsubscribe=One-Click',
  });
  expect(res.status).toBe(200);
  expect(t.app.suppressions.has('alice@example.test')).toBe(true);

  const before = smtp.messages.length;
  const report = await t.app.runMinute(MINUTE + 60_000);
  expect(report).toMatchObject({ due: 2, sent: 1, suppressed: 1 });
  expect(smtp.messages.slice(before).map((m) => m.to[0])).toEqual(['bob@example.test']);
});
