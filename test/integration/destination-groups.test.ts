/**
 * Issue 15 acceptance, per-destination shaping: two destination groups behind one real SMTP
 * server, the send path built as the daemon builds it (buildSendPath over NodemailerTransport,
 * the in-process global budget). The server defers every recipient of group A with 421 4.7.0 for
 * 30 s; the global rate is above the sum of the groups', so each group's own limit binds.
 *   - group B's arrivals at the server hold within 5 % of its limit in every whole second while it
 *     has work (A's deferrals, A's closed connections and A's recovery included);
 *   - group A slows (its attempts during the 30 s stay far below its limit), then recovers: its
 *     rate returns to the configured one and its arrivals reach that rate again;
 *   - every message is delivered exactly once (counted by recipient at the server).
 * And with the budget every instance shares (Redis SharedWindows, `cluster.redisUrl`) below the
 * groups' sum: the global second holds at the server for the groups together, and is used.
 * It measures rates at the server, so it runs alone (SOLO in vitest.config.ts).
 */
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { openRedis } from '../../src/adapters/redis/connection.js';
import { SharedWindows } from '../../src/adapters/redis/shared-windows.js';
import { buildSendPath } from '../../src/adapters/smtp/destination-queues.js';
import { NodemailerTransport } from '../../src/adapters/smtp/nodemailer-transport.js';
import type { SendPath } from '../../src/adapters/smtp/send-options.js';
import { loadConfig } from '../../src/config/load.js';
import type { Delivery } from '../../src/core/types.js';
import { writeTestConfig } from '../helpers/cli.js';
import { maxInSlidingWindow } from '../helpers/rate-fidelity.js';
import { redisKeyPrefix, sharedRedisUrl } from '../helpers/redis.js';
import { TestSmtpServer } from '../helpers/smtp-server.js';

const log = pino({ level: 'silent' });
const DUE = Date.parse('2027-03-01T10:00:00Z');
const A_PER_SECOND = 20;
const B_PER_SECOND = 40;
const DEFER_MS = 30_000;
const A_USERS = 300;
/** Enough for B to have work until after A's deferrals end (about 45 s at its limit). */
const B_USERS = 1800;

let smtp: TestSmtpServer | undefined;
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  await smtp?.close();
  smtp = undefined;
});

function delivery(userId: string, domain: string): Delivery {
  return { key: `s:${userId}:10:00:2027-03-01`, kind: 'scheduled', userId, email: `${userId}@${domain}`, slot: '10:00', localDate: '2027-03-01', name: undefined, dueAt: DUE };
}

/** Arrivals per whole second from `origin` (the last, partial second left out). */
function perSecond(times: readonly number[], origin: number, end: number): number[] {
  const out: number[] = [];
  for (let s = origin; s + 1000 <= end; s += 1000) out.push(times.filter((t) => t >= s && t < s + 1000).length);
  return out;
}

