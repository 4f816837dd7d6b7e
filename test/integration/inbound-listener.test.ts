/**
 * The inbound listener on a real socket (127.0.0.1, a free port), fed by nodemailer as a relay
 * would: DSNs to the VERP return path, ARF reports to the feedback-loop address. A recording
 * sink stands in for the lead's (it knows the digests mailwheel "sent" and ignores others as
 * unknown-message, as the real one does through the message index). Hostile input — oversized,
 * malformed MIME, a forged VERP token — is refused or dropped with a counted reason and never
 * reaches the sink; a failing sink makes the listener answer 451 so the relay retries.
 */
import { createTransport, type Transporter } from 'nodemailer';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { messageIdFor } from '../../src/core/message.js';
import { verpAddress } from '../../src/core/verp.js';
import { InboundListener } from '../../src/feedback/inbound/listener.js';
import { systemClock } from '../../src/ports/clock.js';
import type { FeedbackApplyResult, FeedbackRefusal, FeedbackReport, FeedbackSink, FeedbackSource } from '../../src/ports/feedback.js';
import { silentLogger } from '../helpers/fakes.js';
import { eximBounce, postfixBounce, yahooComplaint } from '../helpers/inbound-samples.js';

const verp = { domain: 'bounce.example.com', localPart: 'bounces', secret: 'inbound-listener-test-secret' };
const MAX_BYTES = 30_000;
const loaded = loadConfig({ env: {} });
const feedback: Config['feedback'] = {
  ...loaded.config.feedback,
  verp,
  inbound: { enabled: true, host: '127.0.0.1', port: 0, maxMessageBytes: MAX_BYTES },
};

const digestOf = (key: string): string => (/^<([0-9a-f]{32})@/.exec(messageIdFor(key, 'example.com')) as RegExpExecArray)[1] as string;
const sent = ['b:bc1:u1', 'b:bc1:u2', 'b:bc1:u3', 'b:bc1:u4'].map(digestOf);
const [d1, d2, d3, d4] = sent as [string, string, string, string];

/** Records what it is given; a report whose Message-ID digest mailwheel never sent is ignored. */
class RecordingSink implements FeedbackSink {
  readonly applied: FeedbackReport[] = [];
  calls = 0;
  failing = false;
  async apply(reports: readonly FeedbackReport[]): Promise<FeedbackApplyResult> {
    this.calls++;
    if (this.failing) throw new Error('database down');
    const ignored: FeedbackApplyResult['ignored'] = [];
    for (const r of reports) {
      const digest = /^<([^@>]+)@/.exec(r.messageId ?? '')?.[1];
      if (digest !== undefined && sent.includes(digest)) this.applied.push(r);
      else ignored.push({ report: r, reason: 'unknown-message' });
    }
    return { applied: reports.length - ignored.length, duplicates: 0, suppressed: reports.length - ignored.length, ignored };
  }
}

class RecordingRefusals {
  readonly counts = new Map<string, number>();
  refuse(source: FeedbackSource, reason: FeedbackRefusal): void {
    const k = `${source}:${reason}`;
    this.counts.set(k, (this.counts.get(k) ?? 0) + 1);
  }
}

