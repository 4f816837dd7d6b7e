/**
 * Acceptance (issue 5), as processes: the daemon is stopped (SIGTERM) across a slot and started
 * again after it.
 * - A: restarted inside the grace period: the missed sends go out, once.
 * - B: restarted after the grace period (1 s here): one `missed` event per fire, no sends.
 * Then both are started once more with the checkpoint moved back before the slot (as if an older
 * instance had written it), which re-fires the same slot: claims make that a no-op, so nobody
 * gets a second message and no fire is recorded as missed twice.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { spawnCli, writeTestConfig, type CliProcess } from '../helpers/cli.js';
import { testDb, type TestDb } from '../helpers/db.js';
import { TestSmtpServer } from '../helpers/smtp-server.js';
import { usersDueAt } from '../helpers/users.js';

const N = 40;
const MINUTE_MS = 60_000;

interface Side {
  name: 'A' | 'B';
  db: TestDb;
  smtp: TestSmtpServer;
  env: Record<string, string>;
}

const sides: Side[] = [];
const running = new Set<CliProcess>();

beforeAll(async () => {
  for (const [name, graceMs] of [['A', 120_000], ['B', 1_000]] as const) {
    const db = await testDb(`catchup_${name}`);
    const smtp = await TestSmtpServer.start();
    const config = writeTestConfig({ http: { enabled: false }, rate: { perSecond: null, perDay: null }, send: { catchUpGraceMs: graceMs } });
    sides.push({ name, db, smtp, env: { MONGODB_URI: db.uri, SMTP_URL: smtp.url, MAILWHEEL_CONFIG: config, LOG_LEVEL: 'info' } });
  }
});

afterAll(async () => {
  for (const p of running) if (p.child.exitCode === null) p.child.kill('SIGKILL');
  for (const s of sides) {
    await s.smtp.close();
    await s.db.cleanup();
  }
});

async function startDaemon(side: Side): Promise<CliProcess> {
  const p = spawnCli(['start'], side.env);
  running.add(p);
  await p.waitForLog('mailwheel started', 60_000);
  return p;
}

async function stopDaemon(p: CliProcess): Promise<string> {
  p.child.kill('SIGTERM');
  const done = await p.done;
  running.delete(p);
  expect(done.code, done.stderr.slice(-2000)).toBe(0);
  return done.stderr;
}

const events = (s: Side, type: string) => s.db.db.collection('mailwheel_events').find({ type }).toArray();
const checkpoint = async (s: Side) => (await s.db.db.collection<{ _id: string; lastMinute?: number }>('mailwheel_state').findOne({ _id: 'scheduler' }))?.['lastMinute'] as number | undefined;

it('restart inside the grace period sends the missed fires once; after it records them as missed', { timeout: 200_000 }, async () => {
  // Run 1: the daemons run with no users and stop; the checkpoint records how far they got.
  const first = await Promise.all(sides.map(startDaemon));
  await Promise.all(first.map(stopDaemon));
  const saved = await Promise.all(sides.map(checkpoint));
  for (const c of saved) expect(c, 'checkpoint saved at stop').toBeTypeOf('number');
  const stoppedMinute = Math.max(...(saved as number[]));
  expect(stoppedMinute).toBeGreaterThanOrEqual(Math.floor(Date.now() / MINUTE_MS) - 1);

  // While they are down, N users with a slot at the next minute boundary are added, and the slot
  // passes with no daemon running.
  const slot = (Math.floor(Date.now() / MINUTE_MS) + 1) * MINUTE_MS;
  const slotIso = new Date(slot).toISOString();
  for (const s of sides) await s.db.db.collection('users').insertMany(usersDueAt(N, slotIso, `cu${s.name}`));
  const wait = slot + 3_000 - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));

  // Run 2.
  const [a, b] = sides as [Side, Side];
  const second = await Promise.all(sides.map(startDaemon));
  await a.smtp.waitFor(N, 30_000);
  const deadline = Date.now() + 30_000;
  while ((await events(b, 'missed')).length < N && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  const logs2 = await Promise.all(second.map(stopDaemon));
  for (const log of logs2) expect(log).toContain('catching up on fires missed while down');

  expect(a.smtp.messages).toHaveLength(N);
  expect([...a.smtp.countByRecipient().values()].every((n) => n === 1)).toBe(true);
  expect(await events(a, 'missed')).toHaveLength(0);
  expect(await events(a, 'sent')).toHaveLength(N);

  expect(b.smtp.messages).toHaveLength(0);
  const missed = await events(b, 'missed');
  expect(missed).toHaveLength(N);
  expect(new Set(missed.map((e) => e['key'])).size).toBe(N);
  expect(String(missed[0]?.['reason'])).toMatch(/before the daemon started \(grace 1 s\)/);
  expect(await b.db.db.collection('mailwheel_deliveries').countDocuments({ type: 'done', status: 'missed' })).toBe(N);
  for (const s of sides) expect(await checkpoint(s)).toBeGreaterThanOrEqual(slot / MINUTE_MS);

  // Run 3: checkpoint moved back before the slot, so the slot is fired again.
  for (const s of sides) await s.db.db.collection<{ _id: string; lastMinute?: number }>('mailwheel_state').updateOne({ _id: 'scheduler' }, { $set: { lastMinute: stoppedMinute } });
  const third = await Promise.all(sides.map(startDaemon));
  const until = Date.now() + 30_000;
  while ((await events(a, 'skipped')).length < N && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
  await new Promise((r) => setTimeout(r, 1_000));
  await Promise.all(third.map(stopDaemon));
  expect(await events(a, 'skipped'), 'A: re-fired keys are skipped by their claims').toHaveLength(N);
  expect(a.smtp.messages, 'A: nothing sent twice').toHaveLength(N);
  expect(b.smtp.messages).toHaveLength(0);
  expect(await events(b, 'missed'), 'B: missed recorded once').toHaveLength(N);
});
