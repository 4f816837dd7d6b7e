/**
 * The DSN (RFC 3464) and ARF (RFC 5965) builders of scripts/lib/report-mail.ts, checked by parsing
 * what they write with `mailparser` (an independent MIME parser) and reading the report fields
 * back: content types and their order, report-type, the per-message and per-recipient fields, the
 * original's headers, Date and Message-ID, CRLF line ends and no header injection.
 */
import { simpleParser, type Attachment, type ParsedMail } from 'mailparser';
import { describe, expect, it } from 'vitest';
import { buildArf, buildDsn, headerBlockOf, messageIdOf, rfc5322Date } from '../../scripts/lib/report-mail.js';

const ORIGINAL = [
  'From: mailwheel <noreply@example.com>',
  'To: User 7 <f7@example.test>',
  'Subject: News for User 7',
  'Date: Thu, 03 Dec 2026 11:59:58 +0000',
  'Message-ID: <0123456789abcdef0123456789abcdef@example.com>',
  'X-Mailwheel-Key: b:20261203-120000-abcdef:f000007',
  'MIME-Version: 1.0',
  'Content-Type: text/plain; charset=utf-8',
  '',
  'Hello User 7,',
  '',
].join('\n'); // LF on purpose: the builders must write CRLF whatever they are given
const VERP = 'bounces+0123456789abcdef0123456789abcdef.c2lnbmF0dXJl@example.test';
const ARRIVED = new Date('2026-12-03T11:59:59Z');
const NOW = new Date('2026-12-03T12:00:03Z');

/** Parses the `Name: value` lines of a report part into blocks (separated by empty lines). */
function fieldBlocks(body: string): Array<Map<string, string>> {
  return body
    .replace(/\r\n/g, '\n')
    .trim()
    .split(/\n\s*\n/)
    .map((block) => {
      const fields = new Map<string, string>();
      for (const line of block.replace(/\n[ \t]+/g, ' ').split('\n')) {
        const colon = line.indexOf(':');
        if (colon > 0) fields.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
      }
      return fields;
    });
}

function part(mail: ParsedMail, contentType: string): Attachment {
  const found = mail.attachments.find((a) => a.contentType === contentType);
  if (found === undefined) throw new Error(`no ${contentType} part; parts: ${mail.attachments.map((a) => a.contentType).join(', ')}`);
  return found;
}

/** No bare LF and no bare CR anywhere: SMTP line ends only. */
function expectCrlfOnly(raw: string): void {
  expect(raw).not.toMatch(/(?<!\r)\n/);
  expect(raw).not.toMatch(/\r(?!\n)/);
  expect(raw.endsWith('\r\n')).toBe(true);
}

