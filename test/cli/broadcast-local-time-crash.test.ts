/**
 * A local-time broadcast in the real daemon (`mailwheel start`, real clock), SIGKILLed twice: once
 * while the broadcast waits for its next wave, once during the wave. The daemon's clock cannot be
 * driven, so the wave is placed a minute or two ahead: HH:MM is the next whole UTC minute at least
 * 45 s away, and the recipients' zones are at UTC+0 in December (UTC, London, Lisbon, Abidjan,
 * Reykjavik: one wave at that instant); Tokyo's HH:MM has already passed (sent at the first run),
 * New York's is 5 hours later (still waiting at the end). What must hold:
 * - the waiting instant survives the kill: the restarted daemon does not run the broadcast before it;
 * - nobody of the wave is skipped or sent before the instant;
 * - duplicates stay within the two open broadcast batches (the crash bound of any broadcast);
 * - New York is still waiting, with its instant, after the wave.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { broadcastUsers, getBroadcast, HANG_GUARD_MS, insertUsers, perUser, waitWhileProgressing, writeBodies } from '../helpers/broadcasts.js';
import { runCli, spawnCli, writeTestConfig, type CliProcess } from '../helpers/cli.js';
import { testDb, type TestDb } from '../helpers/db.js';
import { TestSmtpServer } from '../helpers/smtp-server.js';

const WAVE_ZONES = ['UTC', 'Europe/London', 'Europe/Lisbon', 'Africa/Abidjan', 'Atlantic/Reykjavik'];
const WAVE_USERS = 4_000;
const TOKYO = 200;
const NEW_YORK = 200;
const BATCH = 250;
const STALL_MS = 90_000;

let db: TestDb;
let smtp: TestSmtpServer;
let env: Record<string, string>;
let textFile: string;
let daemon: CliProcess | undefined;

beforeAll(async () => {
  db = await testDb('broadcast_lt_crash');
  smtp = await TestSmtpServer.start();
  await insertUsers(db.db, [
    ...broadcastUsers(WAVE_USERS, 'w', (i) => ({ timezone: WAVE_ZONES[i % WAVE_ZONES.length] })),
    ...broadcastUsers(TOKYO, 't', () => ({ timezone: 'Asia/Tokyo' })),
    ...broadcastUsers(NEW_YORK, 'n', () => ({ timezone: 'America/New_York' })),
  ]);
  const config = writeTestConfig({
    smtp: { poolSize: 8 },
    // 600/s: the wave takes ~7 s, time enough to kill it halfway.
    rate: { perSecond: 600, perDay: null },
    broadcasts: { batchSize: BATCH, pollMs: 500, controlPollMs: 250, maxConcurrent: 1 },
    send: { claimStaleMs: 5_000 },
    http: { enabled: false },
  });
  env = { MONGODB_URI: db.uri, SMTP_URL: smtp.url, MAILWHEEL_CONFIG: config, LOG_LEVEL: 'info' };
  ({ textFile } = writeBodies(config));
});

afterAll(async () => {
  if (daemon && daemon.child.exitCode === null) daemon.child.kill('SIGKILL');
  await smtp?.close();
  await db?.cleanup();
});

async function startDaemon(): Promise<CliProcess> {
  const d = spawnCli(['start'], env);
  await waitWhileProgressing('daemon start', () => d.stderr.includes('mailwheel started') || d.child.exitCode !== null, () => d.stderr.length, STALL_MS);
  expect(d.stderr).toContain('mailwheel started');
  return d;
}

/** Times (ms) at which this daemon logged that it started a broadcast run. */
function runStarts(d: CliProcess): number[] {
  return d.stderr
    .split('\n')
    .filter((l) => l.includes('"broadcast run started"'))
    .map((l) => (JSON.parse(l) as { time: number }).time);
}

async function kill(d: CliProcess): Promise<void> {
  d.child.kill('SIGKILL');
  expect((await d.done).signal).toBe('SIGKILL');
}

