/**
 * Issue 15 acceptance, several relays: two real SMTP servers as relays (equal weights), the real
 * App in-process running a broadcast at a global rate, the CLI starting it. One relay is killed
 * (listener closed, connections cut, with a message in flight on each of its connections) for
 * 30 s mid-broadcast, then comes back:
 * - nothing lost or sent twice: every user exactly once, counted over both servers;
 * - during the outage the survivor receives everything, at the global rate (the send queue's
 *   breaker never opens: one relay down is not "SMTP unreachable");
 * - the busiest sliding second over both servers never exceeds rate.perSecond (the global budget);
 * - after it comes back the recovered relay gets its share again.
 * Measures rates at the servers, so it is in SOLO (vitest.config.ts). It lasts about as long as
 * the broadcast at RATE: a few seconds before the fault, the 30 s outage, ~15 s after.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app/app.js';
import { startTestApp } from '../helpers/app.js';
import { broadcastUsers, HANG_GUARD_MS, insertUsers, perUser, waitForStatus, waitWhileProgressing, writeBodies } from '../helpers/broadcasts.js';
import { runCli, writeTestConfig } from '../helpers/cli.js';
import { testDb, type TestDb } from '../helpers/db.js';
import { maxInSlidingWindow } from '../helpers/rate-fidelity.js';
import { TestSmtpServer } from '../helpers/smtp-server.js';

const RATE = 40;
const OUTAGE_MS = 30_000;
/** Enough for ~3 s before the fault, the 30 s outage and ~15 s after it at RATE. */
const USERS = 2_000;

