/**
 * The core slice end to end, with real servers: `mailwheel run-minute` against FerretDB (or the
 * configured MongoDB) and a real SMTP server. Every active valid user due in the minute gets
 * exactly one message, nobody else gets any (nor a user whose `unsubscribed` is "true", 1 or any
 * other non-boolean), a rerun sends nothing, and each invalid user leaves one `invalid` event
 * naming the field.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, writeTestConfig } from '../helpers/cli.js';
import { testDb, type TestDb } from '../helpers/db.js';
import { TestSmtpServer } from '../helpers/smtp-server.js';
import { invalidUsers, usersDueAt } from '../helpers/users.js';

const MINUTE = '2027-01-15T09:00:00Z';
const DUE = 2500;
const ODD_UNSUBSCRIBED: unknown[] = ['true', 1, 'yes', {}, 0];

describe('run-minute (real MongoDB-wire server, real SMTP server)', () => {
  let db: TestDb;
  let smtp: TestSmtpServer;
  let env: Record<string, string>;
  const invalid = invalidUsers();

  beforeAll(async () => {
    db = await testDb('run_minute');
    smtp = await TestSmtpServer.start();
    const due = usersDueAt(DUE, MINUTE, 'due');
    // Active users of another minute, inactive and unsubscribed users due now: none may get mail.
    const otherMinute = usersDueAt(40, '2027-01-15T09:01:00Z', 'later');
    const inactive = usersDueAt(100, MINUTE, 'inactive').map((u) => ({ ...u, active: false }));
    const unsubscribed = usersDueAt(50, MINUTE, 'unsub').map((u) => ({ ...u, unsubscribed: true }));
    // Unsubscribed written as something other than a boolean: never mailed, one invalid event each.
    const oddUnsubscribed = usersDueAt(ODD_UNSUBSCRIBED.length, MINUTE, 'odd').map((u, i) => ({ ...u, unsubscribed: ODD_UNSUBSCRIBED[i] }));
    await db.db.collection('users').insertMany([...due, ...otherMinute, ...inactive, ...unsubscribed, ...oddUnsubscribed, ...invalid.map((i) => i.doc)]);
    const config = writeTestConfig({
      smtp: { poolSize: 10 },
      rate: { perSecond: null, perDay: null },
      http: { enabled: false },
    });
    env = { MONGODB_URI: db.uri, SMTP_URL: smtp.url, MAILWHEEL_CONFIG: config, LOG_LEVEL: 'warn' };
  });

  afterAll(async () => {
    await smtp?.close();
    await db?.cleanup();
  });

  it('delivers exactly one message to each active valid user due in the minute, and none to others', async () => {
    const r = await runCli(['run-minute', '--at', '2027-01-15T09:00:30Z', '--force', '--json'], env);
    expect(r.stderr).not.toMatch(/"level":(50|60)/);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout.trim()) as Record<string, number>;
    expect(report).toMatchObject({ due: DUE, claimed: DUE, skipped: 0, sent: DUE, failed: 0 });

    const perRecipient = smtp.countByRecipient();
    expect(smtp.messages).toHaveLength(DUE);
    expect(perRecipient.size).toBe(DUE);
    for (let i = 0; i < DUE; i++) expect(perRecipient.get(`due${i}@example.test`), `due${i}`).toBe(1);
    for (const addr of perRecipient.keys()) expect(addr).toMatch(/^due\d+@example\.test$/);
    // Pooled: far fewer connections than messages (the old design opened one per email).
    expect(smtp.connections).toBeLessThanOrEqual(20);

    const sentEvents = await db.db.collection('mailwheel_events').countDocuments({ type: 'sent' });
    expect(sentEvents).toBe(DUE);
  });

  it('records one invalid event per invalid user, naming the field', async () => {
    const events = await db.db.collection('mailwheel_events').find({ type: 'invalid' }).toArray();
    // Only the first run has happened at this point, so exactly one event per invalid user.
    expect(events).toHaveLength(invalid.length + ODD_UNSUBSCRIBED.length);
    for (const { doc, field } of invalid) {
      const ev = events.find((e) => e['userId'] === doc['_id']);
      expect(ev, String(doc['_id'])).toBeDefined();
      expect(String(ev?.['reason'])).toMatch(new RegExp(`^${field}:`));
    }
    for (let i = 0; i < ODD_UNSUBSCRIBED.length; i++) {
      const odd = events.filter((e) => e['userId'] === `odd${String(i).padStart(6, '0')}`);
      expect(odd, JSON.stringify(ODD_UNSUBSCRIBED[i])).toHaveLength(1);
      expect(String(odd[0]?.['reason'])).toMatch(/^unsubscribed: .* treated as unsubscribed/);
    }
  });

  it('a second run of the same minute sends nothing (claims)', async () => {
    const r = await runCli(['run-minute', '--at', '2027-01-15T09:00:00Z', '--force', '--json'], env);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout.trim()) as Record<string, number>;
    expect(report).toMatchObject({ due: DUE, claimed: 0, skipped: DUE, sent: 0 });
    expect(smtp.messages).toHaveLength(DUE);
  });
});