it('SIGKILL while waiting for the wave and during it: the wait survives, nobody skipped, duplicates within the two open batches', { timeout: HANG_GUARD_MS }, async () => {
  daemon = await startDaemon();
  const target = Math.ceil((Date.now() + 45_000) / 60_000) * 60_000;
  const iso = new Date(target).toISOString();
  const [date, time] = [iso.slice(0, 10), iso.slice(11, 16)];
  const send = await runCli(['broadcast', 'send', '--subject', 'Local {{name}}', '--text-file', textFile, '--local-time', time, '--on', date], env);
  expect(send.code, send.stderr).toBe(0);
  const id = send.stdout.trim();

  // The first run sends Tokyo (its HH:MM passed) and waits for the wave, persisted as nextAt.
  await waitWhileProgressing('first run waits', async () => (await getBroadcast(db.db, id)).nextAt?.getTime() === target, () => smtp.messages.length + (daemon?.stderr.length ?? 0), STALL_MS);
  const got0 = perUser(smtp, id);
  expect([...got0.keys()].every((u) => u.startsWith('t'))).toBe(true);
  expect(got0.size).toBe(TOKYO);
  const status = await runCli(['broadcast', 'status', id], env);
  expect(status.stdout).toMatch(new RegExp(`status\\s+running \\(waiting until ${iso.replace(/[.]/g, '\\.')}\\)`));
  expect(status.stdout).toMatch(/zones\s+7: done 200, due now 0, waiting 4,200/);
  expect(status.stdout).toMatch(/America\/New_York\s+\S+ \S+\s+200\s+0\s+0\s+200/);

  // Killed while waiting; the restarted daemon must not run it before the instant.
  await kill(daemon);
  daemon = await startDaemon();
  const d1 = daemon;
  await waitWhileProgressing('the wave starts', () => runStarts(d1).length > 0, () => d1.stderr.length + smtp.messages.length, STALL_MS + Math.max(0, target - Date.now()));
  expect(Math.min(...runStarts(d1)), 'no run before the instant').toBeGreaterThanOrEqual(target);

  // Killed during the wave.
  const half = TOKYO + WAVE_USERS / 2;
  await waitWhileProgressing('half the wave', () => perUser(smtp, id).size >= half, () => smtp.messages.length, STALL_MS, 10);
  await kill(d1);
  const servedAtKill = perUser(smtp, id).size;
  daemon = await startDaemon();
  const d2 = daemon;
  await waitWhileProgressing(
    'the wave completes and waits for New York',
    async () => perUser(smtp, id).size >= TOKYO + WAVE_USERS && (await getBroadcast(db.db, id)).nextAt?.getTime() !== target && runStarts(d2).length > 0,
    () => smtp.messages.length + d2.stderr.length,
    STALL_MS,
    100,
  );
  await waitWhileProgressing('the run ends waiting', async () => (await getBroadcast(db.db, id)).nextAt !== undefined && (await getBroadcast(db.db, id)).nextAt?.getTime() !== target, () => d2.stderr.length, STALL_MS, 100);

  const got = perUser(smtp, id);
  const received = [...got.values()].reduce((a, b) => a + b, 0);
  const duplicates = received - got.size;
  const early = smtp.messages.filter((m) => (m.headers.get('x-mailwheel-key') ?? '').startsWith(`b:${id}:w`) && m.receivedAt < target).length;
  console.log(`local-time SIGKILL: wave at ${iso}, killed at ${servedAtKill} users served; ${got.size} users, ${received} messages, duplicates ${duplicates} (bound: 2 open batches x broadcasts.batchSize ${BATCH}), early ${early}`);
  expect(got.size, 'nobody of the wave skipped, New York not yet').toBe(TOKYO + WAVE_USERS);
  expect([...got.keys()].some((u) => u.startsWith('n'))).toBe(false);
  expect(early, 'nobody of the wave before its instant').toBe(0);
  expect(duplicates).toBeLessThanOrEqual(2 * BATCH);
  const doc = await getBroadcast(db.db, id);
  expect(doc.status).toBe('running');
  expect(doc.counters).toMatchObject({ sent: TOKYO + WAVE_USERS, failed: 0, skipped: 0 });
  const ny = doc.zones?.find((z) => z.zone === 'America/New_York');
  expect(ny).toMatchObject({ users: NEW_YORK, done: 0 });
  expect(doc.nextAt?.getTime()).toBe(ny?.at.getTime());
  expect(doc.nextAt?.getTime()).toBe(target + 5 * 3_600_000); // EST, -5 in December

  const cancel = await runCli(['broadcast', 'cancel', id], env);
  expect(cancel.code, cancel.stderr).toBe(0);
  expect((await getBroadcast(db.db, id)).status).toBe('cancelled');
  daemon.child.kill('SIGTERM');
  const stop = await daemon.done;
  expect(stop.code, stop.stderr.slice(-2000)).toBe(0);
});
