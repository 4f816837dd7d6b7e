/**
 * Amazon SES through SNS: a self-signed RSA certificate made here with the openssl CLI stands in
 * for the SNS signing certificate, injected by URL (nothing is fetched); fixtures are SNS
 * envelopes signed as SNS signs them (the canonical string of the AWS docs, SHA1withRSA for
 * SignatureVersion 1, SHA256withRSA for 2) around SES notifications in both documented shapes.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPrivateKey, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SnsMessage } from '../../src/feedback/webhooks/sns.js';
import { feedbackConfig, serveWebhooks, type Served } from '../helpers/webhook-fixtures.js';

const CERT_URL = 'https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0123456789abcdef.pem';
const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:ses-feedback';
const SUBSCRIBE_URL = `https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=${TOPIC}&Token=tok`;

let dir: string;
let certPem: string;
let key: KeyObject;
let s: Served;
const fetched: string[] = [];

/** A self-signed certificate valid from now for a day, made by the openssl CLI. */
function makeCert(): { cert: string; key: KeyObject } {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=sns.amazonaws.com'], { stdio: 'ignore' });
  return { cert: readFileSync(join(dir, 'cert.pem'), 'utf8'), key: createPrivateKey(readFileSync(join(dir, 'key.pem'))) };
}

/**
 * The string SNS signs, written out here from the AWS docs rather than taken from the code under
 * test: `Name\nValue\n` for each field, in this order.
 */
function canonical(m: SnsMessage): string {
  const fields =
    m.Type === 'Notification'
      ? [['Message', m.Message], ['MessageId', m.MessageId], ...(m.Subject === undefined ? [] : [['Subject', m.Subject]]), ['Timestamp', m.Timestamp], ['TopicArn', m.TopicArn], ['Type', m.Type]]
      : [['Message', m.Message], ['MessageId', m.MessageId], ['SubscribeURL', m.SubscribeURL], ['Timestamp', m.Timestamp], ['Token', m.Token], ['TopicArn', m.TopicArn], ['Type', m.Type]];
  return fields.map(([k, v]) => `${k}\n${v}\n`).join('');
}

let seq = 0;
function envelope(fields: Partial<SnsMessage> & { Type: SnsMessage['Type'] }, signer: KeyObject = key): Record<string, string> {
  const m: SnsMessage = {
    MessageId: `00000000-0000-4000-8000-${String(++seq).padStart(12, '0')}`,
    TopicArn: TOPIC,
    Message: '',
    Timestamp: new Date(s.clock.now() - 1000).toISOString(),
    SignatureVersion: '1',
    Signature: '',
    SigningCertURL: CERT_URL,
    ...fields,
  };
  m.Signature = sign(m.SignatureVersion === '1' ? 'sha1' : 'sha256', Buffer.from(canonical(m)), signer).toString('base64');
  return { ...m, UnsubscribeURL: 'https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe' } as unknown as Record<string, string>;
}

const mail = (withHeaders: boolean) => ({
  timestamp: new Date().toISOString(),
  source: 'news@mw.example',
  messageId: '0100018c-ses-own-id-000000',
  destination: ['a@example.com', 'b@example.com'],
  headersTruncated: false,
  ...(withHeaders ? { headers: [{ name: 'From', value: 'news@mw.example' }, { name: 'Message-ID', value: '<aaaa1111@mw.example>' }] } : {}),
  commonHeaders: { from: ['news@mw.example'], messageId: withHeaders ? '<zzzz@other>' : '<bbbb2222@mw.example>', subject: 'Hello' },
});

const bounceNotification = (bounceType: string) => ({
  notificationType: 'Bounce',
  bounce: {
    bounceType,
    bounceSubType: 'General',
    bouncedRecipients: [
      { emailAddress: 'a@example.com', action: 'failed', status: '5.1.1', diagnosticCode: 'smtp; 550 5.1.1 user unknown' },
      { emailAddress: 'b@example.com', action: 'failed', status: '5.1.1', diagnosticCode: 'smtp; 550 5.1.1 user unknown' },
    ],
    timestamp: '2026-12-03T12:00:00.000Z',
    feedbackId: 'fb-1',
  },
  mail: mail(true),
});

