/**
 * `mailwheel preview --user ID` as a process: it prints the header block the daemon would send
 * (List-Unsubscribe included) and both parts rendered for that user's next slot; `--raw` prints
 * the MIME message itself, which a real MIME parser reads back to the same parts. Nothing is sent
 * or claimed.
 */
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCli, writeTestConfig } from '../helpers/cli.js';
import { testDb, type TestDb } from '../helpers/db.js';

let db: TestDb;
let env: Record<string, string>;

beforeAll(async () => {
  db = await testDb('preview');
  await db.db.collection('users').insertMany([
    { _id: 'p1', email: 'ana@example.test', name: 'Ana <Ops> & Co', active: true, timezone: 'Europe/Berlin', emailTimes: ['07:30', '21:00'], updatedAt: new Date() },
    { _id: 'p2', email: 'off@example.test', active: false, emailTimes: ['07:30'] },
  ] as never[]);
  const config = writeTestConfig({ unsubscribe: { secret: 'preview-secret-0123456789', baseUrl: 'https://mail.example.test' } });
  env = { MONGODB_URI: db.uri, MAILWHEEL_CONFIG: config, LOG_LEVEL: 'warn' };
});

afterAll(async () => {
  await db?.cleanup();
});

it('prints headers and both parts for the chosen slot', { timeout: 30_000 }, async () => {
  const r = await runCli(['preview', '--user', 'p1', '--slot', '21:00'], env);
  expect(r.code, r.stderr).toBe(0);
  const out = r.stdout;
  expect(out).toMatch(/^# scheduled email of user p1 for slot 21:00 on \d{4}-\d\d-\d\d \(Europe\/Berlin\), due /);
  expect(out).toMatch(/^From: mailwheel <noreply@example\.com>$/m);
  expect(out).toMatch(/^To: "Ana <Ops> & Co" <ana@example\.test>$/m);
  expect(out).toMatch(/^Subject: Your 21:00 note$/m);
  expect(out).toMatch(/^X-Mailwheel-Key: s:p1:21:00:\d{4}-\d\d-\d\d$/m);
  // As sent: folded over lines, a mailto and the signed one-click link.
  expect(out).toMatch(/^List-Unsubscribe:\n <mailto:unsubscribe@example\.com\?subject=unsubscribe%20[\w.-]+>,\n <https:\/\/mail\.example\.test\/unsubscribe\?t=[\w.-]+>$/m);
  expect(out).toMatch(/^List-Unsubscribe-Post: List-Unsubscribe=One-Click$/m);
  expect(out).toContain('--- text/plain; charset=utf-8 ---\nHello Ana <Ops> & Co,');
  // The html part escapes the name.
  expect(out).toContain('<p>Hello Ana &lt;Ops&gt; &amp; Co,</p>');
  // Nothing was written: no claim, no event.
  expect(await db.db.collection('mailwheel_deliveries').countDocuments({})).toBe(0);
  expect(await db.db.collection('mailwheel_events').countDocuments({})).toBe(0);
});

it('--raw prints the MIME message, which parses back to the same parts', { timeout: 30_000 }, async () => {
  const r = await runCli(['preview', '--user', 'p1', '--raw'], env);
  expect(r.code, r.stderr).toBe(0);
  const mail = await simpleParser(r.stdout);
  expect(mail.subject).toMatch(/^Your (07:30|21:00) note$/);
  expect(mail.text).toContain('Hello Ana <Ops> & Co,');
  expect(mail.html).toContain('<p>Hello Ana &lt;Ops&gt; &amp; Co,</p>');
  expect(mail.headers.get('x-mailwheel-key')).toMatch(/^s:p1:(07:30|21:00):/);
});

it('refuses unknown, inactive users and unknown kinds with clear errors', { timeout: 30_000 }, async () => {
  const [missing, inactive, kind, slot] = await Promise.all([
    runCli(['preview', '--user', 'nobody'], env),
    runCli(['preview', '--user', 'p2'], env),
    runCli(['preview', '--user', 'p1', '--kind', 'weekly'], env),
    runCli(['preview', '--user', 'p1', '--slot', '09:00'], env),
  ]);
  expect([missing.code, missing.stderr.trim()]).toEqual([1, 'mailwheel: no user with _id "nobody"']);
  expect(inactive.code).toBe(1);
  expect(inactive.stderr).toMatch(/inactive or unsubscribed/);
  expect(kind.code).toBe(64);
  expect(slot.code).toBe(64);
  expect(slot.stderr).toMatch(/not one of the user's times \(07:30, 21:00\)/);
});
