/**
 * Graceful stop, as a process: SIGTERM in the middle of a 2,000-send minute exits 0, and a rerun
 * of the same minute completes it: every user ends with exactly one message (nothing sent twice,
 * nothing missed). The SMTP server answers slowly so that the signal lands mid-run.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCli, spawnCli, writeTestConfig } from '../helpers/cli.js';
import { testDb, type TestDb } from '../helpers/db.js';
import { TestSmtpServer } from '../helpers/smtp-server.js';
import { usersDueAt } from '../helpers/users.js';

const MINUTE = '2027-02-01T08:30:00Z';
const USERS = 2000;

let db: TestDb;
let smtp: TestSmtpServer;
let env: Record<string, string>;

beforeAll(async () => {
  db = await testDb('graceful');
  smtp = await TestSmtpServer.start({ fault: { kind: 'stall', ms: 20 } });
  await db.db.collection('users').insertMany(usersDueAt(USERS, MINUTE, 'g'));
  const config = writeTestConfig({
    smtp: { poolSize: 5 },
    // 200/s: the run takes ~10 s, long enough to interrupt it part way.
    rate: { perSecond: 200, perDay: null },
    send: { drainTimeoutMs: 10_000 },
    http: { enabled: false },
  });
  env = { MONGODB_URI: db.uri, SMTP_URL: smtp.url, MAILWHEEL_CONFIG: config, LOG_LEVEL: 'info' };
});

afterAll(async () => {
  await smtp?.close();
  await db?.cleanup();
});

it('SIGTERM mid-run exits 75 with a summary of what is left; a rerun completes the minute with exactly one message per user', async () => {
  const run = spawnCli(['run-minute', '--at', MINUTE, '--force', '--json'], env);
  await smtp.waitFor(300, 60_000);
  run.child.kill('SIGTERM');
  const first = await run.done;
  // Mail was left unsent (its claims released): EX_TEMPFAIL, and the summary says how much.
  expect(first.code, first.stderr.slice(-2000)).toBe(75);
  expect(first.stderr).toContain('stopping gracefully');
  const afterStop = smtp.messages.length;
  expect(afterStop).toBeGreaterThanOrEqual(300);
  expect(afterStop).toBeLessThan(USERS);
  const summary = JSON.parse(first.stdout.trim()) as Record<string, unknown>;
  expect(summary).toMatchObject({ stopped: 'stopped by SIGTERM', due: USERS, sent: afterStop, unsent: USERS - afterStop });
  expect(first.stderr).toMatch(new RegExp(`^mailwheel: run-minute .* stopped by SIGTERM: ${(USERS - afterStop).toLocaleString('en-US')} left unsent`, 'm'));

  const second = await runCli(['run-minute', '--at', MINUTE, '--force', '--json'], env);
  expect(second.code, second.stderr.slice(-2000)).toBe(0);
  const report = JSON.parse(second.stdout.trim()) as Record<string, number>;
  // The rerun sends exactly what the first run had not.
  expect(report['sent']).toBe(USERS - afterStop);

  const perRecipient = smtp.countByRecipient();
  expect(perRecipient.size).toBe(USERS);
  const twice = [...perRecipient].filter(([, n]) => n !== 1);
  expect(twice).toEqual([]);
});
