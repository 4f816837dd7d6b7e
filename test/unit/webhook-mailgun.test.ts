/**
 * Mailgun webhooks: fixtures signed as Mailgun signs them (hex HMAC-SHA256 of timestamp + token
 * under the signing key), in the JSON shape Mailgun posts.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { feedbackConfig, serveWebhooks, type Served } from '../helpers/webhook-fixtures.js';

const KEY = 'key-0123456789abcdef0123456789abcdef';
let s: Served;

function payload(eventData: Record<string, unknown>, opts: { key?: string; ts?: number; token?: string } = {}): string {
  const timestamp = String(opts.ts ?? Math.floor(s.clock.now() / 1000));
  const token = opts.token ?? randomBytes(25).toString('hex');
  const signature = createHmac('sha256', opts.key ?? KEY).update(timestamp + token).digest('hex');
  return JSON.stringify({ signature: { timestamp, token, signature }, 'event-data': eventData });
}

const failed = (severity: string, recipient: string, id: string) => ({
  event: 'failed',
  severity,
  recipient,
  id,
  timestamp: s.clock.now() / 1000 - 2.5,
  reason: severity === 'permanent' ? 'bounce' : 'generic',
  message: { headers: { 'message-id': '0123456789abcdef0123456789abcdef@mw.example', to: recipient } },
  'delivery-status': { code: 550, message: '5.1.1 The email account that you tried to reach does not exist', description: '' },
});

beforeAll(async () => {
  s = await serveWebhooks(feedbackConfig({ mailgun: { signingKey: KEY }, maxAgeSeconds: 300 }));
});
afterAll(() => s.close());

describe('mailgun webhook', () => {
  it('applies failed permanent as hard, temporary as soft, complained as complaint, each once', async () => {
    const hard = payload(failed('permanent', 'gone@example.com', 'mg-1'));
    expect((await s.post('/webhooks/mailgun', hard)).status).toBe(200);
    expect((await s.post('/webhooks/mailgun', payload(failed('temporary', 'full@example.com', 'mg-2')))).status).toBe(200);
    expect((await s.post('/webhooks/mailgun', payload({ event: 'complained', recipient: 'angry@example.com', id: 'mg-3', timestamp: s.clock.now() / 1000, message: { headers: { 'message-id': '<ffff@mw.example>' } } }))).status).toBe(200);
    expect((await s.post('/webhooks/mailgun', payload({ event: 'delivered', recipient: 'ok@example.com', id: 'mg-4', timestamp: s.clock.now() / 1000 }))).status).toBe(200);
    const got = s.sink.reports.map((r) => [r.kind, r.email, r.messageId, r.eventId]);
    expect(got).toEqual([
      ['hard-bounce', 'gone@example.com', '<0123456789abcdef0123456789abcdef@mw.example>', 'mg-1'],
      ['soft-bounce', 'full@example.com', '<0123456789abcdef0123456789abcdef@mw.example>', 'mg-2'],
      ['complaint', 'angry@example.com', '<ffff@mw.example>', 'mg-3'],
    ]);
    expect(s.sink.reports[0]?.detail).toContain('550 5.1.1 The email account');
    expect(s.refusals.count('mailgun', 'not-feedback')).toBe(1);

    // The same token again (the very body, or a new event-data under an old signature): a replay.
    const n = s.sink.batches.length;
    const again = await s.post('/webhooks/mailgun', hard);
    expect([again.status, again.json['replayed']]).toEqual([200, true]);
    expect(s.sink.batches.length).toBe(n);
    expect(s.refusals.count('mailgun', 'replayed')).toBe(1);
  });

  it('refuses tampered, wrong key, unsigned, stale, oversized and malformed, and applies none', async () => {
    const good = payload(failed('permanent', 'gone2@example.com', 'mg-10'));
    expect((await s.post('/webhooks/mailgun', good)).status).toBe(200);
    const before = s.sink.batches.length;
    // Mailgun signs only timestamp + token, so its token is what binds a request: a body
    // tampered under a token already used is a replay, applied never.
    const tampered = await s.post('/webhooks/mailgun', good.replace('gone2@example.com', 'victim@example.com'));
    expect([tampered.status, tampered.json['replayed']]).toEqual([200, true]);
    expect((await s.post('/webhooks/mailgun', payload(failed('permanent', 'x@example.com', 'mg-11'), { key: 'key-wrong' }))).status).toBe(401);
    expect((await s.post('/webhooks/mailgun', JSON.stringify({ 'event-data': failed('permanent', 'x@example.com', 'mg-12') }))).status).toBe(401);
    const badSig = JSON.parse(payload(failed('permanent', 'x@example.com', 'mg-13'))) as { signature: { signature: string } };
    badSig.signature.signature = badSig.signature.signature.replace(/^./, (c) => (c === '0' ? '1' : '0'));
    expect((await s.post('/webhooks/mailgun', JSON.stringify(badSig))).status).toBe(401);
    expect((await s.post('/webhooks/mailgun', payload(failed('permanent', 'x@example.com', 'mg-14'), { ts: Math.floor(s.clock.now() / 1000) - 301 }))).status).toBe(401);
    expect((await s.post('/webhooks/mailgun', payload(failed('permanent', 'x@example.com', 'mg-15'), { ts: Math.floor(s.clock.now() / 1000) + 301 }))).status).toBe(401);
    expect((await s.post('/webhooks/mailgun', '{"signature": ')).status).toBe(400);
    expect((await s.post('/webhooks/mailgun', payload({ event: 'failed', severity: 'permanent', id: 'mg-16' }))).status).toBe(400);
    expect((await s.post('/webhooks/mailgun', payload({ ...failed('permanent', 'x@example.com', 'mg-17'), pad: 'x'.repeat(1_100_000) }))).status).toBe(413);
    expect(s.sink.batches.length).toBe(before);
    expect(s.refusals.count('mailgun', 'bad-signature')).toBe(2);
    expect(s.refusals.count('mailgun', 'unauthenticated')).toBe(1);
    expect(s.refusals.count('mailgun', 'stale')).toBe(2);
    expect(s.refusals.count('mailgun', 'malformed')).toBe(2);
    expect(s.refusals.count('mailgun', 'too-large')).toBe(1);
  });

  it('takes a notification back when the sink fails, so the provider retry is applied', async () => {
    const body = payload(failed('permanent', 'retry@example.com', 'mg-20'));
    s.sink.fail = true;
    const first = await s.post('/webhooks/mailgun', body);
    s.sink.fail = false;
    expect(first.status).toBe(503);
    expect((await s.post('/webhooks/mailgun', body)).status).toBe(200);
    expect(s.sink.reports.filter((r) => r.email === 'retry@example.com')).toHaveLength(1);
  });
});