describe('two relays, one killed for 30 s mid-broadcast', () => {
  let db: TestDb;
  let a: TestSmtpServer;
  let b: TestSmtpServer;
  let app: App | undefined;

  beforeAll(async () => {
    db = await testDb('relays_failover');
    a = await TestSmtpServer.start();
    b = await TestSmtpServer.start();
  });

  afterAll(async () => {
    await app?.close();
    await a?.close();
    await b?.close();
    await db?.cleanup();
  });

  it('loses nothing, sends nothing twice, the survivor carries the load inside the global rate, the recovered relay gets traffic again', { timeout: HANG_GUARD_MS }, async () => {
    await insertUsers(db.db, broadcastUsers(USERS, 'r'));
    const overrides = {
      smtp: {
        relays: [
          { url: a.url, weight: 1, poolSize: 3 },
          { url: b.url, weight: 1, poolSize: 3 },
        ],
      },
      rate: { perSecond: RATE, perDay: null },
      // Probes of the dead relay every 2 s at most, so its return is seen soon after up().
      send: { breakerThreshold: 3, breakerProbeMaxMs: 2_000, backoffBaseMs: 200, backoffMaxMs: 2_000, claimStaleMs: 5_000 },
      broadcasts: { batchSize: 250, pollMs: 300, controlPollMs: 200, maxConcurrent: 1 },
    };
    ({ app } = await startTestApp(db.uri, a.url, overrides));
    await app.start();
    const config = writeTestConfig({ ...overrides, http: { enabled: false } });
    const env = { MONGODB_URI: db.uri, SMTP_URL: a.url, MAILWHEEL_CONFIG: config, LOG_LEVEL: 'warn' };
    const bodies = writeBodies(config);
    const send = await runCli(['broadcast', 'send', '--subject', 'News for {{name}}', '--text-file', bodies.textFile, '--html-file', bodies.htmlFile], env);
    expect(send.code, send.stderr).toBe(0);
    const id = send.stdout.trim();
    const total = (): number => a.messages.length + b.messages.length;

    // Both relays take traffic before the fault.
    await waitWhileProgressing('first messages', () => total() >= RATE * 3, total, 60_000);
    expect(a.messages.length).toBeGreaterThan(0);
    expect(b.messages.length).toBeGreaterThan(0);

    // Killed with messages in flight: A holds its replies until every one of its connections
    // carries a message whose body it has (after 354, no 250 yet), then dies. Those sends end
    // with a dropped connection after the message was handed over; they must reach B later,
    // once each, and one dead relay must not pause the queue.
    a.setFault({ kind: 'stall', ms: 120_000 });
    await waitWhileProgressing('messages in flight on relay A', () => a.stalling >= 3, total, 60_000);
    const downAt = Date.now();
    await a.down();
    const bAtDown = b.messages.length;
    // The fault itself lasts 30 s (the scenario, not a wait for a condition).
    await new Promise((r) => setTimeout(r, OUTAGE_MS));
    const upAt = Date.now();
    const bAtUp = b.messages.length;
    const relaysDuring = app.transport.relays();
    const breakerDuring = app.queue.breaker;
    a.setFault({ kind: 'none' });
    await a.up();
    expect(total(), 'the broadcast ended before the relay came back: raise USERS').toBeLessThan(USERS);

    // Back: its probe finds it and it gets its share again.
    await waitWhileProgressing('recovered relay receives again', () => a.messages.some((m) => m.receivedAt > upAt), total, 60_000);
    const backAt = Math.min(...a.messages.filter((m) => m.receivedAt > upAt).map((m) => m.receivedAt));
    const done = await waitForStatus(db.db, id, ['done'], 300_000);

    // Every user exactly once over both relays.
    const counts = new Map<string, number>();
    for (const server of [a, b]) for (const [user, n] of perUser(server, id)) counts.set(user, (counts.get(user) ?? 0) + n);
    const twice = [...counts].filter(([, n]) => n > 1);
    expect(twice, 'sent more than once').toEqual([]);
    expect(counts.size, 'users reached').toBe(USERS);
    expect(done.counters).toMatchObject({ total: USERS, sent: USERS, failed: 0 });
    expect(a.dropped.length + b.dropped.length).toBe(0);

    // During the outage the survivor took everything, at the global rate, without the queue pausing.
    const outageS = (upAt - downAt) / 1000;
    const survivorRate = (bAtUp - bAtDown) / outageS;
    expect(a.messages.filter((m) => m.receivedAt > downAt && m.receivedAt < upAt)).toHaveLength(0);
    expect(survivorRate, `survivor ${survivorRate.toFixed(1)}/s during the outage`).toBeGreaterThanOrEqual(RATE * 0.8);
    expect(relaysDuring.map((r) => r.up)).toEqual([false, true]);
    expect(breakerDuring.opens, 'the send queue breaker opened for one dead relay').toBe(0);

    // The global budget: no sliding second over both servers holds more than rate.perSecond.
    const arrivals = [...a.messages, ...b.messages].map((m) => m.receivedAt);
    const busiest = maxInSlidingWindow(arrivals, 1000);
    expect(busiest).toBeLessThanOrEqual(RATE);

    // After its return the recovered relay has about its share (equal weights: half).
    const after = [...a.messages, ...b.messages].filter((m) => m.receivedAt >= backAt);
    const aShare = after.filter((m) => a.messages.includes(m)).length / after.length;
    expect(aShare, `recovered relay's share after its return: ${(aShare * 100).toFixed(0)} % of ${after.length}`).toBeGreaterThan(0.35);

    // /stats and the per-relay counts agree with what the servers received.
    const relays = app.transport.relays();
    expect(relays.map((r) => [r.relay, r.up, r.sent])).toEqual([
      [`127.0.0.1:${a.port}`, true, a.messages.length],
      [`127.0.0.1:${b.port}`, true, b.messages.length],
    ]);
    expect(relays[0]?.downs).toBe(1);
    expect(app.stats()['relays']).toEqual(relays);
    const metrics = await app.metrics.text();
    expect(metrics).toContain(`mailwheel_relay_sent_total{relay="127.0.0.1:${a.port}"} ${a.messages.length}`);
    expect(metrics).toMatch(new RegExp(`mailwheel_relay_failures_total\\{relay="127.0.0.1:${a.port}"\\} [1-9]`));
    console.log(
      `relays failover: ${USERS} users, outage ${outageS.toFixed(1)} s; survivor ${survivorRate.toFixed(1)}/s during it (rate ${RATE}/s); ` +
        `busiest second ${busiest}; relay A back ${((backAt - upAt) / 1000).toFixed(1)} s after up(), then ${(aShare * 100).toFixed(0)} % of ${after.length}; ` +
        `A ${a.messages.length}, B ${b.messages.length}; A failures ${relays[0]?.failures}`,
    );
  });
});