describe('InboundListener on 127.0.0.1', () => {
  let listener: InboundListener;
  let relay: Transporter;
  let sink: RecordingSink;
  let refusals: RecordingRefusals;

  beforeAll(async () => {
    sink = new RecordingSink();
    refusals = new RecordingRefusals();
    listener = new InboundListener({ feedback, sink, refusals, clock: systemClock, log: silentLogger() });
    const port = await listener.listen();
    expect(port).toBeGreaterThan(0);
    relay = createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true, pool: false, connectionTimeout: 10_000, socketTimeout: 20_000 });
  });
  afterAll(async () => {
    relay.close();
    await listener.close();
  });
  beforeEach(() => {
    sink.applied.length = 0;
    sink.calls = 0;
    sink.failing = false;
    refusals.counts.clear();
  });

  /** Mails a raw report with the null sender (as DSNs are sent, RFC 5321 §4.5.5). */
  const deliver = (to: string, raw: string): Promise<{ response?: string }> => relay.sendMail({ envelope: { from: '', to: [to] }, raw });
  const refusedWith = async (p: Promise<unknown>): Promise<number | undefined> => {
    try {
      await p;
    } catch (err) {
      return (err as { responseCode?: number }).responseCode;
    }
    return undefined;
  };

  it('a Postfix DSN to the VERP return path becomes a hard bounce naming the verified digest', async () => {
    const returnPath = verpAddress(d1, verp);
    const info = await deliver(returnPath, postfixBounce({ returnPath, rcpt: 'dead@example.org', messageId: '<not-ours@elsewhere.example>', reportId: '<r1@relay.example.com>' }));
    expect(info.response).toMatch(/^250/);
    expect(sink.applied).toMatchObject([{ source: 'dsn', kind: 'hard-bounce', email: 'dead@example.org', messageId: `<${d1}@bounce.example.com>`, eventId: '<r1@relay.example.com>' }]);
    expect(refusals.counts.size).toBe(0);
  });

  it('a Yahoo ARF complaint to the FBL address is matched by its Original-Mail-From VERP token', async () => {
    const raw = yahooComplaint({ returnPath: verpAddress(d2, verp), rcpt: 'angry@yahoo.com', messageId: '<x@y.example>', reportId: '<c1@arf.mail.yahoo.com>' });
    await deliver('fbl@example.com', raw);
    expect(sink.applied).toMatchObject([{ source: 'arf', kind: 'complaint', email: 'angry@yahoo.com', messageId: `<${d2}@bounce.example.com>`, detail: 'abuse' }]);
  });

  it('without a VERP token the original Message-ID matches; an unknown one is ignored and counted', async () => {
    const fill = { returnPath: 'noreply@example.com', rcpt: 'gone@example.net', messageId: messageIdFor('b:bc1:u3', 'example.com'), reportId: '<E1@mx.exim.example>' };
    await deliver('noreply@example.com', eximBounce(fill));
    expect(sink.applied).toMatchObject([{ kind: 'hard-bounce', email: 'gone@example.net', messageId: `<${d3}@example.com>` }]);
    await deliver('noreply@example.com', eximBounce({ ...fill, messageId: '<someone-else@example.com>' }));
    expect(sink.applied).toHaveLength(1);
    expect(refusals.counts.get('dsn:unknown-message')).toBe(1);
    expect(listener.stats.refused['unknown-message']).toBeGreaterThanOrEqual(1);
  });

  it('a delay notice is accepted and counted not-feedback, never given to the sink', async () => {
    const returnPath = verpAddress(d4, verp);
    const info = await deliver(returnPath, eximBounce({ returnPath, rcpt: 'slow@example.net', messageId: '<m@x.example>', reportId: '<E2@mx.exim.example>' }, 'delayed', '4.4.1'));
    expect(info.response).toMatch(/^250/);
    expect(sink.calls).toBe(0);
    expect(refusals.counts.get('dsn:not-feedback')).toBe(1);
  });

  it('an oversized message is refused with 552 and counted too-large', async () => {
    const returnPath = verpAddress(d1, verp);
    const big = postfixBounce({ returnPath, rcpt: 'dead@example.org', messageId: '<m@x.example>', reportId: '<big@relay.example.com>' }) + `${'x'.repeat(998)}\r\n`.repeat(40);
    expect(await refusedWith(deliver(returnPath, big))).toBe(552);
    expect(sink.calls).toBe(0);
    expect(refusals.counts.get('dsn:too-large')).toBe(1);
  });

  it('a malformed MIME report, or one naming 60 recipients, is accepted and dropped, counted malformed', async () => {
    const returnPath = verpAddress(d1, verp);
    const broken = 'From: MAILER-DAEMON@relay.example.com\r\nContent-Type: multipart/report; report-type=delivery-status; boundary="nope"\r\n\r\n--other\r\nAction: failed\r\n';
    const info = await deliver(returnPath, broken);
    expect(info.response).toMatch(/^250/);
    expect(sink.calls).toBe(0);
    expect(refusals.counts.get('dsn:malformed')).toBe(1);
    // mailwheel sends to one recipient per message: a "DSN" listing 60 is dropped, not applied.
    const blocks = Array.from({ length: 60 }, (_, i) => `Final-Recipient: rfc822; victim${i}@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n`).join('\r\n');
    const many = postfixBounce({ returnPath, rcpt: 'dead@example.org', messageId: '<m@x.example>', reportId: '<many@relay.example.com>' }).replace(/Final-Recipient: rfc822; dead@example\.org\r\n[\s\S]*?mailbox table\r\n/, blocks);
    expect((await deliver(returnPath, many)).response).toMatch(/^250/);
    expect(sink.calls).toBe(0);
    expect(refusals.counts.get('dsn:malformed')).toBe(2);
  });

  it('a forged or cut-short VERP token is refused with 550: at RCPT TO, or after DATA when the report quotes it', async () => {
    const good = verpAddress(d1, verp);
    const forged = good.replace(/\.[a-z2-7]{10}@/, '.aaaaaaaaaa@');
    const bounce = postfixBounce({ returnPath: forged, rcpt: 'dead@example.org', messageId: '<m@x.example>', reportId: '<f1@relay.example.com>' });
    expect(await refusedWith(deliver(forged, bounce))).toBe(550);
    const tamperedDigest = good.replace(d1, d2);
    const complaint = yahooComplaint({ returnPath: tamperedDigest, rcpt: 'angry@yahoo.com', messageId: messageIdFor('b:bc1:u1', 'example.com'), reportId: '<f2@arf.mail.yahoo.com>' });
    expect(await refusedWith(deliver('fbl@example.com', complaint))).toBe(550);
    const cutShort = yahooComplaint({ returnPath: `bounces+${d1.slice(0, 20)}@bounce.example.com`, rcpt: 'angry@yahoo.com', messageId: messageIdFor('b:bc1:u1', 'example.com'), reportId: '<f3@arf.mail.yahoo.com>' });
    expect(await refusedWith(deliver('fbl@example.com', cutShort))).toBe(550);
    expect(sink.calls).toBe(0);
    expect(refusals.counts.get('dsn:bad-signature')).toBe(1);
    expect(refusals.counts.get('arf:bad-signature')).toBe(1);
    expect(refusals.counts.get('arf:malformed')).toBe(1);
  });

  it('when the sink fails the relay is told 451 to retry, and a retry later applies', async () => {
    const returnPath = verpAddress(d4, verp);
    const raw = postfixBounce({ returnPath, rcpt: 'later@example.org', messageId: '<m@x.example>', reportId: '<t1@relay.example.com>' });
    sink.failing = true;
    expect(await refusedWith(deliver(returnPath, raw))).toBe(451);
    expect(listener.stats.tempFailed).toBe(1);
    sink.failing = false;
    await deliver(returnPath, raw);
    expect(sink.applied).toMatchObject([{ email: 'later@example.org', messageId: `<${d4}@bounce.example.com>` }]);
  });
});
