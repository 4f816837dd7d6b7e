/**
 * The slowdown after 421 deferrals (issue 10 item 7), end to end: the real App, FerretDB and the
 * test SMTP server. A clean run and a run where the server defers 30 % of messages (421 4.7.0,
 * seeded, so the share is the same every time) send the same number of users at the same rate,
 * measured in the same test; the deferred run must finish within 3x the clean one. It would take
 * 2 x 1.43 times as long if the rate dropped to half and stayed there; the old fixed-level
 * slowdown sat at 1.25/s (40 times slower at 50/s) and is cut off at the bound.
 *
 * Also (item 10): the slowdown's log line carries one `level` key, pino's.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { testDb, type TestDb } from '../helpers/db.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { TestSmtpServer } from '../helpers/smtp-server.js';
import { usersDueAt } from '../helpers/users.js';

const CLEAN_MINUTE = '2027-03-01T10:00:00Z';
const DEFERRED_MINUTE = '2027-03-01T10:01:00Z';
const USERS = 300;
const PER_SECOND = 50;
/** The stated bound: a run with 30 % 421s finishes within this multiple of a clean run. */
const MAX_MULTIPLE = 3;

let db: TestDb;
let smtp: TestSmtpServer | undefined;
let t: TestApp | undefined;

beforeEach(async () => {
  db = await testDb('slowdown');
});
afterEach(async () => {
  await t?.app.close();
  t = undefined;
  await smtp?.close();
  smtp = undefined;
  await db?.cleanup();
});

/** A seeded PRNG (mulberry32), so "30 % of messages" is the same sequence in every run. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

describe('slowdown after 421 deferrals', () => {
  it(`a run with 30 % 421s finishes within ${MAX_MULTIPLE}x a clean run of the same ${USERS} users at ${PER_SECOND}/s`, { timeout: 120_000 }, async () => {
    smtp = await TestSmtpServer.start({ random: seeded(42) });
    await db.db.collection('users').insertMany([...usersDueAt(USERS, CLEAN_MINUTE, 'c'), ...usersDueAt(USERS, DEFERRED_MINUTE, 'd')]);
    t = await startTestApp(db.uri, smtp.url, {
      rate: { perSecond: PER_SECOND, perDay: null },
      // Short backoff and room for retries: the multiple measures the queue's pace, not the
      // jitter of a few messages' last retry.
      send: { maxAttempts: 12, backoffBaseMs: 100, backoffMaxMs: 1000 },
    });
    const app = t.app;

    let started = performance.now();
    const clean = await app.runMinute(Date.parse(CLEAN_MINUTE));
    const cleanMs = performance.now() - started;
    expect(clean).toMatchObject({ due: USERS, sent: USERS, failed: 0 });
    expect(smtp.rejected).toHaveLength(0);

    smtp.setFault({ kind: 'reply', code: 421, message: '4.7.0 Try again later, too many messages', ratio: 0.3 });
    const budgetMs = MAX_MULTIPLE * cleanMs;
    started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      app.runMinute(Date.parse(DEFERRED_MINUTE)).then((report) => ({ report })),
      new Promise<{ report: undefined }>((resolve) => {
        timer = setTimeout(() => resolve({ report: undefined }), budgetMs);
      }),
    ]);
    clearTimeout(timer);
    const deferredMs = performance.now() - started;
    const summary =
      `clean ${(cleanMs / 1000).toFixed(1)} s, 30 % 421s ${(deferredMs / 1000).toFixed(1)} s` +
      ` (${(deferredMs / cleanMs).toFixed(2)}x; accepted ${smtp.messages.length - USERS} of ${USERS}, 421s ${smtp.rejected.length},` +
      ` rate now ${app.queue.ratePerSecond?.toFixed(1) ?? "unlimited"}/s)`;
    expect(outcome.report, `deferred run not finished within ${MAX_MULTIPLE}x the clean run: ${summary}`).toBeDefined();
    expect(outcome.report).toMatchObject({ due: USERS, sent: USERS, failed: 0 });
    console.log(`slowdown: ${summary}`);
    // The server did defer about 30 % of attempts, and the queue did slow down for them.
    expect(smtp.rejected.length).toBeGreaterThan(USERS * 0.3 * 0.7);
    expect(app.queue.stats.slowdowns).toBeGreaterThan(0);

    // Item 10: the slowdown line names the new rate, and has one `level` key (pino's, a number).
    const lines = t.rawLogs.filter((l) => l.includes('lowering the send rate'));
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) {
      expect(line.match(/"level":/g)).toHaveLength(1);
      const parsed = JSON.parse(line) as Record<string, unknown>;
      expect(parsed['level']).toBe(40);
      expect(parsed['ratePerSecond']).toBeGreaterThanOrEqual(PER_SECOND * 0.1);
      expect(parsed['ratePerSecond']).toBeLessThan(PER_SECOND);
    }
  });
});
