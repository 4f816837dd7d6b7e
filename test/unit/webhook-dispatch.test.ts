/**
 * The dispatcher's own duties, whatever the provider: nothing from a body or a secret reaches the
 * log, a failing replay guard is a 503 (the provider retries) and applies nothing, and
 * construction names every unusable setting; any authenticated JSON is answered, never a 5xx.
 */
import { createHmac, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import pino from 'pino';
import { expect, it } from 'vitest';
import { RefusalCounter } from '../../src/core/feedback-refusals.js';
import { FeedbackWebhooks } from '../../src/feedback/webhooks/index.js';
import { feedbackConfig, RecordingSink, serveWebhooks } from '../helpers/webhook-fixtures.js';

const KEY = 'key-secret-signing-0123456789';
const PASS = 'postmark-secret-pass-987654';

function mailgunBody(recipient: string, key = KEY): string {
  const timestamp = String(Math.floor(Date.now() / 1000));
  const token = randomBytes(25).toString('hex');
  const signature = createHmac('sha256', key).update(timestamp + token).digest('hex');
  return JSON.stringify({ signature: { timestamp, token, signature }, 'event-data': { event: 'failed', severity: 'permanent', recipient, id: randomBytes(4).toString('hex') } });
}

async function serve(replay: { firstSeen(): Promise<boolean> }, lines: string[]) {
  const log = pino({ level: 'trace' }, { write: (l: string) => void lines.push(l) });
  const sink = new RecordingSink();
  const refusals = new RefusalCounter();
  const webhooks = new FeedbackWebhooks({
    feedback: feedbackConfig({ mailgun: { signingKey: KEY }, postmark: { username: 'u', password: PASS } }),
    certificates: new Map(),
    sink,
    refusals,
    replay,
    clock: { now: () => Date.now() },
    log,
  });
  const server = createServer((req, res) => void webhooks.handle(req, res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { sink, refusals, base, close: () => new Promise<void>((r) => server.close(() => r())) };
}

it('logs neither bodies, addresses nor secrets, whatever it answers', async () => {
  const lines: string[] = [];
  const s = await serve({ firstSeen: () => Promise.resolve(true) }, lines);
  try {
    await fetch(`${s.base}/webhooks/mailgun`, { method: 'POST', body: mailgunBody('logged-never@example.com') });
    await fetch(`${s.base}/webhooks/mailgun`, { method: 'POST', body: mailgunBody('forged-never@example.com', 'wrong') });
    await fetch(`${s.base}/webhooks/mailgun`, { method: 'POST', body: '{"oops": "body-text-never' });
    await fetch(`${s.base}/webhooks/postmark`, { method: 'POST', headers: { authorization: `Basic ${Buffer.from(`u:${PASS}x`).toString('base64')}` }, body: '{}' });
    expect(s.sink.reports.map((r) => r.email)).toEqual(['logged-never@example.com']);
    expect(lines.length).toBeGreaterThan(0); // the refusals are logged at debug ...
    const text = lines.join('\n');
    for (const secret of ['never@example.com', 'body-text-never', KEY, PASS, Buffer.from(`u:${PASS}x`).toString('base64')]) expect(text).not.toContain(secret); // ... without any of this
  } finally {
    await s.close();
  }
});

it('answers 503 and applies nothing when the replay guard fails', async () => {
  const s = await serve({ firstSeen: () => Promise.reject(new Error('mongo down')) }, []);
  try {
    const r = await fetch(`${s.base}/webhooks/mailgun`, { method: 'POST', body: mailgunBody('x@example.com') });
    expect(r.status).toBe(503);
    expect(r.headers.get('retry-after')).toBe('60');
    expect(s.sink.batches).toHaveLength(0);
  } finally {
    await s.close();
  }
});

it('refuses at construction every unusable setting, each named', () => {
  const make = () =>
    new FeedbackWebhooks({
      feedback: feedbackConfig({ ses: { enabled: true, certHostPattern: '(' }, sendgrid: { publicKey: 'bm90IGEga2V5IGF0IGFsbCwgbm90IGF0IGFsbA==' } }),
      certificates: new Map(),
      sink: new RecordingSink(),
      refusals: new RefusalCounter(),
      replay: { firstSeen: () => Promise.resolve(true) },
      clock: { now: () => 0 },
      log: pino({ level: 'silent' }),
    });
  expect(make).toThrow(/feedback\.webhooks\.ses\.certHostPattern[\s\S]*feedback\.webhooks\.sendgrid\.publicKey/);
});

it('answers any authenticated JSON with 200 or 400, never 5xx, and passes on only well-formed reports', async () => {
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const s = await serveWebhooks(
    feedbackConfig({ sendgrid: { publicKey: pair.publicKey.export({ type: 'spki', format: 'der' }).toString('base64') }, postmark: { username: 'u', password: PASS } }),
  );
  const auth = { authorization: `Basic ${Buffer.from(`u:${PASS}`).toString('base64')}` };
  // Events shaped almost like SendGrid's and Postmark's, with any value in any field.
  const anyValue = fc.oneof(fc.jsonValue(), fc.constantFrom('bounce', 'blocked', 'spamreport', 'dropped', 'Bounced Address', 'Bounce', 'HardBounce', 'SpamComplaint', 'a@example.com', '<m@x>'));
  const sgEvent = fc.record({ email: anyValue, event: anyValue, type: anyValue, reason: anyValue, timestamp: anyValue, 'smtp-id': anyValue, sg_event_id: anyValue }, { requiredKeys: [] });
  const pmRecord = fc.record({ RecordType: anyValue, ID: fc.oneof(fc.integer(), anyValue), Type: anyValue, Email: anyValue, BouncedAt: anyValue, Headers: anyValue }, { requiredKeys: [] });
  try {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.array(sgEvent, { maxLength: 5 }), fc.jsonValue()), pmRecord, async (events, record) => {
        const body = JSON.stringify(events) ?? 'null';
        const ts = String(Math.floor(s.clock.now() / 1000));
        const headers = { 'X-Twilio-Email-Event-Webhook-Signature': sign('sha256', Buffer.from(ts + body), pair.privateKey).toString('base64'), 'X-Twilio-Email-Event-Webhook-Timestamp': ts };
        expect([200, 400]).toContain((await s.post('/webhooks/sendgrid', body, headers)).status);
        expect([200, 400]).toContain((await s.post('/webhooks/postmark', JSON.stringify(record), auth)).status);
      }),
      { numRuns: 150 },
    );
    for (const r of s.sink.reports) {
      expect(r.email).toMatch(/^[^\s@<>]+@[^\s@<>]+$/);
      expect(Number.isFinite(r.at.getTime())).toBe(true);
      expect(['hard-bounce', 'soft-bounce', 'complaint']).toContain(r.kind);
    }
  } finally {
    await s.close();
  }
});
