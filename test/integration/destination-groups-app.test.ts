/**
 * Destination groups in the daemon (App over FerretDB and the test SMTP server): with
 * `destinations.groups` configured the App's send path is the per-group one; a minute's mail to
 * two domains is routed by domain, delivered once each, and shown per group in `/stats`
 * (`destinations`) and `/metrics` (`mailwheel_destination_*{group}`), counted as the server saw it.
 * With several relays and DKIM as well, every group reaches every relay, every message is signed
 * (checked by dkimpy) and the relay views count the groups' own pools.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadDkimKeys } from '../../src/config/dkim-keys.js';
import { dkimpyVerify } from '../helpers/dkim-verify.js';
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

  it('with two relays and DKIM: every group reaches both relays, every message signed, relay views over all pools', async () => {
    const relayA = await TestSmtpServer.start();
    const relayB = await TestSmtpServer.start();
    const dir = mkdtempSync(join(tmpdir(), 'mailwheel-groups-dkim-'));
    try {
      const keyFile = join(dir, 'mw.pem');
      writeFileSync(keyFile, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
      const dkim = [{ domain: 'example.com', selector: 'mw', keyFile, headers: null }];
      const users = [...usersDueAt(40, MINUTE, 'g').map((u) => ({ ...u, email: `${String(u['_id'])}@gmail.test` })), ...usersDueAt(40, MINUTE, 'o')];
      await db.db.collection('users').insertMany(users);
      t = await startTestApp(db.uri, relayA.url, {
        rate: { perSecond: 400, perDay: null },
        smtp: { relays: [{ url: relayA.url, weight: 1, poolSize: 2 }, { url: relayB.url, weight: 1, poolSize: 2 }] },
        destinations: { groups: [{ name: 'gm', domains: ['gmail.test'], rate: {}, maxConnections: 2 }], default: { rate: {}, maxConnections: null } },
        dkim,
      });
      const { app } = t;
      const report = await app.runMinute(Date.parse(MINUTE));
      expect(report).toMatchObject({ due: 80, sent: 80, failed: 0 });

      const all = [...relayA.messages, ...relayB.messages];
      expect(new Set(all.map((m) => m.to[0])).size).toBe(80);
      // Both groups over both relays (smooth weighted round robin per pool set: about half each).
      for (const relay of [relayA, relayB]) {
        const to = relay.messages.map((m) => m.to[0] as string);
        expect(to.filter((a) => a.endsWith('@gmail.test')).length).toBeGreaterThan(0);
        expect(to.filter((a) => !a.endsWith('@gmail.test')).length).toBeGreaterThan(0);
      }
      const keys = loadDkimKeys(dkim, dir);
      const verdicts = dkimpyVerify(Object.fromEntries(keys.map((k) => [k.recordName, k.txt])), all.map((m) => m.raw));
      expect(verdicts.filter((v) => v.length === 1 && v[0] === true)).toHaveLength(80);

      // The relay view sums the main pools and the group's own: every message counted once.
      const relays = app.relayStatus();
      expect(relays.map((r) => [r.up, r.sent])).toEqual([
        [true, relayA.messages.length],
        [true, relayB.messages.length],
      ]);
    } finally {
      await t?.app.close();
      t = undefined;
      await relayA.close();
      await relayB.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
