/**
 * ARF reader (RFC 5965) on abuse reports as feedback loops write them
 * (test/helpers/inbound-samples.ts): complaints, the complainer, the original Message-ID and
 * envelope sender, and what is not a complaint.
 */
import { describe, expect, it } from 'vitest';
import { readInbound } from '../../src/feedback/inbound/listener.js';
import type { InboundReading } from '../../src/feedback/inbound/reading.js';
import { RFC5965_EXTENDED, RFC5965_SIMPLE, yahooComplaint } from '../helpers/inbound-samples.js';

const now = new Date('2026-12-03T12:00:00Z');
const fill = {
  returnPath: 'bounces+0123456789abcdef0123456789abcdef.abcdefghij@bounce.example.com',
  rcpt: 'angry@yahoo.com',
  messageId: '<0123456789abcdef0123456789abcdef@example.com>',
  reportId: '<1764760000.abcdef@arf.mail.yahoo.com>',
};

async function read(raw: string): Promise<InboundReading> {
  const r = await readInbound(Buffer.from(raw), now);
  if ('malformed' in r) throw new Error(`unexpectedly malformed: ${r.malformed}`);
  return r;
}

describe('readArf', () => {
  it('RFC 5965 extended example: a complaint by the Original-Rcpt-To, original Message-ID bracketed, at the Arrival-Date', async () => {
    const r = await read(RFC5965_EXTENDED);
    expect(r.source).toBe('arf');
    expect(r.reports).toEqual([
      {
        source: 'arf',
        kind: 'complaint',
        email: 'user@example.com',
        messageId: '<8787KJKJ3K4J3K4J3K4J3.mail@example.net>',
        eventId: '<433689.81121.example@mta.mail.receiver.example>',
        at: new Date('2005-03-08T18:00:00Z'),
        detail: 'abuse',
      },
    ]);
    expect(r.returnPath).toBe('<somespammer@example.net>');
  });

  it('RFC 5965 simple example: it names no recipient (undisclosed), so it is malformed, not guessed', async () => {
    const r = await readInbound(Buffer.from(RFC5965_SIMPLE), now);
    expect(r).toMatchObject({ source: 'arf', malformed: expect.stringMatching(/names no recipient/) });
  });

  it('Yahoo feedback loop: version 0.1 with Received-Date, Original-Mail-From the VERP address', async () => {
    const r = await read(yahooComplaint(fill));
    expect(r.reports).toEqual([
      { source: 'arf', kind: 'complaint', email: 'angry@yahoo.com', messageId: fill.messageId, eventId: fill.reportId, at: new Date('2026-12-03T10:58:12Z'), detail: 'abuse' },
    ]);
    expect(r.returnPath).toBe(`<${fill.returnPath}>`);
  });

  it('fraud and other are complaints; not-spam, virus and auth-failure are not feedback', async () => {
    for (const t of ['fraud', 'other', 'Abuse']) expect((await read(yahooComplaint({ ...fill, feedbackType: t }))).reports.map((x) => x.kind)).toEqual(['complaint']);
    for (const t of ['not-spam', 'virus', 'auth-failure']) {
      const r = await read(yahooComplaint({ ...fill, feedbackType: t }));
      expect(r.reports).toEqual([]);
      expect(r.notFeedback).toBe(1);
    }
  });

  it('falls back to the original To when Original-Rcpt-To is absent', async () => {
    const r = await read(yahooComplaint(fill).replace(/Original-Rcpt-To: .*\r\n/, ''));
    expect(r.reports.map((x) => x.email)).toEqual(['angry@yahoo.com']);
  });

  it('a feedback report without Feedback-Type or without its feedback-report part is malformed', async () => {
    const noType = yahooComplaint(fill).replace(/Feedback-Type: .*\r\n/, '');
    expect(await readInbound(Buffer.from(noType), now)).toMatchObject({ source: 'arf', malformed: expect.stringMatching(/no Feedback-Type/) });
    const noPart = yahooComplaint(fill).replace('Content-Type: message/feedback-report', 'Content-Type: text/plain');
    expect(await readInbound(Buffer.from(noPart), now)).toMatchObject({ source: 'arf', malformed: expect.stringMatching(/no message\/feedback-report part/) });
  });
});
