/**
 * SendGrid Event Webhook: an ECDSA P-256 key pair made here stands in for SendGrid's; fixtures
 * are signed as SendGrid signs them (base64 DER ECDSA over timestamp + raw body).
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { feedbackConfig, serveWebhooks, type Served } from '../helpers/webhook-fixtures.js';

const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
// As the SendGrid console shows the verification key: base64 of the DER SubjectPublicKeyInfo.
const consoleKey = pair.publicKey.export({ type: 'spki', format: 'der' }).toString('base64');

let s: Served;
const nowSec = () => Math.floor(s.clock.now() / 1000);

function signed(body: string, ts = String(nowSec()), key = pair.privateKey): Record<string, string> {
  const sig = sign('sha256', Buffer.from(ts + body), key).toString('base64');
  return { 'X-Twilio-Email-Event-Webhook-Signature': sig, 'X-Twilio-Email-Event-Webhook-Timestamp': ts };
}

const events = () => [
  { email: 'hard@example.com', timestamp: nowSec() - 5, 'smtp-id': '<aaaa@mw.example>', event: 'bounce', type: 'bounce', status: '5.1.1', reason: '550 no such user', sg_event_id: 'ev-hard' },
  { email: 'blocked@example.com', timestamp: nowSec() - 5, 'smtp-id': '<bbbb@mw.example>', event: 'bounce', type: 'blocked', status: '4.0.0', reason: 'blocked', sg_event_id: 'ev-blocked' },
  { email: 'dropped@example.com', timestamp: nowSec(), 'smtp-id': '<cccc@mw.example>', event: 'dropped', reason: 'Bounced Address', sg_event_id: 'ev-dropped' },
  { email: 'unsub@example.com', timestamp: nowSec(), event: 'dropped', reason: 'Unsubscribed Address', sg_event_id: 'ev-dropped-unsub' },
  { email: 'angry@example.com', timestamp: nowSec(), 'smtp-id': '<dddd@mw.example>', event: 'spamreport', sg_event_id: 'ev-spam' },
  { email: 'fine@example.com', timestamp: nowSec(), event: 'delivered', sg_event_id: 'ev-delivered' },
];

beforeAll(async () => {
  s = await serveWebhooks(feedbackConfig({ sendgrid: { publicKey: consoleKey }, maxBodyBytes: 20_000, maxAgeSeconds: 600 }));
});
afterAll(() => s.close());

describe('sendgrid webhook', () => {
  it('applies a signed batch once: bounce hard, blocked soft, dropped Bounced Address hard, spamreport complaint', async () => {
    const body = JSON.stringify(events());
    const before = s.sink.reports.length;
    const headers = signed(body);
    const r = await s.post('/webhooks/sendgrid', body, headers);
    expect(r.status).toBe(200);
    const got = s.sink.reports.slice(before).map((x) => [x.kind, x.email, x.messageId, x.eventId]);
    expect(got).toEqual([
      ['hard-bounce', 'hard@example.com', '<aaaa@mw.example>', 'ev-hard'],
      ['soft-bounce', 'blocked@example.com', '<bbbb@mw.example>', 'ev-blocked'],
      ['hard-bounce', 'dropped@example.com', '<cccc@mw.example>', 'ev-dropped'],
      ['complaint', 'angry@example.com', '<dddd@mw.example>', 'ev-spam'],
    ]);
    expect(s.sink.reports.at(before)?.at.getTime()).toBe((nowSec() - 5) * 1000);
    expect(s.refusals.count('sendgrid', 'not-feedback')).toBe(2);

    // The same signed request again (ECDSA signatures are randomised, so it is the very same
    // headers): a replay, answered 200 so SendGrid stops retrying, and applied never.
    const batches = s.sink.batches.length;
    const again = await s.post('/webhooks/sendgrid', body, headers);
    expect(again.status).toBe(200);
    expect(again.json['replayed']).toBe(true);
    expect(s.sink.batches.length).toBe(batches);
    expect(s.refusals.count('sendgrid', 'replayed')).toBe(1);
  });

  it('accepts the key as PEM too', async () => {
    const pem = await serveWebhooks(feedbackConfig({ sendgrid: { publicKey: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString() } }));
    try {
      const body = JSON.stringify(events().slice(0, 1));
      expect((await pem.post('/webhooks/sendgrid', body, signed(body, String(Math.floor(pem.clock.now() / 1000))))).status).toBe(200);
      expect(pem.sink.reports).toHaveLength(1);
    } finally {
      await pem.close();
    }
  });

  it('refuses tampered, wrongly signed, unsigned, stale, oversized and malformed requests, and applies none', async () => {
    const before = s.sink.batches.length;
    const body = JSON.stringify(events());
    const tampered = body.replace('hard@example.com', 'victim@example.com');
    expect((await s.post('/webhooks/sendgrid', tampered, signed(body))).status).toBe(401);
    expect((await s.post('/webhooks/sendgrid', body, signed(body, undefined, other.privateKey))).status).toBe(401);
    expect((await s.post('/webhooks/sendgrid', body)).status).toBe(401);
    expect((await s.post('/webhooks/sendgrid', body, { ...signed(body), 'X-Twilio-Email-Event-Webhook-Signature': 'not base64 !!' })).status).toBe(401);
    const staleTs = String(nowSec() - 3600);
    expect((await s.post('/webhooks/sendgrid', body, signed(body, staleTs))).status).toBe(401);
    const big = JSON.stringify(Array.from({ length: 400 }, (_, i) => ({ ...events()[0], sg_event_id: `big-${i}` })));
    expect(big.length).toBeGreaterThan(20_000);
    expect((await s.post('/webhooks/sendgrid', big, signed(big))).status).toBe(413);
    const broken = '[{"email": "x@example.com",';
    expect((await s.post('/webhooks/sendgrid', broken, signed(broken))).status).toBe(400);
    const notArray = '{"event":"bounce"}';
    expect((await s.post('/webhooks/sendgrid', notArray, signed(notArray))).status).toBe(400);
    expect((await s.post('/webhooks/sendgrid', '', {}, 'GET')).status).toBe(405);
    expect(s.sink.batches.length).toBe(before);
    expect(s.refusals.count('sendgrid', 'bad-signature')).toBe(3);
    expect(s.refusals.count('sendgrid', 'unauthenticated')).toBe(1);
    expect(s.refusals.count('sendgrid', 'stale')).toBe(1);
    expect(s.refusals.count('sendgrid', 'too-large')).toBe(1);
    expect(s.refusals.count('sendgrid', 'malformed')).toBe(3);
  });

  it('serves only configured providers', () => {
    expect(s.webhooks.handles('/webhooks/sendgrid')).toBe(true);
    for (const p of ['/webhooks/ses', '/webhooks/mailgun', '/webhooks/postmark', '/webhooks/', '/webhooks/sendgrid/x']) expect(s.webhooks.handles(p), p).toBe(false);
  });
});
