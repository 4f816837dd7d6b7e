/**
 * Crash safety of a broadcast, as processes: the daemon (`mailwheel start`) is SIGKILLed at three
 * random moments of a 10,000-user broadcast and restarted each time. After the last restart the
 * broadcast completes and:
 * - nobody is missed;
 * - duplicates (handed to SMTP, outcome not yet recorded when the process died) stay within the
 *   in-flight window derived from the config: a run confirms a batch only once every outcome of
 *   it is written and keeps two batches open (the next one sends while the previous one's writes
 *   finish), so per crash at most two batches (2 × `broadcasts.batchSize`) can hold messages sent
 *   but unrecorded. The test prints the count and the bound.
 * The restarted daemon takes the run over once the dead instance counts as gone (its heartbeat
 * older than `send.claimStaleMs`, or at once when its process on this host no longer exists),
 * and the dead instance's unfinished claims with it.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { broadcastUsers, getBroadcast, HANG_GUARD_MS, insertUsers, perUser, waitWhileProgressing, writeBodies } from '../helpers/broadcasts.js';
import { runCli, spawnCli, writeTestConfig, type CliProcess } from '../helpers/cli.js';
import { testDb, type TestDb } from '../helpers/db.js';
import { TestSmtpServer } from '../helpers/smtp-server.js';

const USERS = 10_000;
const BATCH = 250;
const KILLS = 3;
/** Batches a run keeps open at once (core/broadcast-run.ts): the crash bound is this many batches. */
const OPEN_BATCHES = 2;
let db: TestDb;
let smtp: TestSmtpServer;
let env: Record<string, string>;
let textFile: string;
let daemon: CliProcess | undefined;

beforeAll(async () => {
  db = await testDb('broadcast_crash');
  smtp = await TestSmtpServer.start();
  await insertUsers(db.db, broadcastUsers(USERS, 'k'));
  const config = writeTestConfig({
    smtp: { poolSize: 10 },
    // 800/s: ~13 s of sending, time enough for three kills.
    rate: { perSecond: 800, perDay: null },
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

/** No new message, log line or counter for this long means stuck (the waits are bounded by it, not by a total). */
const STALL_MS = 90_000;

async function startDaemon(): Promise<CliProcess> {
  const d = spawnCli(['start'], env);
  await waitWhileProgressing('daemon start', () => d.stderr.includes('mailwheel started') || d.child.exitCode !== null, () => d.stderr.length, STALL_MS);
  expect(d.stderr).toContain('mailwheel started');
  return d;
}

it(`SIGKILL at ${KILLS} random moments of a ${USERS}-user broadcast: nobody missed, duplicates within the bound`, { timeout: HANG_GUARD_MS }, async () => {
  daemon = await startDaemon();
  const send = await runCli(['broadcast', 'send', '--subject', 'Crash test {{name}}', '--text-file', textFile], env);
  expect(send.code, send.stderr).toBe(0);
  const id = send.stdout.trim();

  // One random moment in each third of the run (by users served so far).
  const moments = [0.1, 0.4, 0.7].map((lo) => Math.round(USERS * (lo + Math.random() * 0.15)));
  for (const [i, at] of moments.entries()) {
    await waitWhileProgressing(`serving ${at} users`, () => perUser(smtp, id).size >= at, () => smtp.messages.length, STALL_MS, 10);
    const proc = daemon;
    proc.child.kill('SIGKILL');
    const end = await proc.done;
    expect(end.signal).toBe('SIGKILL');
    const doc = await getBroadcast(db.db, id);
    const served = perUser(smtp, id).size;
    const killedAt = Date.now();
    if (i === 0) {
      // What an operator sees meanwhile: still running, its holder silent.
      const status = await runCli(['broadcast', 'status', id], env);
      expect(status.stdout).toMatch(/status\s+running\n/);
      expect(status.stdout).toMatch(/run\s+generation 1 by \S+ \(heartbeat \d+ s ago\)/);
    }
    daemon = await startDaemon();
    const upAt = Date.now();
    const d = daemon;
    await waitWhileProgressing('run takeover', () => d.stderr.includes('broadcast run started'), () => d.stderr.length, STALL_MS);
    const runAt = Date.now();
    // The new daemon takes the run over once the dead one counts as gone.
    await waitWhileProgressing('sending again', () => perUser(smtp, id).size > served, () => d.stderr.length + smtp.messages.length, STALL_MS, 10);
    const s = (t: number): string => ((t - killedAt) / 1000).toFixed(1);
    console.log(`kill ${i + 1}: at ${served} users served (aimed at ${at}), checkpoint ${doc.checkpoint?.processed ?? 0}, gen ${doc.gen}; daemon up ${s(upAt)} s, run taken over ${s(runAt)} s, sending again ${s(Date.now())} s after the kill`);
  }

  await waitWhileProgressing('broadcast done', async () => (await getBroadcast(db.db, id)).status === 'done', () => smtp.messages.length, STALL_MS, 100);
  const done = await getBroadcast(db.db, id);
  const got = perUser(smtp, id);
  const received = [...got.values()].reduce((a, b) => a + b, 0);
  const duplicates = received - got.size;
  const bound = KILLS * OPEN_BATCHES * BATCH;
  console.log(`SIGKILL x${KILLS}: ${got.size} users served, ${received} messages, duplicates ${duplicates} (bound: ${KILLS} kills x ${OPEN_BATCHES} open batches x broadcasts.batchSize ${BATCH} = ${bound}); final generation ${done.gen}`);
  expect(got.size, 'nobody missed').toBe(USERS);
  expect(duplicates).toBeLessThanOrEqual(bound);
  expect(done.gen).toBeGreaterThanOrEqual(KILLS + 1);
  // Each user's outcome is recorded once, whatever was sent twice.
  expect(done.counters).toMatchObject({ sent: USERS, failed: 0, skipped: 0, suppressed: 0, total: USERS });

  daemon.child.kill('SIGTERM');
  const stop = await daemon.done;
  expect(stop.code, stop.stderr.slice(-2000)).toBe(0);
});
