/**
 * `run-minute` keeps its promises to the operator (the real CLI, FerretDB, a real SMTP server or a
 * port nothing listens on):
 * - with SMTP unreachable it reports progress and gives up after `--give-up-after` without
 *   progress: claims released, a summary, exit 75 (it used to wait for ever, printing nothing);
 * - SIGTERM prints the same summary and exits 75 when mail was left unsent (it used to exit 0);
 * - `--at` in a minute that has not begun, or older than `send.catchUpLookbackHours`, is refused
 *   with exit 64 naming the bound unless `--force` (it used to send 21 h early);
 * - `--dry-run` counts what would be sent, claiming and sending nothing.
 */
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, spawnCli, writeTestConfig } from '../helpers/cli.js';
import { testDb, type TestDb } from '../helpers/db.js';
import { TestSmtpServer } from '../helpers/smtp-server.js';
import { usersDueAt } from '../helpers/users.js';

const EX_USAGE = 64;
const EX_TEMPFAIL = 75;
const MINUTE_MS = 60_000;
const currentMinute = Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS;
/** Minutes in the recent past (inside the 24 h lookback): one for the outage, one for the dry run. */
const STALL_MINUTE = new Date(currentMinute - 3 * MINUTE_MS).toISOString();
const DRY_MINUTE = new Date(currentMinute - 5 * MINUTE_MS).toISOString();
const STALL_USERS = 20;
const DRY_USERS = 15;

let db: TestDb;
let smtp: TestSmtpServer;
let config: string;
let deadSmtpUrl: string;

async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const env = (smtpUrl: string) => ({ MONGODB_URI: db.uri, SMTP_URL: smtpUrl, MAILWHEEL_CONFIG: config, LOG_LEVEL: 'info' });
const claims = () => db.db.collection('mailwheel_deliveries').countDocuments({ type: 'claim' });

beforeAll(async () => {
  db = await testDb('run_minute_limits');
  smtp = await TestSmtpServer.start();
  deadSmtpUrl = `smtp://127.0.0.1:${await deadPort()}`;
  // Inside the catch-up grace period or not, run-minute sends everything due (a deliberate replay).
  await db.db.collection('users').insertMany([...usersDueAt(STALL_USERS, STALL_MINUTE, 'stall'), ...usersDueAt(DRY_USERS, DRY_MINUTE, 'dry')]);
  config = writeTestConfig({ rate: { perSecond: null, perDay: null }, http: { enabled: false }, send: { backoffBaseMs: 100, backoffMaxMs: 500 } });
});

afterAll(async () => {
  await smtp?.close();
  await db?.cleanup();
});

describe('run-minute with the SMTP server unreachable', () => {
  it('reports progress, gives up after --give-up-after without progress: claims released, summary, exit 75', async () => {
    const started = Date.now();
    const r = await runCli(['run-minute', '--at', STALL_MINUTE, '--give-up-after', '3s', '--progress-every', '1s', '--json'], env(deadSmtpUrl));
    expect(r.code, r.stderr.slice(-2000)).toBe(EX_TEMPFAIL);
    // Bounded: far below the 9 minutes it used to hang (tsx start-up and the sync included).
    expect(Date.now() - started).toBeLessThan(90_000);
    expect(r.stderr).toMatch(new RegExp(`^mailwheel: run-minute ${STALL_MINUTE.replace(/\./g, '\\.')}: [\\d.]+ s in, due ${STALL_USERS}, claimed ${STALL_USERS}, sent 0, .*SMTP breaker open$`, 'm'));
    const summary = JSON.parse(r.stdout.trim()) as Record<string, unknown>;
    expect(summary).toMatchObject({ due: STALL_USERS, claimed: STALL_USERS, sent: 0, failed: 0, released: STALL_USERS, unsent: STALL_USERS, breaker: 'open' });
    expect(String(summary['stopped'])).toMatch(/^gave up after .* unreachable/);
    expect(r.stderr).toMatch(new RegExp(`^mailwheel: run-minute .* gave up .*: ${STALL_USERS} left unsent \\(${STALL_USERS} claims released\\)`, 'm'));
    expect(await claims(), 'claims left behind').toBe(0);
  });

  it('SIGTERM prints the summary and exits 75 when mail was left unsent, claims released', async () => {
    const run = spawnCli(['run-minute', '--at', STALL_MINUTE], env(deadSmtpUrl));
    await run.waitForLog('circuit breaker open', 90_000);
    run.child.kill('SIGTERM');
    const r = await run.done;
    expect(r.code, r.stderr.slice(-2000)).toBe(EX_TEMPFAIL);
    expect(r.stdout).toMatch(new RegExp(`stopped by SIGTERM; due ${STALL_USERS}, claimed ${STALL_USERS}, .*sent 0, .*released ${STALL_USERS}, unsent ${STALL_USERS}`));
    expect(r.stderr).toMatch(/^mailwheel: run-minute .* stopped by SIGTERM: 20 left unsent/m);
    expect(await claims(), 'claims left behind').toBe(0);
  });
});

