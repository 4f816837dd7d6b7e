/**
 * Acceptance (issue 5): the MongoDB-wire server is stopped for 20 s while the daemon sends 3,000
 * messages and produces their 3,000 `sent` events. After it returns, all 3,000 are in the events
 * collection exactly once; the daemon kept running throughout; the analytics buffer never held
 * more than its bound, and at the bound sending paused (backpressure) instead of dropping events.
 *
 * It uses a private FerretDB (scripts/lib/mongo-server.ts `startRestartableFerretdb`), stopped and
 * restarted on the same port and data folder, so the shared test server is never touched.
 */
import { MongoClient } from 'mongodb';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { startRestartableFerretdb, withDbName, type RestartableMongoWire } from '../../scripts/lib/mongo-server.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { TestSmtpServer } from '../helpers/smtp-server.js';
import { usersDueAt } from '../helpers/users.js';

const USERS = 3000;
const MINUTE = '2027-03-01T09:00:00Z';
const OUTAGE_MS = 20_000;
const MAX_BUFFERED = 1000;
// Large enough that the dispatcher feeds (and so claims) all 3,000 at once: maxQueued = 20 x pool.
const POOL = 150;

let fdb: RestartableMongoWire | undefined;
let smtp: TestSmtpServer;
let t: TestApp | undefined;

beforeAll(async () => {
  fdb = await startRestartableFerretdb();
  smtp = await TestSmtpServer.start();
});

afterAll(async () => {
  await t?.app.close().catch(() => undefined);
  await smtp?.close();
  await fdb?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

it('MongoDB down for 20 s while 3,000 events are produced: all stored exactly once, bound respected, no crash', { timeout: 300_000 }, async (ctx) => {
  if (fdb === undefined) return ctx.skip();
  const uri = withDbName(fdb.uri, 'outage');
  const seeder = new MongoClient(uri);
  await seeder.db().collection('users').insertMany(usersDueAt(USERS, MINUTE, 'o'));
  await seeder.close();

  t = await startTestApp(uri, smtp.url, {
    smtp: { poolSize: POOL },
    // Slow enough that most of the 3,000 sends fall inside the outage.
    rate: { perSecond: 150, perDay: null },
    analytics: { flushEvents: 100, flushIntervalMs: 200, maxBuffered: MAX_BUFFERED, retryBaseMs: 200, retryMaxMs: 2000 },
  });
  const { app, logs } = t;
  let maxSeen = 0;
  const sampler = setInterval(() => (maxSeen = Math.max(maxSeen, app.analytics.size)), 10);
  const run = app.runMinute(Date.parse(MINUTE));

  // The claims must be in before the outage (a claim needs the database by design); every event
  // of the run is produced after this point.
  while (app.claims.stats.claimed < USERS) await sleep(20);
  await fdb.down();
  // Counted once the server is really gone (its graceful stop still answers for a moment).
  const before = { recorded: app.analytics.stats.recorded, written: app.analytics.stats.written, smtp: smtp.messages.length };
  await sleep(OUTAGE_MS);
  // The outage lasts at least OUTAGE_MS and until the buffer is full with callers waiting: on a
  // loaded machine sending may not have produced MAX_BUFFERED events in 20 s.
  await vi.waitFor(() => {
    expect(app.analytics.size).toBe(MAX_BUFFERED);
    expect(app.analytics.waiting).toBeGreaterThan(0);
  }, { timeout: 120_000, interval: 50 });
  const during = {
    recorded: app.analytics.stats.recorded - before.recorded,
    written: app.analytics.stats.written - before.written,
    smtp: smtp.messages.length - before.smtp,
    waiting: app.analytics.waiting,
    size: app.analytics.size,
  };
  await fdb.up();

  const report = await run;
  await app.close();
  clearInterval(sampler);

  expect(report).toMatchObject({ due: USERS, claimed: USERS, sent: USERS, failed: 0 });
  expect(smtp.messages).toHaveLength(USERS);

  const reader = new MongoClient(uri);
  try {
    const events = await reader.db().collection('mailwheel_events').find({ type: 'sent' }, { projection: { key: 1 } }).toArray();
    const keys = new Set(events.map((e) => String(e['key'])));
    expect(events.length, 'sent events stored').toBe(USERS);
    expect(keys.size, 'distinct keys').toBe(USERS);
    expect(await reader.db().collection('mailwheel_events').countDocuments({})).toBe(USERS);
  } finally {
    await reader.close();
  }

  // The bound held, and the backpressure worked: while the database was down the buffer filled
  // to its bound, callers waited, and sending paused with at most one message per SMTP worker
  // beyond what the buffer could take.
  expect(app.analytics.stats.peak).toBeLessThanOrEqual(MAX_BUFFERED);
  expect(maxSeen).toBeLessThanOrEqual(MAX_BUFFERED);
  expect(during.written, 'nothing can be written while the server is down').toBe(0);
  expect(during.size).toBe(MAX_BUFFERED);
  expect(during.waiting).toBeGreaterThan(0);
  expect(during.smtp).toBeLessThanOrEqual(MAX_BUFFERED + POOL);
  expect(app.analytics.stats.writeErrors).toBeGreaterThan(0);
  expect(logs.some((l) => l.msg === 'analytics write failed; keeping events and retrying')).toBe(true);
  expect(logs.filter((l) => l.level >= 60)).toEqual([]);
  console.log(
    `[analytics outage] before: ${before.written} written; during ${OUTAGE_MS / 1000} s down: ${during.recorded} events produced, ${during.smtp} sent, buffer ${during.size}/${MAX_BUFFERED}, ${during.waiting} callers blocked; ` +
      `after: ${app.analytics.stats.written} written, peak ${app.analytics.stats.peak}, ${app.analytics.stats.writeErrors} failed writes, ${app.analytics.stats.blocked} blocked calls`,
  );
});