const post = (body: Record<string, string> | string) => s.post('/webhooks/ses', typeof body === 'string' ? body : JSON.stringify(body), { 'content-type': 'text/plain; charset=UTF-8', 'x-amz-sns-message-type': 'Notification' });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mw-sns-'));
  ({ cert: certPem, key } = makeCert());
  s = await serveWebhooks(feedbackConfig({ ses: { enabled: true, topicArns: [TOPIC] }, maxAgeSeconds: 900 }), {
    certificates: new Map([[CERT_URL, certPem]]),
    fetchText: (url) => {
      fetched.push(url);
      return url === SUBSCRIBE_URL ? Promise.resolve('<ConfirmSubscriptionResponse/>') : Promise.reject(new Error('not in this test'));
    },
  });
});
afterAll(async () => {
  await s?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('ses webhook (SNS)', () => {
  it('applies a Permanent bounce as one hard bounce per recipient, with the original Message-ID (SignatureVersion 1)', async () => {
    const env = envelope({ Type: 'Notification', Message: JSON.stringify(bounceNotification('Permanent')) });
    const r = await post(env);
    expect(r.status).toBe(200);
    expect(s.sink.reports.map((x) => [x.kind, x.email, x.messageId, x.eventId])).toEqual([
      ['hard-bounce', 'a@example.com', '<aaaa1111@mw.example>', `${env['MessageId']}:a@example.com`],
      ['hard-bounce', 'b@example.com', '<aaaa1111@mw.example>', `${env['MessageId']}:b@example.com`],
    ]);
    expect(s.sink.reports[0]?.detail).toBe('Permanent/General 5.1.1 smtp; 550 5.1.1 user unknown');
    expect(s.sink.reports[0]?.at.toISOString()).toBe('2026-12-03T12:00:00.000Z');

    const n = s.sink.batches.length;
    const again = await post(env);
    expect([again.status, again.json['replayed']]).toEqual([200, true]);
    expect(s.sink.batches.length).toBe(n);
  });

  it('reads Transient as soft, the event-publishing shape, complaints, and SignatureVersion 2 with a Subject', async () => {
    const from = s.sink.reports.length;
    const transient = { ...bounceNotification('Transient'), mail: mail(false) };
    expect((await post(envelope({ Type: 'Notification', Message: JSON.stringify(transient), SignatureVersion: '2', Subject: 'Amazon SES Email Event Notification' }))).status).toBe(200);
    const published = { eventType: 'Complaint', complaint: { complainedRecipients: [{ emailAddress: 'c@example.com' }], timestamp: '2026-12-03T12:01:00.000Z', feedbackId: 'fb-2', complaintFeedbackType: 'abuse' }, mail: mail(true) };
    expect((await post(envelope({ Type: 'Notification', Message: JSON.stringify(published) }))).status).toBe(200);
    const delivery = { notificationType: 'Delivery', delivery: { recipients: ['d@example.com'] }, mail: mail(true) };
    expect((await post(envelope({ Type: 'Notification', Message: JSON.stringify(delivery) }))).status).toBe(200);
    expect(s.sink.reports.slice(from).map((x) => [x.kind, x.email, x.messageId, x.detail])).toEqual([
      ['soft-bounce', 'a@example.com', '<bbbb2222@mw.example>', 'Transient/General 5.1.1 smtp; 550 5.1.1 user unknown'],
      ['soft-bounce', 'b@example.com', '<bbbb2222@mw.example>', 'Transient/General 5.1.1 smtp; 550 5.1.1 user unknown'],
      ['complaint', 'c@example.com', '<aaaa1111@mw.example>', 'abuse'],
    ]);
    expect(s.refusals.count('ses', 'not-feedback')).toBe(1);
  });

  it('confirms a signed subscription by GETting its SubscribeURL, and never one off the SNS host', async () => {
    const ok = await post(envelope({ Type: 'SubscriptionConfirmation', Message: 'You have chosen to subscribe', SubscribeURL: SUBSCRIBE_URL, Token: 'tok' }));
    expect([ok.status, ok.json['confirmed']]).toEqual([200, true]);
    expect(fetched).toEqual([SUBSCRIBE_URL]);
    const evil = await post(envelope({ Type: 'SubscriptionConfirmation', Message: 'x', SubscribeURL: 'https://evil.example/?Action=ConfirmSubscription', Token: 'tok' }));
    expect(evil.status).toBe(400);
    const unsigned = envelope({ Type: 'SubscriptionConfirmation', Message: 'x', SubscribeURL: SUBSCRIBE_URL, Token: 'tok' });
    unsigned['Token'] = 'other';
    expect((await post(unsigned)).status).toBe(401);
    expect(fetched).toEqual([SUBSCRIBE_URL]);
    expect(s.webhooks.sesStats?.subscriptionsConfirmed).toBe(1);
  });

  it('refuses tampered, wrongly signed, unsigned, off-host certificates, unknown topics, stale, oversized and malformed, and applies none', async () => {
    const n = s.sink.batches.length;
    const msg = JSON.stringify(bounceNotification('Permanent'));
    const tampered = envelope({ Type: 'Notification', Message: msg });
    tampered['Message'] = msg.replace('a@example.com', 'victim@example.com');
    expect((await post(tampered)).status).toBe(401);
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    expect((await post(envelope({ Type: 'Notification', Message: msg }, other))).status).toBe(401);
    const unsigned = envelope({ Type: 'Notification', Message: msg });
    delete unsigned['Signature'];
    expect((await post(unsigned)).status).toBe(400);
    for (const url of ['http://sns.eu-west-1.amazonaws.com/x.pem', 'https://sns.eu-west-1.amazonaws.com.evil.example/x.pem', 'https://evil.example/sns.eu-west-1.amazonaws.com.pem', 'https://sns.eu-west-1.amazonaws.com/x.txt']) {
      expect((await post(envelope({ Type: 'Notification', Message: msg, SigningCertURL: url }))).status, url).toBe(403);
    }
    // On the SNS host but neither configured nor fetchable: no certificate, no trust.
    expect((await post(envelope({ Type: 'Notification', Message: msg, SigningCertURL: 'https://sns.eu-west-1.amazonaws.com/other.pem' }))).status).toBe(403);
    expect((await post(envelope({ Type: 'Notification', Message: msg, TopicArn: 'arn:aws:sns:eu-west-1:123456789012:someone-else' }))).status).toBe(403);
    expect((await post(envelope({ Type: 'Notification', Message: msg, Timestamp: new Date(s.clock.now() - 901_000).toISOString() }))).status).toBe(401);
    expect((await post(envelope({ Type: 'Notification', Message: JSON.stringify({ ...bounceNotification('Permanent'), pad: 'x'.repeat(1_000_000) }) }))).status).toBe(413);
    expect((await post('{"Type": "Notification", ')).status).toBe(400);
    expect((await post(envelope({ Type: 'Notification', Message: 'not json' }))).status).toBe(400);
    expect((await post(envelope({ Type: 'Notification', Message: JSON.stringify({ notificationType: 'Bounce', bounce: { bounceType: 'Permanent', bouncedRecipients: 'a@example.com' }, mail: {} }) }))).status).toBe(400);
    expect(s.sink.batches.length).toBe(n);
    expect(s.refusals.count('ses', 'bad-signature')).toBe(3); // with the tampered confirmation above
    expect(s.refusals.count('ses', 'bad-certificate')).toBe(5);
    expect(s.refusals.count('ses', 'unknown-topic')).toBe(1);
    expect(s.refusals.count('ses', 'stale')).toBe(1);
    expect(s.refusals.count('ses', 'too-large')).toBe(1);
    expect(s.refusals.count('ses', 'malformed')).toBe(5); // with the off-host SubscribeURL above
  });

  it('refuses a certificate outside its validity', async () => {
    const later = await serveWebhooks(feedbackConfig({ ses: { enabled: true } }), { certificates: new Map([[CERT_URL, certPem]]) }, Date.now() + 3 * 86_400_000);
    try {
      const env = JSON.stringify(envelope({ Type: 'Notification', Message: JSON.stringify(bounceNotification('Permanent')), Timestamp: new Date(later.clock.now()).toISOString() }));
      const r = await later.post('/webhooks/ses', env);
      expect(r.status).toBe(403);
      expect(later.sink.batches).toHaveLength(0);
    } finally {
      await later.close();
    }
  });

  it('refuses at construction a configured certificate that is not a PEM certificate', async () => {
    await expect(serveWebhooks(feedbackConfig({ ses: { enabled: true } }), { certificates: new Map([[CERT_URL, 'not a pem']]) })).rejects.toThrow(/feedback\.webhooks\.ses\.certificates/);
  });

  it('fetches an unpinned certificate from the SNS host once, and does not keep a failed fetch', async () => {
    const urls: string[] = [];
    let fail = true;
    const f = await serveWebhooks(feedbackConfig({ ses: { enabled: true } }), {
      fetchText: (url) => {
        urls.push(url);
        return fail ? Promise.reject(new Error('network down')) : Promise.resolve(certPem);
      },
    });
    try {
      const send = () => f.post('/webhooks/ses', JSON.stringify(envelope({ Type: 'Notification', Message: JSON.stringify(bounceNotification('Permanent')), Timestamp: new Date(f.clock.now()).toISOString() })));
      expect((await send()).status).toBe(403);
      fail = false;
      expect((await send()).status).toBe(200);
      expect((await send()).status).toBe(200);
      expect(urls).toEqual([CERT_URL, CERT_URL]);
      expect(f.sink.reports).toHaveLength(4);
      // Never a fetch off the SNS host, whatever the message says.
      expect((await f.post('/webhooks/ses', JSON.stringify(envelope({ Type: 'Notification', Message: '{}', SigningCertURL: 'https://evil.example/cert.pem' })))).status).toBe(403);
      expect(urls).toHaveLength(2);
    } finally {
      await f.close();
    }
  });

  it('matches the whole certificate host even when the configured pattern is not anchored', async () => {
    const f = await serveWebhooks(feedbackConfig({ ses: { enabled: true, certHostPattern: 'sns\\.[a-z0-9-]+\\.amazonaws\\.com' } }), { fetchText: () => Promise.resolve(certPem) });
    try {
      const msg = (url: string) => JSON.stringify(envelope({ Type: 'Notification', Message: JSON.stringify(bounceNotification('Permanent')), SigningCertURL: url, Timestamp: new Date(f.clock.now()).toISOString() }));
      expect((await f.post('/webhooks/ses', msg('https://sns.eu-west-1.amazonaws.com.evil.example/x.pem'))).status).toBe(403);
      expect((await f.post('/webhooks/ses', msg('https://evil-sns.eu-west-1.amazonaws.com/x.pem'))).status).toBe(403);
      expect((await f.post('/webhooks/ses', msg(CERT_URL))).status).toBe(200);
    } finally {
      await f.close();
    }
  });

  it('with confirmSubscriptions off, answers a confirmation 200 and fetches nothing', async () => {
    const urls: string[] = [];
    const f = await serveWebhooks(feedbackConfig({ ses: { enabled: true, confirmSubscriptions: false } }), {
      certificates: new Map([[CERT_URL, certPem]]),
      fetchText: (url) => {
        urls.push(url);
        return Promise.resolve('');
      },
    });
    try {
      const r = await f.post('/webhooks/ses', JSON.stringify(envelope({ Type: 'SubscriptionConfirmation', Message: 'x', SubscribeURL: SUBSCRIBE_URL, Token: 'tok', Timestamp: new Date(f.clock.now()).toISOString() })));
      expect([r.status, r.json['confirmed']]).toEqual([200, false]);
      expect(urls).toEqual([]);
      expect(f.webhooks.sesStats?.subscriptionsNotConfirmed).toBe(1);
    } finally {
      await f.close();
    }
  });
});
