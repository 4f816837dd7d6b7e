/**
 * Outcome events lost in a crash are rebuilt from the delivery records (issue 10 item 9).
 * `run-minute` (the real CLI, FerretDB, the test SMTP server) is SIGKILLed once deliveries have
 * settled while their events are still buffered; the next start writes the missing ones back, so
 * events and delivery records agree key by key, each once. The reconciler's bounds and its
 * idempotence are checked against FerretDB directly.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MongoEventReconciler, RECHECK_MARGIN_MS, REBUILT_REASON } from '../../src/adapters/mongo/event-reconciler.js';
import { spawnCli, writeTestConfig, type CliProcess } from '../helpers/cli.js';
import { testDb, type TestDb } from '../helpers/db.js';
import { TestSmtpServer } from '../helpers/smtp-server.js';
import { usersDueAt } from '../helpers/users.js';

const MINUTE = '2027-03-01T10:00:00Z';
const USERS = 300;
let db: TestDb;
let smtp: TestSmtpServer | undefined;
let proc: CliProcess | undefined;

beforeEach(async () => {
  db = await testDb('rebuild');
});
afterEach(async () => {
  if (proc && proc.child.exitCode === null) proc.child.kill('SIGKILL');
  proc = undefined;
  await smtp?.close();
  smtp = undefined;
  await db?.cleanup();
});

const OUTCOMES = ['sent', 'failed', 'missed'];

/** `key type` of every settled delivery record, and of every outcome event (duplicates kept). */
async function snapshot(): Promise<{ deliveries: string[]; events: string[]; rebuilt: number }> {
  const done = await db.db.collection('mailwheel_deliveries').find({ type: 'done' }).toArray();
  const events = await db.db.collection('mailwheel_events').find({ type: { $in: OUTCOMES } }).toArray();
  return {
    deliveries: done.map((d) => `${String(d['key'])} ${String(d['status'])}`).sort(),
    events: events.map((e) => `${String(e['key'])} ${String(e['type'])}`).sort(),
    rebuilt: events.filter((e) => e['reason'] === REBUILT_REASON).length,
  };
}

describe('events lost to SIGKILL', () => {
  it(`run-minute killed mid-run (${USERS} users): the next start rebuilds the lost events, events == deliveries by key, none twice`, { timeout: 120_000 }, async () => {
    smtp = await TestSmtpServer.start();
    await db.db.collection('users').insertMany(usersDueAt(USERS, MINUTE, 'k'));
    const config = writeTestConfig({
      http: { enabled: false },
      rate: { perSecond: 50, perDay: null },
      send: { claimStaleMs: 5_000 },
      // Events stay buffered for the whole run, so the kill surely loses some (the default 2 s
      // interval loses the last two seconds' worth, a smaller and racier share).
      analytics: { flushEvents: 100_000, flushIntervalMs: 600_000 },
    });
    const env = { MONGODB_URI: db.uri, SMTP_URL: smtp.url, MAILWHEEL_CONFIG: config, LOG_LEVEL: 'info' };
    const deliveries = db.db.collection('mailwheel_deliveries');

    proc = spawnCli(['run-minute', '--at', MINUTE, '--force', '--json'], env);
    await vi.waitFor(async () => expect(await deliveries.countDocuments({ type: 'done' })).toBeGreaterThanOrEqual(100), { timeout: 60_000, interval: 50 });
    proc.child.kill('SIGKILL');
    expect((await proc.done).signal).toBe('SIGKILL');
    const afterKill = await snapshot();
    // The crash did lose events (otherwise this test would prove nothing).
    expect(afterKill.events.length).toBeLessThan(afterKill.deliveries.length);

    proc = spawnCli(['run-minute', '--at', MINUTE, '--force', '--json'], env);
    const end = await proc.done;
    expect(end.code, end.stderr.slice(-2000)).toBe(0);

    const after = await snapshot();
    expect(new Set(after.events).size).toBe(after.events.length); // no event twice
    expect(after.events).toEqual(after.deliveries);
    expect(after.rebuilt).toBe(afterKill.deliveries.length - afterKill.events.length);
    expect(end.stderr).toContain('outcome events lost in a crash rebuilt from the delivery records');
    console.log(`SIGKILL at ${afterKill.deliveries.length} settled deliveries with ${afterKill.events.length} events; after the restart ${after.deliveries.length} deliveries, ${after.events.length} events, ${after.rebuilt} rebuilt`);
  });
});

