/**
 * The window in which a run has started but not yet counted its segment, made deterministic: the
 * broadcast document is stored as the daemon leaves it then (`counters.total: null`, the driver's
 * encoding of undefined), and the CLI views read it through the real store: `status` and the
 * `--wait` follower render "counting" instead of crashing on null.
 */
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { MongoBroadcastStore } from '../../src/adapters/mongo/broadcast-store.js';
import { follow } from '../../src/cli/broadcast-view.js';
import { runCli, writeTestConfig } from '../helpers/cli.js';
import { testDb, type TestDb } from '../helpers/db.js';

let db: TestDb;
let env: Record<string, string>;
const id = '20260308-090000-c0ffee';

beforeAll(async () => {
  db = await testDb('broadcast_counting');
  env = { MONGODB_URI: db.uri, SMTP_URL: 'smtp://127.0.0.1:9', MAILWHEEL_CONFIG: writeTestConfig({ http: { enabled: false } }), LOG_LEVEL: 'warn' };
  const now = new Date();
  await db.db.collection('mailwheel_broadcasts').insertOne({
    _id: id,
    subject: 'S',
    text: 'T',
    segment: '{}',
    status: 'running',
    createdAt: now,
    counters: { total: null, sent: 1200, failed: 0, skipped: 34, suppressed: 0 },
    gen: 1,
    owner: 'nobody:1:gone',
    startedAt: now,
    updatedAt: now,
  } as never);
});

afterAll(async () => {
  await db?.cleanup();
});

it('`broadcast status` of a run still counting its segment (total null) says "counting"', async () => {
  const r = await runCli(['broadcast', 'status', id], env);
  expect(r.stderr).not.toContain('TypeError');
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).toMatch(/progress\s+1,234 users \(counting\)\n/);
  const list = await runCli(['broadcast', 'list'], env);
  expect(list.code, list.stderr).toBe(0);
  expect(list.stdout).toContain('1,234 users (counting)');
});

it('the `--wait` follower renders the counting window, then the counted total', { timeout: 60_000 }, async () => {
  const store = new MongoBroadcastStore(db.db, 'mailwheel_');
  const out = new PassThrough();
  let text = '';
  out.on('data', (b: Buffer) => (text += b.toString()));
  const following = follow(store, id, { intervalMs: 50, stream: out as unknown as NodeJS.WriteStream });
  await vi.waitFor(() => expect(text).toContain(`${id}: running, 1,234 users (counting)`), { timeout: 30_000, interval: 20 });
  await db.db.collection('mailwheel_broadcasts').updateOne({ _id: id } as never, { $set: { status: 'done', 'counters.total': 1234 } });
  const last = await following;
  expect(last.status).toBe('done');
  expect(text).toContain(`${id}: done, 1,234 / 1,234 (100.0 %)`);
});
