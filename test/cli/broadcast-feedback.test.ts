/**
 * `broadcast status` and `broadcast list` with bounces and complaints, through the real CLI on a
 * real FerretDB: the feedback counts are the `<prefix>feedback_counts` documents as the feedback
 * sink keeps them (written here by hand: the sink is tested on its own), and the pause request
 * is written by the broadcast store with its reason, as an automatic pause writes it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MongoBroadcastStore } from '../../src/adapters/mongo/broadcast-store.js';
import { runCli, writeTestConfig } from '../helpers/cli.js';
import { testDb, type TestDb } from '../helpers/db.js';

let db: TestDb;
let env: Record<string, string>;
let store: MongoBroadcastStore;
const PAUSED = '20260308-090000-feed01';
const FRESH = '20260308-100000-feed02';
const PARTIAL = '20260308-110000-feed03';
const REASON = 'complaint rate 0.60 % >= 0.30 % (6 complaints / 1,000 sent)';

function broadcastDoc(id: string, status: string, sent: number, createdAt: Date): Record<string, unknown> {
  return { _id: id, subject: `S ${id}`, text: 'T', segment: '{}', status, createdAt, counters: { total: 2_000, sent, failed: 0, skipped: 0, suppressed: 0 }, gen: 1, startedAt: createdAt, updatedAt: createdAt };
}

beforeAll(async () => {
  db = await testDb('broadcast_feedback');
  env = { MONGODB_URI: db.uri, SMTP_URL: 'smtp://127.0.0.1:9', MAILWHEEL_CONFIG: writeTestConfig({ http: { enabled: false } }), LOG_LEVEL: 'warn' };
  store = new MongoBroadcastStore(db.db, 'mailwheel_');
  await db.db.collection('mailwheel_broadcasts').insertMany([
    broadcastDoc(PAUSED, 'paused', 1_000, new Date('2026-03-08T09:00:00Z')),
    broadcastDoc(FRESH, 'running', 0, new Date('2026-03-08T10:00:00Z')),
    broadcastDoc(PARTIAL, 'done', 400, new Date('2026-03-08T11:00:00Z')),
  ] as never);
  await db.db.collection('mailwheel_feedback_counts').insertMany([
    { _id: `b:${PAUSED}`, hardBounces: 12, softBounces: 3, complaints: 6 },
    // A report before any send was counted: no rate rather than a division by zero.
    { _id: `b:${FRESH}`, hardBounces: 1, softBounces: 0, complaints: 0 },
    // Only complaints so far: the sink has not written the other fields.
    { _id: `b:${PARTIAL}`, complaints: 2 },
    { _id: 'd:2026-03-08', hardBounces: 13, softBounces: 3, complaints: 8 },
  ] as never);
  await store.requestControl(PAUSED, 'pause', REASON);
});

afterAll(async () => {
  await db?.cleanup();
});

describe('broadcast status with bounces and complaints', () => {
  it('shows the counts, both rates, and why it was paused', async () => {
    const r = await runCli(['broadcast', 'status', PAUSED], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`status     paused: ${REASON}\n`);
    expect(r.stdout).toMatch(/^bounces {4}12 hard \(rate 1\.20 %\), 3 soft$/m);
    expect(r.stdout).toMatch(/^complaints 6 \(rate 0\.60 %\)$/m);
  });

  it('--json carries the counts, the rates and the reason', async () => {
    const r = await runCli(['broadcast', 'status', PAUSED, '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { status: string; request: string; requestReason: string | null; feedback: Record<string, number | null> };
    expect(j).toMatchObject({ status: 'paused', request: 'pause', requestReason: REASON });
    expect(j.feedback).toMatchObject({ hardBounces: 12, softBounces: 3, complaints: 6 });
    expect(j.feedback['bounceRate']).toBeCloseTo(0.012, 12);
    expect(j.feedback['complaintRate']).toBeCloseTo(0.006, 12);
  });

  it('a broadcast that sent nothing shows "–" for its rates (null in JSON); missing fields count as 0', async () => {
    const fresh = await runCli(['broadcast', 'status', FRESH], env);
    expect(fresh.code, fresh.stderr).toBe(0);
    expect(fresh.stdout).toMatch(/^bounces {4}1 hard \(rate –\), 0 soft$/m);
    expect(fresh.stdout).toMatch(/^complaints 0 \(rate –\)$/m);
    expect(fresh.stdout).toMatch(/^status {5}running\n/m);
    const json = JSON.parse((await runCli(['broadcast', 'status', FRESH, '--json'], env)).stdout) as { requestReason: unknown; feedback: Record<string, unknown> };
    expect(json.requestReason).toBeNull();
    expect(json.feedback).toEqual({ hardBounces: 1, softBounces: 0, complaints: 0, bounceRate: null, complaintRate: null });
    const partial = await runCli(['broadcast', 'status', PARTIAL], env);
    expect(partial.stdout).toMatch(/^bounces {4}0 hard \(rate 0\.00 %\), 0 soft$/m);
    expect(partial.stdout).toMatch(/^complaints 2 \(rate 0\.50 %\)$/m);
  });

  it('list shows both rates per broadcast', async () => {
    const r = await runCli(['broadcast', 'list'], env);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toMatch(/FAILED\s+BOUNCE\s+COMPLAINT\s+CREATED/);
    expect(lines.find((l) => l.startsWith(PAUSED))).toMatch(/1\.20 %\s+0\.60 %\s+2026-03-08T09:00:00Z/);
    expect(lines.find((l) => l.startsWith(FRESH))).toMatch(/–\s+–\s+2026-03-08T10:00:00Z/);
    const json = JSON.parse((await runCli(['broadcast', 'list', '--json'], env)).stdout) as Array<{ id: string; feedback: { complaints: number } }>;
    expect(json.find((b) => b.id === PARTIAL)?.feedback.complaints).toBe(2);
  });

  it('an operator request without a reason replaces it: the status no longer gives one', async () => {
    await store.requestControl(PAUSED, 'resume');
    const r = await runCli(['broadcast', 'status', PAUSED], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('status     paused (resume requested)\n');
    expect(r.stdout).not.toContain('complaint rate 0.60');
  });
});
