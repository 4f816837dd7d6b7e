/**
 * DSN reader (RFC 3464) on delivery status notifications as MTAs write them
 * (test/helpers/inbound-samples.ts): which recipients bounced, hard or soft, the original
 * Message-ID, the detail, the time, and what is not a bounce or not a DSN at all.
 */
import { describe, expect, it } from 'vitest';
import { readInbound } from '../../src/feedback/inbound/listener.js';
import type { InboundMalformed, InboundReading } from '../../src/feedback/inbound/reading.js';
import { eximBounce, exchangeBounce, postfixBounce, RFC3464_MULTI, RFC3464_SIMPLE } from '../helpers/inbound-samples.js';

const now = new Date('2026-12-03T12:00:00Z');
const fill = {
  returnPath: 'bounces+0123456789abcdef0123456789abcdef.abcdefghij@bounce.example.com',
  rcpt: 'dead@example.org',
  messageId: '<0123456789abcdef0123456789abcdef@example.com>',
  reportId: '<20261203100211.3F1A2201B4@relay.example.com>',
};

async function read(raw: string): Promise<InboundReading> {
  const r = await readInbound(Buffer.from(raw), now);
  if ('malformed' in r) throw new Error(`unexpectedly malformed: ${r.malformed}`);
  return r;
}
async function malformed(raw: string | Buffer): Promise<InboundMalformed> {
  const r = await readInbound(Buffer.isBuffer(raw) ? raw : Buffer.from(raw), now);
  if (!('malformed' in r)) throw new Error(`read as ${JSON.stringify(r)}`);
  return r;
}

describe('readDsn on RFC 3464 examples', () => {
  it('simple DSN: Action failed with Status 4.0.0 is a soft bounce, at the Last-Attempt-Date', async () => {
    const r = await read(RFC3464_SIMPLE);
    expect(r.source).toBe('dsn');
    expect(r.notFeedback).toBe(0);
    expect(r.reports).toEqual([
      {
        source: 'dsn',
        kind: 'soft-bounce',
        email: 'louisl@larry.slip.umd.edu',
        messageId: undefined, // the example's original is a placeholder without headers
        eventId: '<199407072116.RAA14128@CS.UTK.EDU>',
        at: new Date('1994-07-07T21:15:49Z'),
        detail: '4.0.0 smtp; 426 connection timed out',
      },
    ]);
  });

  it('multi-recipient DSN: two hard bounces (folded diagnostic unfolded), the delayed one not feedback', async () => {
    const r = await read(RFC3464_MULTI);
    expect(r.notFeedback).toBe(1);
    expect(r.reports.map((x) => [x.kind, x.email])).toEqual([
      ['hard-bounce', 'arathib@vnet.ibm.com'],
      ['hard-bounce', 'wsnell@sdcc13.ucsd.edu'],
    ]);
    expect(r.reports[0]?.detail).toBe("5.0.0 (permanent failure) smtp; 550 'arathib@vnet.IBM.COM' is not a registered gateway user");
    // No Message-ID on the report, no Arrival-Date or Last-Attempt-Date: the report's Date.
    expect(r.reports.every((x) => x.eventId === undefined)).toBe(true);
    expect(r.reports[1]?.at).toEqual(new Date('1994-07-08T13:21:47Z'));
  });
});

describe('readDsn on MTA shapes', () => {
  it('Postfix: hard bounce with the original Message-ID from text/rfc822-headers and the return path', async () => {
    const r = await read(postfixBounce(fill));
    expect(r.reports).toEqual([
      {
        source: 'dsn',
        kind: 'hard-bounce',
        email: 'dead@example.org',
        messageId: fill.messageId,
        eventId: fill.reportId,
        at: new Date('2026-12-03T10:02:09Z'),
        detail: '5.1.1 smtp; 550 5.1.1 <dead@example.org>: Recipient address rejected: User unknown in virtual mailbox table',
      },
    ]);
    expect(r.returnPath).toBe(`<${fill.returnPath}>`);
  });

  it('Exim: the whole original returned as message/rfc822; a delay warning is not feedback', async () => {
    const f = { ...fill, rcpt: 'gone@example.net', reportId: '<E1tAbCd-000123-4E@mx.exim.example>' };
    const r = await read(eximBounce(f));
    expect(r.reports.map((x) => [x.kind, x.email, x.messageId, x.eventId])).toEqual([['hard-bounce', 'gone@example.net', fill.messageId, f.reportId]]);
    expect(r.reports[0]?.at).toEqual(new Date('2026-12-03T10:05:00Z'));
    const delayed = await read(eximBounce(f, 'delayed', '4.4.1'));
    expect(delayed.reports).toEqual([]);
    expect(delayed.notFeedback).toBe(1);
    const transient = await read(eximBounce(f, 'failed', '4.4.7'));
    expect(transient.reports.map((x) => x.kind)).toEqual(['soft-bounce']);
  });

  it('Exchange Online: a base64-encoded delivery status with a three-digit status detail', async () => {
    const r = await read(exchangeBounce({ ...fill, rcpt: 'Nobody@Contoso.com' }));
    expect(r.reports.map((x) => [x.kind, x.email, x.messageId])).toEqual([['hard-bounce', 'Nobody@Contoso.com', fill.messageId]]);
    expect(r.reports[0]?.detail).toMatch(/^5\.1\.10 smtp;550 5\.1\.10 RESOLVER\.ADR\.RecipientNotFound/);
  });
});

describe('readDsn refuses what is not a readable DSN', () => {
  it('a plain message, garbage bytes, an empty message', async () => {
    expect((await malformed('From: a@b.example\r\nSubject: hi\r\n\r\nYour mail bounced, sorry.\r\n')).malformed).toMatch(/not a multipart\/report/);
    expect((await malformed(Buffer.from([0, 1, 2, 255, 254, 10, 13, 0]))).source).toBe('dsn');
    expect((await malformed('')).source).toBe('dsn');
  });

  it('a report without its delivery-status part, or without a recipient block', async () => {
    const noStatus = postfixBounce(fill).replace('Content-Type: message/delivery-status', 'Content-Type: text/plain');
    expect((await malformed(noStatus)).malformed).toMatch(/no message\/delivery-status part/);
    const noRecipient = RFC3464_SIMPLE.replace(/Original-Recipient[\s\S]*?-0400\r\n/, '');
    expect((await malformed(noRecipient)).malformed).toMatch(/no per-recipient block/);
  });

  it('a failed recipient that is not an email address (x400 typed)', async () => {
    const x400 = postfixBounce(fill).replace(/Final-Recipient: rfc822; dead@example.org\r\nOriginal-Recipient: rfc822;dead@example.org/, 'Final-Recipient: x400; /C=US/O=Example/');
    expect((await malformed(x400)).malformed).toMatch(/recipient block/);
  });
});
