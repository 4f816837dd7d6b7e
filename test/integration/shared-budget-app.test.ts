/**
 * The App with `cluster.redisUrl` set (real FerretDB, a private Redis, a real SMTP server): the
 * budget is the shared one (`App.budget`, scope 'shared'), its windows are seeded from the delivery
 * records rather than restored into the process, `run-minute` sends through it, and `/readyz`
 * names `redis` and is not ready while Redis does not answer (the budget then says 'down').
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { DeliveryDoc } from '../../src/adapters/mongo/store.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { testDb, type TestDb } from '../helpers/db.js';
import { privateRedis, redisKeyPrefix, type RedisServer } from '../helpers/redis.js';
import { TestSmtpServer } from '../helpers/smtp-server.js';
import { usersDueAt } from '../helpers/users.js';

const MINUTE = '2027-03-01T10:00:00Z';
const WAIT = { timeout: 60_000, interval: 50 };
let db: TestDb;
let smtp: TestSmtpServer;
let redis: RedisServer;
let t: TestApp | undefined;

beforeEach(async () => {
  db = await testDb('shared_app');
  smtp = await TestSmtpServer.start();
  redis = await privateRedis();
});
afterEach(async () => {
  await t?.app.close();
  t = undefined;
  await smtp?.close();
  await redis?.stop();
  await db?.cleanup();
});

describe('App on a shared budget (cluster.redisUrl)', () => {
  it('run-minute sends through the shared windows, seeded from the delivery records, not restored into the process; a restart finds them in Redis', { timeout: 120_000 }, async () => {
    // 30 sends recorded 10 s ago by some instance: they count against the shared minute.
    const now = Date.now();
    const docs: DeliveryDoc[] = Array.from({ length: 30 }, (_, i) => ({ _id: `old${i}#done`, type: 'done', key: `old${i}`, status: 'sent', at: new Date(now - 10_000) }));
    await db.db.collection<DeliveryDoc>('mailwheel_deliveries').insertMany(docs);
    await db.db.collection('users').insertMany(usersDueAt(60, MINUTE, 'sa'));
    const keyPrefix = redisKeyPrefix('app');
    t = await startTestApp(db.uri, smtp.url, { rate: { perSecond: 100, perMinute: 1000, perDay: null }, cluster: { redisUrl: redis.url, keyPrefix } });
    expect(t.logs.some((l) => String(l['msg']).includes('not restored into this process'))).toBe(true);
    expect(t.app.budget.scope).toBe('shared');
    await vi.waitFor(() => expect(t?.app.budget.state).toBe('up'), WAIT);

    const report = await t.app.runMinute(Date.parse(MINUTE));
    expect(report).toMatchObject({ due: 60, sent: 60, failed: 0 });
    expect(smtp.messages).toHaveLength(60);
    // The shared minute holds the 30 recorded before and the 60 just sent.
    expect(await t.app.budget.use()).toEqual([{ name: 'perMinute', windowMs: 60_000, limit: 1000, used: 90 }]);
    expect(t.logs.some((l) => String(l['msg']).includes('seeded from the delivery records'))).toBe(true);

    // A restart of the instance (a deploy, a crash): the windows are still in Redis, not re-seeded
    // and not handed out afresh.
    await t.app.close();
    t = await startTestApp(db.uri, smtp.url, { rate: { perSecond: 100, perMinute: 1000, perDay: null }, cluster: { redisUrl: redis.url, keyPrefix } });
    await vi.waitFor(() => expect(t?.app.budget.state).toBe('up'), WAIT);
    expect(await t.app.budget.use()).toEqual([{ name: 'perMinute', windowMs: 60_000, limit: 1000, used: 90 }]);
    expect(t.logs.some((l) => String(l['msg']).includes('seeded from the delivery records'))).toBe(false);
  });

  it('/readyz names redis: not ready while Redis does not answer (the budget is down), ready again when it does', { timeout: 120_000 }, async () => {
    t = await startTestApp(db.uri, smtp.url, { rate: { perSecond: null, perHour: 1000, perDay: null }, cluster: { redisUrl: redis.url, keyPrefix: redisKeyPrefix('app') } });
    const app = t.app;
    app.synced = true; // the readiness of a started daemon; the sync is not what is tested here
    await vi.waitFor(async () => expect(await app.readiness.check()).toMatchObject({ ok: true, redis: true }), WAIT);
    await redis.down();
    await vi.waitFor(async () => expect(await app.readiness.check()).toMatchObject({ ok: false, redis: false, mongodb: true, smtp: true }), WAIT);
    expect(app.budget.state).toBe('down');
    await expect(app.budget.use()).rejects.toThrow(/redis/);
    await redis.up();
    await vi.waitFor(async () => expect(await app.readiness.check()).toMatchObject({ ok: true, redis: true }), WAIT);
    expect(app.budget.state).toBe('up');
  });
});
