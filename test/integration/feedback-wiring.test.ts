/**
 * The feedback side wired into the real App (real FerretDB, real SMTP server): with a feedback
 * input configured, every message the dispatcher sends is in the message index under the digest
 * of the Message-ID the SMTP server received, and a DSN naming that Message-ID suppresses the
 * address through `app.feedback.sink`; with none configured nothing is indexed and such a DSN is
 * ignored; an unreadable SES certificate fails the start naming it; a listener that cannot bind
 * fails the start naming feedback.inbound.host/port.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startInbound } from '../../src/app/feedback.js';
import { digestOfMessageId } from '../../src/core/feedback.js';
import { loadConfig } from '../../src/config/load.js';
import { startTestApp } from '../helpers/app.js';
import { writeTestConfig } from '../helpers/cli.js';
import { testDb, type TestDb } from '../helpers/db.js';
import { sampleDelivery, silentLogger } from '../helpers/fakes.js';
import { TestSmtpServer } from '../helpers/smtp-server.js';
import { scheduledKey } from '../../src/core/delivery-key.js';

let db: TestDb;
let smtp: TestSmtpServer;

beforeAll(async () => {
  db = await testDb('fbwiring');
  smtp = await TestSmtpServer.start();
});
afterAll(async () => {
  await smtp?.close();
  await db?.cleanup();
});

const VERP = { feedback: { verp: { domain: 'bounces.example.com', secret: 'x'.repeat(32) } } };

async function waitFor(cond: () => boolean, what: string, ms = 60_000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

it('every sent message is indexed under its Message-ID, and a DSN naming it suppresses the address', async () => {
  const { app } = await startTestApp(db.uri, smtp.url, VERP);
  try {
    expect(app.store.messageIndex).toBeDefined();
    const start = smtp.messages.length;
    const deliveries = Array.from({ length: 20 }, (_, i) => sampleDelivery({ key: scheduledKey(`s:w${i}`, '09:00', '2027-03-01'), userId: `s:w${i}`, email: `w${i}@example.test` }));
    await app.dispatcher.dispatch(deliveries);
    await waitFor(() => smtp.messages.length - start >= 20, '20 messages at the SMTP server');
    const received = smtp.messages.slice(start);
    const digests = received.map((m) => digestOfMessageId(m.messageId ?? '') as string);
    const found = await app.store.messageIndex?.find(digests);
    for (const [i, m] of received.entries()) {
      const entry = found?.get(digests[i] as string);
      expect(entry?.email).toBe(m.to[0]);
      expect(deliveries.map((d) => d.key)).toContain(entry?.key);
    }
    const bounced = received[0];
    const r = await app.feedback.sink.apply([{ source: 'dsn', kind: 'hard-bounce', email: bounced?.to[0] ?? '', messageId: bounced?.messageId, at: new Date(), detail: '5.1.1' }]);
    expect(r).toMatchObject({ applied: 1, suppressed: 1 });
    expect(app.suppressions.has(bounced?.to[0] ?? '')).toBe(true);
    expect((await app.feedback.counts.forDay(new Date().toISOString().slice(0, 10))).hardBounces).toBe(1);
  } finally {
    await app.close();
  }
});

it('with no feedback input nothing is indexed, and a DSN is ignored as unknown', async () => {
  const other = await testDb('fbwiring_none');
  const { app } = await startTestApp(other.uri, smtp.url);
  try {
    expect(app.store.messageIndex).toBeUndefined();
    const start = smtp.messages.length;
    await app.dispatcher.dispatch([sampleDelivery({ key: scheduledKey('s:n1', '09:00', '2027-03-01'), email: 'n1@example.test' })]);
    await waitFor(() => smtp.messages.length > start, 'the message at the SMTP server');
    expect(await other.db.collection('mailwheel_message_index').countDocuments({})).toBe(0);
    const m = smtp.messages[start];
    const r = await app.feedback.sink.apply([{ source: 'dsn', kind: 'hard-bounce', email: 'n1@example.test', messageId: m?.messageId, at: new Date() }]);
    expect(r.ignored.map((i) => i.reason)).toEqual(['unknown-message']);
    expect(app.suppressions.has('n1@example.test')).toBe(false);
    expect(app.feedback.refusals.count('dsn', 'unknown-message')).toBe(1);
  } finally {
    await app.close();
    await other.cleanup();
  }
});

it('an SES certificate file that cannot be read fails the start, naming the setting and the file', async () => {
  const url = 'https://sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem';
  await expect(startTestApp(db.uri, smtp.url, { feedback: { webhooks: { ses: { enabled: true, certificates: { [url]: 'certs/missing.pem' } } } } })).rejects.toThrow(
    /feedback\.webhooks\.ses\.certificates\["https:\/\/sns\.us-east-1\.amazonaws\.com\/SimpleNotificationService-test\.pem"\]: cannot read .*certs\/missing\.pem: ENOENT/,
  );
});

it('an inbound listener that cannot bind fails the start, naming feedback.inbound.host/port', async () => {
  const loaded = loadConfig({ file: writeTestConfig({ feedback: { inbound: { enabled: true, host: '127.0.0.1', port: 2525 } } }), env: { MONGODB_URI: db.uri, SMTP_URL: smtp.url } });
  const busy = Object.assign(new Error('listen EADDRINUSE: address already in use 127.0.0.1:2525'), { code: 'EADDRINUSE' });
  const inbound = { listen: () => Promise.reject(busy), close: () => Promise.resolve() };
  await expect(startInbound({ inbound }, loaded.config, silentLogger())).rejects.toMatchObject({
    code: 'MW_STARTUP_FAILED',
    message: expect.stringMatching(/^feedback\.inbound: cannot listen on 127\.0\.0\.1:2525 \(feedback\.inbound\.host \/ feedback\.inbound\.port\): address already in use$/),
  });
  expect(await startInbound({ inbound: undefined }, loaded.config, silentLogger())).toBeUndefined();
});