describe('buildDsn (RFC 3464)', () => {
  const raw = buildDsn({
    reportingMta: 'relay.example.test',
    to: VERP,
    arrivalDate: ARRIVED,
    date: NOW,
    recipients: [{ address: 'f7@example.test' }, { address: 'f8@example.test', status: '5.2.1', diagnostic: '550 5.2.1 mailbox disabled', remoteMta: 'mx.example.test' }],
    originalHeaders: ORIGINAL,
  });

  it('is a multipart/report of report-type delivery-status: text/plain, message/delivery-status, text/rfc822-headers, in that order', async () => {
    expectCrlfOnly(raw);
    const mail = await simpleParser(raw, { keepDeliveryStatus: true });
    const type = mail.headers.get('content-type') as { value: string; params: Record<string, string> };
    expect(type.value).toBe('multipart/report');
    expect(type.params['report-type']).toBe('delivery-status');
    expect(mail.text).toContain('could not be delivered');
    expect(mail.text).toContain('f7@example.test, f8@example.test');
    expect(mail.attachments.map((a) => a.contentType)).toEqual(['message/delivery-status', 'text/rfc822-headers']);
    // The human part comes first (RFC 6522 §3).
    expect(raw.indexOf('Content-Type: text/plain')).toBeLessThan(raw.indexOf('Content-Type: message/delivery-status'));
  });

  it('carries Date, Message-ID, From MAILER-DAEMON and To the return path', async () => {
    const mail = await simpleParser(raw, { keepDeliveryStatus: true });
    expect(mail.date?.toISOString()).toBe(NOW.toISOString());
    expect(mail.messageId).toMatch(/^<[0-9a-f]{24}@relay\.example\.test>$/);
    expect(mail.from?.value[0]?.address).toBe('MAILER-DAEMON@relay.example.test');
    const to = Array.isArray(mail.to) ? mail.to[0] : mail.to;
    expect(to?.value[0]?.address).toBe(VERP);
    const again = await simpleParser(buildDsn({ reportingMta: 'relay.example.test', to: VERP, arrivalDate: ARRIVED, recipients: [{ address: 'f7@example.test' }], originalHeaders: ORIGINAL }));
    expect(again.messageId, 'each report has its own Message-ID').not.toBe(mail.messageId);
  });

  it('has the per-message fields, then one block per recipient with Final-Recipient, Action, Status, Diagnostic-Code', async () => {
    const mail = await simpleParser(raw, { keepDeliveryStatus: true });
    const [perMessage, first, second, ...rest] = fieldBlocks(part(mail, 'message/delivery-status').content.toString('utf8'));
    expect(rest).toEqual([]);
    expect(perMessage?.get('reporting-mta')).toBe('dns; relay.example.test');
    expect(new Date(perMessage?.get('arrival-date') ?? '').toISOString()).toBe(ARRIVED.toISOString());
    expect(first?.get('final-recipient')).toBe('rfc822; f7@example.test');
    expect(first?.get('action')).toBe('failed');
    expect(first?.get('status')).toBe('5.1.1');
    expect(first?.get('diagnostic-code')).toMatch(/^smtp; 550 5\.1\.1 <f7@example\.test>/);
    expect(first?.has('remote-mta')).toBe(false);
    expect(second?.get('final-recipient')).toBe('rfc822; f8@example.test');
    expect(second?.get('status')).toBe('5.2.1');
    expect(second?.get('diagnostic-code')).toBe('smtp; 550 5.2.1 mailbox disabled');
    expect(second?.get('remote-mta')).toBe('dns; mx.example.test');
  });

  it("returns the original's header block (with its Message-ID), not its body", async () => {
    const mail = await simpleParser(raw, { keepDeliveryStatus: true });
    const headers = part(mail, 'text/rfc822-headers').content.toString('utf8');
    const original = await simpleParser(headers);
    expect(original.messageId).toBe('<0123456789abcdef0123456789abcdef@example.com>');
    expect(original.headers.get('x-mailwheel-key')).toBe('b:20261203-120000-abcdef:f000007');
    expect(headers).not.toContain('Hello User 7');
  });

  it('a soft bounce: Action delayed with a 4.x.x status', async () => {
    const soft = buildDsn({ reportingMta: 'relay.example.test', to: VERP, arrivalDate: ARRIVED, recipients: [{ address: 'f9@example.test', action: 'delayed', status: '4.2.2' }], originalHeaders: ORIGINAL });
    const mail = await simpleParser(soft, { keepDeliveryStatus: true });
    const [, rcpt] = fieldBlocks(part(mail, 'message/delivery-status').content.toString('utf8'));
    expect(rcpt?.get('action')).toBe('delayed');
    expect(rcpt?.get('status')).toBe('4.2.2');
  });
});