describe('run-minute --dry-run', () => {
  it('counts what would be sent per template and kind, claims and sends nothing; after a real run, nothing is left', async () => {
    const dry = await runCli(['run-minute', '--at', DRY_MINUTE, '--dry-run', '--json'], env(smtp.url));
    expect(dry.code, dry.stderr.slice(-2000)).toBe(0);
    expect(JSON.parse(dry.stdout.trim())).toEqual({
      minute: DRY_MINUTE,
      dryRun: true,
      due: DRY_USERS,
      wouldSend: DRY_USERS,
      alreadyClaimed: 0,
      suppressed: 0,
      byTemplate: [{ template: 'scheduled', kind: 'scheduled', count: DRY_USERS }],
    });
    expect(await db.db.collection('mailwheel_deliveries').countDocuments({ userId: { $regex: /^dry/ } })).toBe(0);
    expect(smtp.messages).toHaveLength(0);

    const real = await runCli(['run-minute', '--at', DRY_MINUTE, '--json'], env(smtp.url));
    expect(real.code, real.stderr.slice(-2000)).toBe(0);
    expect(smtp.messages).toHaveLength(DRY_USERS);

    const after = await runCli(['run-minute', '--at', DRY_MINUTE, '--dry-run'], env(smtp.url));
    expect(after.code).toBe(0);
    expect(after.stdout).toContain('dry run, nothing claimed or sent');
    expect(after.stdout).toContain(`due ${DRY_USERS}: would send 0, already claimed ${DRY_USERS}, suppressed 0`);
    expect(smtp.messages).toHaveLength(DRY_USERS);
  });
});

describe.concurrent('run-minute --at bounds', () => {
  const QUIET = { LOG_LEVEL: 'warn', MONGODB_URI: 'mongodb://127.0.0.1:9/unused', SMTP_URL: 'smtp://127.0.0.1:9' };

  it('refuses a minute that has not begun (exit 64, naming the current minute and --force)', async () => {
    const r = await runCli(['run-minute', '--at', new Date(currentMinute + 21 * 3_600_000).toISOString()], QUIET);
    expect(r.code).toBe(EX_USAGE);
    expect(r.stderr).toMatch(/--at: .* is after the current minute .*--force/);
  });

  it('refuses a minute older than send.catchUpLookbackHours (exit 64, naming the bound)', async () => {
    const r = await runCli(['run-minute', '--at', '2020-01-01T09:00:00Z'], QUIET);
    expect(r.code).toBe(EX_USAGE);
    expect(r.stderr).toMatch(/--at: 2020-01-01T09:00:00\.000Z is older than send\.catchUpLookbackHours \(24 h, i\.e\. before .*--force/);
  });

  it('an unparsable --give-up-after exits 64 naming the option', async () => {
    const r = await runCli(['run-minute', '--at', new Date(currentMinute).toISOString(), '--give-up-after', 'soon'], QUIET);
    expect(r.code).toBe(EX_USAGE);
    expect(r.stderr).toContain('--give-up-after');
  });
});
