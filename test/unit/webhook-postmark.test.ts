/**
 * Postmark bounce and spam-complaint webhooks: basic auth from the webhook URL, records in the
 * shape Postmark posts (RecordType, ID, Type, Email, BouncedAt, MessageID).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { feedbackConfig, serveWebhooks, type Served } from '../helpers/webhook-fixtures.js';

const USER = 'mailwheel';
const PASS = 'postmark-pass-0123456789';
const basic = (u: string, p: string) => ({ authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}` });
const AUTH = basic(USER, PASS);
let s: Served;

const bounce = (id: number, type: string, email: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    RecordType: 'Bounce',
    ID: id,
    Type: type,
    TypeCode: 1,
    Name: type,
    MessageID: '883953f4-6105-42a2-a16a-77a8eac79483',
    ServerID: 23,
    MessageStream: 'outbound',
    Description: 'The server was unable to deliver your message (ex: unknown user, mailbox not found).',
    Details: 'smtp;550 5.1.1 The email account that you tried to reach does not exist.',
    Email: email,
    From: 'news@mw.example',
    BouncedAt: '2026-12-03T11:59:00Z',
    DumpAvailable: true,
    Inactive: true,
    CanActivate: true,
    Subject: 'Hello',
    ...extra,
  });

beforeAll(async () => {
  s = await serveWebhooks(feedbackConfig({ postmark: { username: USER, password: PASS } }));
});
afterAll(() => s.close());

describe('postmark webhook', () => {
  it('applies HardBounce as hard, Transient and DnsError as soft, SpamComplaint as complaint; AutoResponder is not feedback', async () => {
    for (const [id, type, email] of [
      [1, 'HardBounce', 'gone@example.com'],
      [2, 'Transient', 'later@example.com'],
      [3, 'DnsError', 'nodns@example.com'],
      [4, 'AutoResponder', 'away@example.com'],
    ] as const) {
      expect((await s.post('/webhooks/postmark', bounce(id, type, email), AUTH)).status).toBe(200);
    }
    const complaint = JSON.stringify({ RecordType: 'SpamComplaint', ID: 5, Type: 'SpamComplaint', Email: 'angry@example.com', BouncedAt: '2026-12-03T12:00:00Z', MessageID: 'x' });
    expect((await s.post('/webhooks/postmark', complaint, AUTH)).status).toBe(200);
    const withHeaders = bounce(6, 'HardBounce', 'hdr@example.com', { Headers: [{ Name: 'Message-ID', Value: '<0123abcd@mw.example>' }] });
    expect((await s.post('/webhooks/postmark', withHeaders, AUTH)).status).toBe(200);
    expect(s.sink.reports.map((r) => [r.kind, r.email, r.eventId, r.messageId])).toEqual([
      ['hard-bounce', 'gone@example.com', '1', undefined],
      ['soft-bounce', 'later@example.com', '2', undefined],
      ['soft-bounce', 'nodns@example.com', '3', undefined],
      ['complaint', 'angry@example.com', '5', undefined],
      ['hard-bounce', 'hdr@example.com', '6', '<0123abcd@mw.example>'],
    ]);
    expect(s.sink.reports[0]?.at.toISOString()).toBe('2026-12-03T11:59:00.000Z');
    expect(s.refusals.count('postmark', 'not-feedback')).toBe(1);

    const n = s.sink.batches.length;
    const again = await s.post('/webhooks/postmark', bounce(1, 'HardBounce', 'gone@example.com'), AUTH);
    expect([again.status, again.json['replayed']]).toEqual([200, true]);
    expect(s.sink.batches.length).toBe(n);
  });

  it('refuses wrong or missing credentials, oversized and malformed records, and applies none', async () => {
    const n = s.sink.batches.length;
    const body = bounce(100, 'HardBounce', 'x@example.com');
    for (const auth of [{}, basic(USER, `${PASS}x`), basic(`${USER}x`, PASS), basic('', ''), { authorization: `Bearer ${PASS}` }, { authorization: 'Basic !!!' }]) {
      const r = await s.post('/webhooks/postmark', body, auth);
      expect(r.status, JSON.stringify(auth)).toBe(401);
    }
    expect((await s.post('/webhooks/postmark', '{"RecordType":', AUTH)).status).toBe(400);
    expect((await s.post('/webhooks/postmark', JSON.stringify({ RecordType: 'Bounce', Type: 'HardBounce', Email: 'x@example.com' }), AUTH)).status).toBe(400);
    expect((await s.post('/webhooks/postmark', bounce(101, 'HardBounce', 'not an address'), AUTH)).status).toBe(400);
    expect((await s.post('/webhooks/postmark', JSON.stringify([1, 2, 3]), AUTH)).status).toBe(400);
    expect((await s.post('/webhooks/postmark', bounce(102, 'HardBounce', 'x@example.com', { Content: 'x'.repeat(1_000_001) }), AUTH)).status).toBe(413);
    expect(s.sink.batches.length).toBe(n);
    expect(s.refusals.count('postmark', 'unauthenticated')).toBe(6);
    expect(s.refusals.count('postmark', 'malformed')).toBe(4);
    expect(s.refusals.count('postmark', 'too-large')).toBe(1);
  });
});