describe('destination groups behind one server that defers group A with 421 for 30 s', () => {
  it(`B holds ${B_PER_SECOND}/s within 5 % every second, A slows then recovers, everything delivered exactly once`, { timeout: 240_000 }, async () => {
    const server = (smtp = await TestSmtpServer.start());
    const inA = (rcpt: string): boolean => rcpt.endsWith('@a.test');
    server.setFault({ kind: 'reply', code: 421, message: '4.7.0 Try again later, too many messages from your IP', stage: 'rcpt', match: inA });
    const loaded = loadConfig({
      file: writeTestConfig({
        smtp: { poolSize: 12 },
        rate: { perSecond: 2 * (A_PER_SECOND + B_PER_SECOND), perDay: null },
        send: { maxAttempts: 20, backoffBaseMs: 500, backoffMaxMs: 3000 },
        destinations: {
          groups: [
            { name: 'a', domains: ['a.test'], rate: { perSecond: A_PER_SECOND }, maxConnections: 4 },
            { name: 'b', domains: ['b.test'], rate: { perSecond: B_PER_SECOND }, maxConnections: 6 },
          ],
          default: { rate: {}, maxConnections: null },
        },
      }),
      env: { SMTP_URL: server.url },
    });
    const transport = new NodemailerTransport(loaded.config);
    const outcomes = { sent: 0, failed: 0 };
    // As app.ts builds it: each named group its own pool of maxConnections.
    const transportFor = (poolSize: number) => new NodemailerTransport({ ...loaded.config, smtp: { ...loaded.config.smtp, poolSize } });
    const path: SendPath = buildSendPath(loaded.config, transport, { onOutcome: (o) => void outcomes[o.status === 'sent' ? 'sent' : 'failed']++ }, log, { transportFor });
    cleanups.push(() => transport.close(), () => path.stop(1000));
    const group = (name: string) => path.groups?.find((g) => g.name === name);

    const started = Date.now();
    // Interleaved, so neither group's mail is all submitted before the other's.
    for (let i = 0; i < Math.max(A_USERS, B_USERS); i++) {
      if (i < A_USERS) path.submit(delivery(`a${i}`, 'a.test'));
      if (i < B_USERS) path.submit(delivery(`b${i}`, 'b.test'));
    }
    let lifted = 0;
    const timer = setTimeout(() => {
      server.setFault({ kind: 'none' });
      lifted = Date.now();
    }, DEFER_MS);
    cleanups.push(async () => clearTimeout(timer));
    // A is held back by its slowdown while deferred: its rate in force drops well below its limit.
    await vi.waitFor(() => expect(group('a')?.ratePerSecond).toBeLessThan(A_PER_SECOND / 2), { timeout: DEFER_MS, interval: 50 });
    await vi.waitFor(() => expect(outcomes.sent + outcomes.failed).toBe(A_USERS + B_USERS), { timeout: 180_000, interval: 100 });
    await path.idle();

    const accepted = server.messages.map((m) => ({ to: m.to[0] as string, at: m.receivedAt }));
    const bTimes = accepted.filter((m) => m.to.endsWith('@b.test')).map((m) => m.at).sort((x, y) => x - y);
    const aTimes = accepted.filter((m) => inA(m.to)).map((m) => m.at).sort((x, y) => x - y);
    const bSeries = perSecond(bTimes, bTimes[0] as number, bTimes[bTimes.length - 1] as number);
    const aAfter = perSecond(aTimes, lifted, aTimes[aTimes.length - 1] as number);
    const aDeferred = server.rejected.filter((r) => r.to.some(inA)).length;
    console.log(
      `destination groups: B per second [${bSeries.join(' ')}] (limit ${B_PER_SECOND}); A deferred ${aDeferred} times in ${DEFER_MS / 1000} s,` +
        ` A per second after the deferrals [${aAfter.join(' ')}] (limit ${A_PER_SECOND}); ${((Date.now() - started) / 1000).toFixed(1)} s in all; groups ${JSON.stringify(path.groups)}`,
    );

    // Exactly once, counted by recipient at the server; nothing failed at the sender.
    expect(outcomes).toEqual({ sent: A_USERS + B_USERS, failed: 0 });
    const counts = new Map<string, number>();
    for (const m of accepted) counts.set(m.to, (counts.get(m.to) ?? 0) + 1);
    expect(counts.size).toBe(A_USERS + B_USERS);
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
    expect(server.dropped).toHaveLength(0);

    // B: every whole second while it had work, within 5 % of its limit; its work outlasted A's deferrals.
    expect(bTimes[bTimes.length - 1]).toBeGreaterThan(lifted);
    expect(bSeries.length).toBeGreaterThan(DEFER_MS / 1000);
    for (const n of bSeries) {
      expect(n).toBeGreaterThanOrEqual(Math.floor(0.95 * B_PER_SECOND));
      expect(n).toBeLessThanOrEqual(Math.ceil(1.05 * B_PER_SECOND));
    }
    expect(group('b')).toMatchObject({ deferrals: 0, slowdowns: 0, ratePerSecond: B_PER_SECOND });

    // A slowed: nothing of A accepted while deferred, and far fewer attempts than its limit allows.
    expect(aTimes[0]).toBeGreaterThanOrEqual(lifted);
    expect(aDeferred).toBeGreaterThan(0);
    expect(aDeferred).toBeLessThan(0.5 * A_PER_SECOND * (DEFER_MS / 1000));
    expect(group('a')?.slowdowns).toBeGreaterThan(0);
    // ...and recovered: back at its configured rate, and its arrivals reached it again.
    expect(group('a')).toMatchObject({ ratePerSecond: A_PER_SECOND, rateRatio: 1, sent: A_USERS });
    expect(Math.max(...aAfter)).toBeGreaterThanOrEqual(Math.floor(0.95 * A_PER_SECOND));
  });

  for (const scope of ['local', 'shared'] as const) {
  it(`with the ${scope === 'local' ? "process's own" : 'shared Redis'} global budget below the groups' sum: the global second holds for both groups together and is used`, { timeout: 120_000 }, async () => {
    const server = (smtp = await TestSmtpServer.start());
    const GLOBAL = 60;
    const PER_GROUP = 300;
    const loaded = loadConfig({
      file: writeTestConfig({
        smtp: { poolSize: 8 },
        rate: { perSecond: GLOBAL, perDay: null },
        destinations: {
          groups: [
            { name: 'a', domains: ['a.test'], rate: { perSecond: 50 }, maxConnections: 4 },
            { name: 'b', domains: ['b.test'], rate: { perSecond: 50 }, maxConnections: 4 },
          ],
          default: { rate: {}, maxConnections: null },
        },
      }),
      env: { SMTP_URL: server.url },
    });
    let shared: SharedWindows | undefined;
    if (scope === 'shared') {
      const redis = openRedis(sharedRedisUrl(), redisKeyPrefix('destgroups'), log);
      cleanups.push(() => redis.close());
      await vi.waitFor(() => expect(redis.up).toBe(true), { timeout: 30_000, interval: 50 });
      shared = new SharedWindows({ redis, rate: loaded.config.rate, sent: { countSent: async (_now, ws) => ws.map(() => 0) }, log, sendTimeoutMs: 40_000 });
    }
    const transport = new NodemailerTransport(loaded.config);
    const transportFor = (poolSize: number) => new NodemailerTransport({ ...loaded.config, smtp: { ...loaded.config.smtp, poolSize } });
    const path = buildSendPath(loaded.config, transport, { onOutcome: () => undefined }, log, { transportFor, ...(shared ? { shared } : {}) });
    cleanups.push(() => transport.close(), () => path.stop(1000));
    for (let i = 0; i < PER_GROUP; i++) {
      path.submit(delivery(`a${i}`, 'a.test'));
      path.submit(delivery(`b${i}`, 'b.test'));
    }
    await vi.waitFor(() => expect(path.stats.sent).toBe(2 * PER_GROUP), { timeout: 60_000, interval: 100 });
    await path.idle();
    const times = server.messages.map((m) => m.receivedAt).sort((x, y) => x - y);
    const sliding = maxInSlidingWindow(times, 1000);
    const achieved = ((times.length - 1) * 1000) / ((times[times.length - 1] as number) - (times[0] as number));
    const perGroup = path.groups?.map((g) => `${g.name} ${g.sent}`).join(', ');
    console.log(`destination groups on the ${scope} budget: busiest sliding second ${sliding} (limit ${GLOBAL}), achieved ${achieved.toFixed(1)}/s; sent ${perGroup}`);
    expect(new Set(server.messages.map((m) => m.to[0])).size).toBe(2 * PER_GROUP);
    expect(server.messages).toHaveLength(2 * PER_GROUP);
    expect(sliding).toBeLessThanOrEqual(GLOBAL);
    expect(achieved).toBeGreaterThanOrEqual(0.95 * GLOBAL);
    expect(path.budget.scope).toBe(scope);
  });
  }
});
