/**
 * Operator control of a running broadcast, through the real CLI against a daemon (in-process)
 * sending to a real SMTP server at a limited rate (so there is time to interrupt it):
 * - pause at ~40 %, `status` shows it paused with counts that match what the server received,
 *   nothing is sent while paused, resume completes it: every user exactly once;
 * - cancel stops new sends within one batch, `status` shows how many were sent before it, and
 *   nothing is sent afterwards.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { App } from '../../src/app/app.js';
import { startTestApp } from '../helpers/app.js';
import { broadcastUsers, controlOf, getBroadcast, insertUsers, perUser, waitForStatus, writeBodies } from '../helpers/broadcasts.js';
import { runCli, writeTestConfig } from '../helpers/cli.js';
import { testDb, type TestDb } from '../helpers/db.js';
import { TestSmtpServer } from '../helpers/smtp-server.js';

const USERS = 5_000;
const BATCH = 250;
const OVERRIDES = {
  smtp: { poolSize: 10 },
  // 400/s: a 5,000-user broadcast takes ~12 s, long enough to pause and cancel part way.
  rate: { perSecond: 400, perDay: null },
  broadcasts: { batchSize: BATCH, pollMs: 300, controlPollMs: 200, maxConcurrent: 1 },
  send: { claimStaleMs: 5_000 },
  http: { enabled: false },
};

let db: TestDb;
let smtp: TestSmtpServer;
let app: App;
let env: Record<string, string>;
let bodies: { textFile: string; htmlFile: string };

beforeAll(async () => {
  db = await testDb('broadcast_control');
  smtp = await TestSmtpServer.start();
  await insertUsers(db.db, broadcastUsers(USERS, 'p'));
  const config = writeTestConfig(OVERRIDES);
  env = { MONGODB_URI: db.uri, SMTP_URL: smtp.url, MAILWHEEL_CONFIG: config, LOG_LEVEL: 'warn' };
  bodies = writeBodies(config);
  ({ app } = await startTestApp(db.uri, smtp.url, OVERRIDES));
  await app.start();
});

afterAll(async () => {
  await app?.close();
  await smtp?.close();
  await db?.cleanup();
});

async function send(subject: string): Promise<string> {
  const r = await runCli(['broadcast', 'send', '--subject', subject, '--text-file', bodies.textFile], env);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim();
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('pause and resume', () => {
  it('pauses near 40 %, shows the paused state and counts, sends nothing while paused, then resumes exactly once', { timeout: 120_000 }, async () => {
    const id = await send('Pause me');
    // The CLI takes ~0.7 s to start (~300 messages at 400/s): ask at ~34 % to pause near 40 %.
    await vi.waitFor(() => expect(perUser(smtp, id).size).toBeGreaterThanOrEqual(USERS * 0.34), { timeout: 60_000, interval: 20 });
    const pause = await runCli(['broadcast', 'pause', id], env);
    expect(pause.code, pause.stderr).toBe(0);
    expect(pause.stdout).toMatch(new RegExp(`broadcast ${id} paused: [\\d,]+ / 5,000`));
    const atPause = perUser(smtp, id).size;
    console.log(`paused at ${atPause} of ${USERS} (${((atPause * 100) / USERS).toFixed(1)} %)`);
    expect(atPause).toBeGreaterThan(USERS * 0.2);
    expect(atPause).toBeLessThan(USERS * 0.8);

    await sleep(1500);
    expect(perUser(smtp, id).size, 'nothing is sent while paused').toBe(atPause);
    const doc = await getBroadcast(db.db, id);
    expect(doc.status).toBe('paused');
    expect(doc.counters.sent).toBe(atPause);

    const status = await runCli(['broadcast', 'status', id], env);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/status\s+paused\n/);
    expect(status.stdout).toContain(`sent       ${atPause.toLocaleString('en-US')}\n`);
    expect(status.stdout).toMatch(/checkpoint [\d,]+ users in \d+ confirmed batches/);
    const json = JSON.parse((await runCli(['broadcast', 'status', id, '--json'], env)).stdout) as { status: string; counters: { sent: number; total: number }; request: string };
    expect(json).toMatchObject({ status: 'paused', request: 'pause', counters: { sent: atPause, total: USERS } });

    const again = await runCli(['broadcast', 'pause', id], env);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('already paused');

    const resume = await runCli(['broadcast', 'resume', id], env);
    expect(resume.code, resume.stderr).toBe(0);
    const done = await waitForStatus(db.db, id, ['done'], 60_000);
    const got = perUser(smtp, id);
    expect(got.size).toBe(USERS);
    expect([...got].filter(([, n]) => n > 1), 'sent twice').toEqual([]);
    expect(done.counters).toEqual({ total: USERS, sent: USERS, failed: 0, skipped: 0, suppressed: 0 });
    expect(done.gen).toBe(2);

    const late = await runCli(['broadcast', 'resume', id], env);
    expect(late.code).toBe(1);
    expect(late.stderr).toContain('it is done');
  });
});

describe('cancel', () => {
  it('stops new sends within one batch; status shows how many were sent before; nothing afterwards', { timeout: 120_000 }, async () => {
    const id = await send('Cancel me');
    await vi.waitFor(() => expect(perUser(smtp, id).size).toBeGreaterThanOrEqual(USERS * 0.15), { timeout: 60_000, interval: 20 });
    const cancel = await runCli(['broadcast', 'cancel', id], env);
    expect(cancel.code, cancel.stderr).toBe(0);
    const doc = await getBroadcast(db.db, id);
    expect(doc.status).toBe('cancelled');
    const requestedAt = (await controlOf(db.db, id))?.at.getTime() ?? 0;
    const sent = perUser(smtp, id).size;
    const afterRequest = smtp.messages.filter((m) => (m.headers.get('x-mailwheel-key') ?? '').startsWith(`b:${id}:`) && m.receivedAt > requestedAt).length;
    console.log(`cancel: ${sent} of ${USERS} sent; ${afterRequest} of them after the request (one batch = ${BATCH})`);
    expect(afterRequest, 'sends after the cancel request').toBeLessThanOrEqual(BATCH);
    expect(cancel.stdout).toContain(`broadcast ${id} cancelled: ${sent.toLocaleString('en-US')} / 5,000`);
    expect(cancel.stdout).toContain(`sent ${sent.toLocaleString('en-US')},`);
    expect(cancel.stdout).toContain('before the cancel');
    expect(doc.counters.sent).toBe(sent);
    expect(sent).toBeLessThan(USERS);

    await sleep(1500);
    expect(perUser(smtp, id).size, 'nothing is sent after the cancel').toBe(sent);
    const status = await runCli(['broadcast', 'status', id], env);
    expect(status.stdout).toMatch(/status\s+cancelled\n/);
    expect(status.stdout).toContain(`sent       ${sent.toLocaleString('en-US')}\n`);
    const resume = await runCli(['broadcast', 'resume', id], env);
    expect(resume.code).toBe(1);
    expect(resume.stderr).toContain('it is cancelled');

    const list = await runCli(['broadcast', 'list'], env);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`${id}\\s+cancelled`));
  });
});

describe('--at', () => {
  // Six CLI runs and a broadcast: generous, a loaded machine takes seconds per CLI start.
  it('a scheduled broadcast waits for its instant; one cancelled before its instant never sends', { timeout: 240_000 }, async () => {
    const at = new Date(Date.now() + 4_000);
    const segment = JSON.stringify({ _id: { $in: ['p000001', 'p000002', 'p000003'] } });
    const r = await runCli(['broadcast', 'send', '--subject', 'Later', '--text-file', bodies.textFile, '--segment', segment, '--at', at.toISOString(), '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    const { id, status } = JSON.parse(r.stdout) as { id: string; status: string };
    expect(status).toBe('queued');
    const early = await runCli(['broadcast', 'status', id], env);
    // Only if that read surely happened before the instant (a loaded machine may take longer
    // than the 4 s to get here; startedAt and the first message below prove the wait either way).
    if (Date.now() < at.getTime()) expect(early.stdout).toMatch(/status\s+queued \(scheduled for /);
    else expect(early.code, early.stderr).toBe(0);

    const far = JSON.parse((await runCli(['broadcast', 'send', '--subject', 'Never', '--text-file', bodies.textFile, '--segment', segment, '--at', new Date(Date.now() + 3_600_000).toISOString(), '--json'], env)).stdout) as { id: string };
    const cancel = await runCli(['broadcast', 'cancel', far.id], env);
    expect(cancel.code, cancel.stderr).toBe(0);
    expect(cancel.stdout).toContain(`broadcast ${far.id} cancelled`);

    const done = await waitForStatus(db.db, id, ['done'], 120_000);
    const mine = smtp.messages.filter((m) => (m.headers.get('x-mailwheel-key') ?? '').startsWith(`b:${id}:`));
    expect(mine).toHaveLength(3);
    expect(Math.min(...mine.map((m) => m.receivedAt))).toBeGreaterThanOrEqual(at.getTime());
    expect(done.startedAt?.getTime()).toBeGreaterThanOrEqual(at.getTime());
    expect(perUser(smtp, far.id).size).toBe(0);
    expect((await getBroadcast(db.db, far.id)).status).toBe('cancelled');
  });
});
