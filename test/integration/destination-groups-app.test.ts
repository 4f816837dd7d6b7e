/**
 * Destination groups in the daemon (App over FerretDB and the test SMTP server): with
 * `destinations.groups` configured the App's send path is the per-group one; a minute's mail to
 * two domains is routed by domain, delivered once each, and shown per group in `/stats`
 * (`destinations`) and `/metrics` (`mailwheel_destination_*{group}`), counted as the server saw it.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DestinationQueues } from '../../src/adapters/smtp/destination-queues.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { testDb, type TestDb } from '../helpers/db.js';
import { parsePrometheusText, valueOf } from '../helpers/prom-text.js';
import { TestSmtpServer } from '../helpers/smtp-server.js';
import { usersDueAt } from '../helpers/users.js';

/** Twelve hours away: the daemon's own timer never fires it during the test (see metrics.test.ts). */
const MINUTE = new Date((Math.floor(Date.now() / 60_000) + 12 * 60) * 60_000).toISOString();

let db: TestDb;
let smtp: TestSmtpServer | undefined;
let t: TestApp | undefined;
beforeEach(async () => {
  db = await testDb('destgroups');
});
afterEach(async () => {
  await t?.app.close();
  t = undefined;
  await smtp?.close();
  smtp = undefined;
  await db?.cleanup();
});

describe('destination groups in the App', () => {
  it('routes a minute by recipient domain and reports each group in /stats and /metrics', async () => {
    smtp = await TestSmtpServer.start();
    const users = [...usersDueAt(30, MINUTE, 'g').map((u) => ({ ...u, email: `${String(u['_id'])}@GMail.test` })), ...usersDueAt(20, MINUTE, 'o')];
    await db.db.collection('users').insertMany(users);
    t = await startTestApp(db.uri, smtp.url, {
      rate: { perSecond: 200, perDay: null },
      destinations: { groups: [{ name: 'gm', domains: ['gmail.test'], rate: { perSecond: 100 }, maxConnections: 2 }], default: { rate: {}, maxConnections: null } },
    });
    const { app } = t;
    expect(app.queue).toBeInstanceOf(DestinationQueues);
    const report = await app.runMinute(Date.parse(MINUTE));
    expect(report).toMatchObject({ due: 50, sent: 50, failed: 0 });

    const toServer = smtp.messages.map((m) => m.to[0] as string);
    expect(new Set(toServer).size).toBe(50);
    expect(toServer).toHaveLength(50);
    const atGmail = toServer.filter((a) => a.toLowerCase().endsWith('@gmail.test')).length;
    expect(atGmail).toBe(30);

    const stats = app.stats() as { destinations: Array<{ name: string; sent: number; limits: { perSecond: number | null; maxConnections: number } }> };
    expect(stats.destinations.map((g) => [g.name, g.sent])).toEqual([['gm', atGmail], ['default', 50 - atGmail]]);
    expect(stats.destinations[0]?.limits).toMatchObject({ perSecond: 100, maxConnections: 2 });

    const families = parsePrometheusText(await app.metrics.registry.metrics());
    expect(valueOf(families, 'mailwheel_destination_sent_total', { group: 'gm' })).toBe(atGmail);
    expect(valueOf(families, 'mailwheel_destination_sent_total', { group: 'default' })).toBe(50 - atGmail);
    expect(valueOf(families, 'mailwheel_destination_rate_per_second', { group: 'gm' })).toBe(100);
    expect(valueOf(families, 'mailwheel_destination_waiting', { group: 'gm' })).toBe(0);
    expect(valueOf(families, 'mailwheel_destination_deferrals_total', { group: 'default' })).toBe(0);
  });
});