describe('MongoEventReconciler', () => {
  const HOUR = 3_600_000;

  function reconciler(): MongoEventReconciler {
    return new MongoEventReconciler({ deliveries: db.db.collection('mailwheel_deliveries'), events: db.db.collection('mailwheel_events'), state: db.db.collection('mailwheel_state') });
  }

  async function settle(key: string, status: string, at: Date): Promise<void> {
    await db.db.collection('mailwheel_deliveries').insertMany([
      { _id: key, type: 'claim', kind: 'scheduled', userId: key.split(':')[1], owner: 'x', gen: randomUUID(), at } as never,
      { _id: `${key}#done`, type: 'done', key, status, at } as never,
    ]);
  }

  it('rebuilds each missing outcome once (a second pass and a legacy random-id event add nothing), claims and takeovers ignored', async () => {
    const now = Date.now();
    await settle('s:u1:09:00:2027-03-01', 'sent', new Date(now - 60_000));
    await settle('s:u2:09:00:2027-03-01', 'failed', new Date(now - 60_000));
    await settle('s:u3:09:00:2027-03-01', 'missed', new Date(now - 60_000));
    await settle('s:u4:09:00:2027-03-01', 'sent', new Date(now - 60_000));
    // u4's event was written before key-derived ids, under a random one.
    await db.db.collection('mailwheel_events').insertOne({ _id: randomUUID(), type: 'sent', key: 's:u4:09:00:2027-03-01', userId: 'u4', at: new Date() } as never);
    await db.db.collection('mailwheel_deliveries').insertOne({ _id: 's:u5:09:00:2027-03-01#abc', type: 'takeover', key: 's:u5:09:00:2027-03-01', owner: 'y', at: new Date(now - 1000) } as never);

    const first = await reconciler().reconcile({ now, lookbackMs: 24 * HOUR, batchSize: 2 });
    expect(first).toMatchObject({ checked: 4, rebuilt: 3 });
    const second = await reconciler().reconcile({ now: now + 1000, lookbackMs: 24 * HOUR, batchSize: 2 });
    expect(second.rebuilt).toBe(0);

    const events = await db.db.collection('mailwheel_events').find().sort({ key: 1 }).toArray();
    expect(events.map((e) => [e['key'], e['type'], e['userId']])).toEqual([
      ['s:u1:09:00:2027-03-01', 'sent', 'u1'],
      ['s:u2:09:00:2027-03-01', 'failed', 'u2'],
      ['s:u3:09:00:2027-03-01', 'missed', 'u3'],
      ['s:u4:09:00:2027-03-01', 'sent', 'u4'],
    ]);
    expect(events[0]?.['kind']).toBe('scheduled');
    expect(events[0]?.['at']).toEqual(new Date(now - 60_000));
  });

  it('looks back no further than the lookback, and after a check only the margin behind it', async () => {
    const now = Date.now();
    await settle('s:old:09:00:2027-03-01', 'sent', new Date(now - 30 * HOUR));
    await settle('s:recent:09:00:2027-03-01', 'sent', new Date(now - 2 * HOUR));
    expect((await reconciler().reconcile({ now, lookbackMs: 24 * HOUR, batchSize: 100 })).rebuilt).toBe(1);
    // Settled before the last check (less the margin): not read again.
    await settle('s:checked:09:00:2027-03-01', 'sent', new Date(now - RECHECK_MARGIN_MS - 60_000));
    await settle('s:margin:09:00:2027-03-01', 'sent', new Date(now - RECHECK_MARGIN_MS + 60_000));
    const r = await reconciler().reconcile({ now: now + 1000, lookbackMs: 24 * HOUR, batchSize: 100 });
    expect(r).toMatchObject({ checked: 1, rebuilt: 1 });
    const keys = (await db.db.collection('mailwheel_events').find().toArray()).map((e) => e['key']).sort();
    expect(keys).toEqual(['s:margin:09:00:2027-03-01', 's:recent:09:00:2027-03-01']);
  });
});