describe('buildArf (RFC 5965)', () => {
  const raw = buildArf({
    reportingDomain: 'isp.example.test',
    to: VERP,
    originalMailFrom: VERP,
    originalRcptTo: 'f7@example.test',
    arrivalDate: ARRIVED,
    date: NOW,
    sourceIp: '127.0.0.1',
    originalHeaders: ORIGINAL,
  });

  it('is a multipart/report of report-type feedback-report: text/plain, message/feedback-report, text/rfc822-headers', async () => {
    expectCrlfOnly(raw);
    const mail = await simpleParser(raw);
    const type = mail.headers.get('content-type') as { value: string; params: Record<string, string> };
    expect(type.value).toBe('multipart/report');
    expect(type.params['report-type']).toBe('feedback-report');
    expect(mail.text).toContain('abuse report');
    expect(mail.attachments.map((a) => a.contentType)).toEqual(['message/feedback-report', 'text/rfc822-headers']);
    expect(mail.date?.toISOString()).toBe(NOW.toISOString());
    expect(mail.messageId).toMatch(/^<[0-9a-f]{24}@isp\.example\.test>$/);
  });

  it('has the required fields: Feedback-Type abuse, User-Agent, Version 1, Original-Mail-From, Original-Rcpt-To, Arrival-Date', async () => {
    const mail = await simpleParser(raw);
    const blocks = fieldBlocks(part(mail, 'message/feedback-report').content.toString('utf8'));
    expect(blocks).toHaveLength(1);
    const f = blocks[0] ?? new Map<string, string>();
    expect(f.get('feedback-type')).toBe('abuse');
    expect(f.get('user-agent')).toBe('mailwheel-relay-stand-in/1.0');
    expect(f.get('version')).toBe('1');
    expect(f.get('original-mail-from')).toBe(`<${VERP}>`);
    expect(f.get('original-rcpt-to')).toBe('<f7@example.test>');
    expect(new Date(f.get('arrival-date') ?? '').toISOString()).toBe(ARRIVED.toISOString());
    expect(f.get('source-ip')).toBe('127.0.0.1');
    const original = await simpleParser(part(mail, 'text/rfc822-headers').content.toString('utf8'));
    expect(original.messageId).toBe('<0123456789abcdef0123456789abcdef@example.com>');
  });

  it('a value copied from received mail cannot add a header (CR/LF flattened)', async () => {
    const hostile = buildArf({ reportingDomain: 'isp.example.test', to: VERP, originalMailFrom: VERP, originalRcptTo: 'f7@example.test\r\nBcc: victim@example.test', arrivalDate: ARRIVED, originalHeaders: ORIGINAL });
    expectCrlfOnly(hostile);
    expect(hostile).not.toMatch(/^Bcc:/m);
    const mail = await simpleParser(hostile);
    expect(mail.headers.has('bcc')).toBe(false);
  });
});

describe('helpers', () => {
  it('both builders refuse an original without a Message-ID (nothing to match the report by)', () => {
    const bare = 'From: a@example.com\r\nSubject: x\r\n\r\nbody';
    expect(() => buildDsn({ reportingMta: 'r.test', to: VERP, arrivalDate: ARRIVED, recipients: [{ address: 'a@example.test' }], originalHeaders: bare })).toThrow(/Message-ID/);
    expect(() => buildArf({ reportingDomain: 'r.test', to: VERP, originalMailFrom: VERP, originalRcptTo: 'a@example.test', arrivalDate: ARRIVED, originalHeaders: bare })).toThrow(/Message-ID/);
    expect(() => buildDsn({ reportingMta: 'r.test', to: VERP, arrivalDate: ARRIVED, recipients: [], originalHeaders: ORIGINAL })).toThrow(/at least one recipient/);
  });

  it('messageIdOf reads a folded Message-ID; headerBlockOf stops at the first empty line; rfc5322Date is +0000', () => {
    expect(messageIdOf('Subject: x\r\nMessage-ID:\r\n <a@b.test>\r\n')).toBe('<a@b.test>');
    expect(messageIdOf('Subject: x\r\n')).toBeUndefined();
    expect(headerBlockOf('A: 1\r\nB: 2\r\n\r\nbody\r\n\r\nmore')).toBe('A: 1\r\nB: 2');
    expect(rfc5322Date(new Date('2026-01-02T03:04:05Z'))).toBe('Fri, 02 Jan 2026 03:04:05 +0000');
  });
});
