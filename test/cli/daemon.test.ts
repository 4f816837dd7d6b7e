/**
 * The headline claim, as processes: `mailwheel seed-users 10000` then `mailwheel start` serves all
 * 10,000 users (the old design silently stopped at 1,000). Every user's first slot is seeded into
 * the next minute, so the running daemon must send 10,000 distinct messages within it; `/stats`
 * reports all 10,000 users scheduled; SIGTERM then stops it with exit 0.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCli, spawnCli, writeTestConfig, type CliProcess } from '../helpers/cli.js';
import { testDb, type TestDb } from '../helpers/db.js';
import { TestSmtpServer } from '../helpers/smtp-server.js';

const USERS = 10_000;
let db: TestDb;
let smtp: TestSmtpServer;
let env: Record<string, string>;
let daemon: CliProcess | undefined;

beforeAll(async () => {
  db = await testDb('daemon');
  smtp = await TestSmtpServer.start();
  const config = writeTestConfig({
    smtp: { poolSize: 10 },
    rate: { perSecond: null, perDay: null },
    http: { enabled: true, host: '127.0.0.1', port: 0 },
  });
  env = { MONGODB_URI: db.uri, SMTP_URL: smtp.url, MAILWHEEL_CONFIG: config, LOG_LEVEL: 'info' };
});

afterAll(async () => {
  if (daemon && daemon.child.exitCode === null) daemon.child.kill('SIGKILL');
  await smtp?.close();
  await db?.cleanup();
});

it('seed-users 10000 then start: all 10,000 scheduled and each sent exactly once', { timeout: 240_000 }, async () => {
  const seed = await runCli(['seed-users', String(USERS), '--inactive-ratio', '0', '--seed', '7', '--soon', '1'], env);
  expect(seed.code, seed.stderr).toBe(0);
  expect(await db.db.collection('users').countDocuments({ active: true })).toBe(USERS);

  daemon = spawnCli(['start'], env);
  await daemon.waitForLog('mailwheel started', 120_000);
  const port = Number(/"port":(\d+),"msg":"http listening"/.exec(daemon.stderr)?.[1]);
  expect(port).toBeGreaterThan(0);
  const stats = (await (await fetch(`http://127.0.0.1:${port}/stats`)).json()) as { users: number; jobs: number };
  expect(stats.users, 'users scheduled').toBe(USERS);
  expect(stats.jobs).toBeGreaterThanOrEqual(USERS);

  // Seeded with --soon 1: every user's first slot is in the minute after seeding. (A user's other,
  // random slots may also fall due while the test runs: that is a second, legitimate delivery.)
  const deadline = Date.now() + 180_000;
  while (smtp.countByRecipient().size < USERS && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
  expect(smtp.countByRecipient().size, 'distinct users served').toBe(USERS);

  daemon.child.kill('SIGTERM');
  const done = await daemon.done;
  expect(done.code, done.stderr.slice(-2000)).toBe(0);
  // Exactly once per delivery key (user, slot, local date).
  const perKey = new Map<string, number>();
  for (const m of smtp.messages) {
    const key = m.headers.get('x-mailwheel-key') ?? '';
    perKey.set(key, (perKey.get(key) ?? 0) + 1);
  }
  expect(perKey.has(''), 'every message carries its delivery key').toBe(false);
  expect([...perKey].filter(([, n]) => n > 1), 'keys sent more than once').toEqual([]);
});
