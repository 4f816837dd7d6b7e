/**
 * Raw feedback mail as a relay or a mailbox provider writes it, for the relay stand-in and for
 * tests of the inbound listener:
 * - delivery status notifications (RFC 3464): `multipart/report; report-type=delivery-status`
 *   with a human-readable part, a `message/delivery-status` part (per-message fields, then one
 *   block of fields per recipient) and the original's header block as `text/rfc822-headers`;
 * - abuse reports in the Abuse Reporting Format (RFC 5965): `multipart/report;
 *   report-type=feedback-report` with a human-readable part, a `message/feedback-report` part and
 *   the original's headers.
 * Everything is 7-bit with CRLF line ends, as it goes over SMTP. Field values are flattened to one
 * line (no CR/LF survives into a header), because they are copied from mail the stand-in received.
 */
import { randomBytes } from 'node:crypto';

const CRLF = '\r\n';

/** One recipient of a DSN (RFC 3464 §2.3). */
export interface DsnRecipient {
  /** The address the relay gave up on (Final-Recipient). */
  address: string;
  /** Action field; default 'failed' (a hard bounce). 'delayed' with a 4.x.x status is a soft one. */
  action?: 'failed' | 'delayed' | 'delivered' | 'relayed' | 'expanded';
  /** Enhanced status code (RFC 3463); default '5.1.1' (bad destination mailbox). */
  status?: string;
  /** Diagnostic-Code text, the SMTP reply without its type (written as `smtp; <text>`); default the 550 reply of a mailbox that does not exist. */
  diagnostic?: string;
  /** Remote-MTA (the server that refused it), if any. */
  remoteMta?: string;
}

export interface DsnInput {
  /** The relay that writes the report (Reporting-MTA, From: MAILER-DAEMON@ it, the Message-ID domain). */
  reportingMta: string;
  /** The report's header To: the original's return path (the VERP address). */
  to: string;
  /** When the relay received the original (Arrival-Date). */
  arrivalDate: Date;
  recipients: DsnRecipient[];
  /** The original's header block (as received; any line ends). Must carry its Message-ID. */
  originalHeaders: string;
  /** ENVID of the original's MAIL FROM, if it had one (Original-Envelope-Id). */
  envelopeId?: string;
  /** Date of the report; default now. */
  date?: Date;
}

export interface ArfInput {
  /** The provider or relay that writes the report (From: its abuse desk, the Message-ID domain). */
  reportingDomain: string;
  /** The report's header To (where the provider sends its feedback loop). */
  to: string;
  /** Feedback-Type; default 'abuse' (the user pressed "this is spam"). */
  feedbackType?: 'abuse' | 'fraud' | 'not-spam' | 'virus' | 'other';
  /** User-Agent field; default 'mailwheel-relay-stand-in/1.0'. */
  userAgent?: string;
  /** The original's envelope sender (Original-Mail-From): the VERP address. */
  originalMailFrom: string;
  /** The original's envelope recipient (Original-Rcpt-To): the complaining address. */
  originalRcptTo: string;
  /** When the original arrived (Arrival-Date). */
  arrivalDate: Date;
  /** The original's header block (as received; any line ends). Must carry its Message-ID. */
  originalHeaders: string;
  /** Source-IP of the original, if known. */
  sourceIp?: string;
  /** Date of the report; default now. */
  date?: Date;
}

/** An RFC 3464 delivery status notification, CRLF line ends, ready for SMTP DATA. */
export function buildDsn(input: DsnInput): string {
  if (input.recipients.length === 0) throw new Error('buildDsn: a DSN names at least one recipient');
  const mta = oneLine(input.reportingMta);
  const boundary = newBoundary();
  const failed = input.recipients.map((r) => oneLine(r.address)).join(', ');
  const perMessage = [
    `Reporting-MTA: dns; ${mta}`,
    ...(input.envelopeId === undefined ? [] : [`Original-Envelope-Id: ${oneLine(input.envelopeId)}`]),
    `Arrival-Date: ${rfc5322Date(input.arrivalDate)}`,
  ];
  const perRecipient = input.recipients.map((r) => {
    const address = oneLine(r.address);
    const status = r.status ?? '5.1.1';
    return [
      `Original-Recipient: rfc822; ${address}`,
      `Final-Recipient: rfc822; ${address}`,
      `Action: ${r.action ?? 'failed'}`,
      `Status: ${status}`,
      ...(r.remoteMta === undefined ? [] : [`Remote-MTA: dns; ${oneLine(r.remoteMta)}`]),
      `Diagnostic-Code: smtp; ${oneLine(r.diagnostic ?? `550 ${status} <${address}>: Recipient address rejected: User unknown`)}`,
      `Last-Attempt-Date: ${rfc5322Date(input.date ?? new Date())}`,
    ];
  });
  // RFC 3464 §2.1: the per-message block, then each per-recipient block, separated by empty lines.
  const status = [perMessage, ...perRecipient].map((block) => block.join(CRLF)).join(CRLF + CRLF);
  return multipartReport({
    reportType: 'delivery-status',
    boundary,
    headers: [
      `From: Mail Delivery System <MAILER-DAEMON@${mta}>`,
      `To: <${oneLine(input.to)}>`,
      `Subject: Undelivered Mail Returned to Sender`,
      `Auto-Submitted: auto-replied`,
    ],
    idDomain: mta,
    date: input.date,
    human: [
      `This is the mail system at host ${mta}.`,
      '',
      `I'm sorry to have to inform you that your message could not be delivered to one or more`,
      `recipients: ${failed}.`,
    ],
    reportPart: { contentType: 'message/delivery-status', body: status },
    originalHeaders: input.originalHeaders,
  });
}

/** An RFC 5965 abuse report (ARF), CRLF line ends, ready for SMTP DATA. */
export function buildArf(input: ArfInput): string {
  const domain = oneLine(input.reportingDomain);
  const boundary = newBoundary();
  const report = [
    `Feedback-Type: ${input.feedbackType ?? 'abuse'}`,
    `User-Agent: ${oneLine(input.userAgent ?? 'mailwheel-relay-stand-in/1.0')}`,
    'Version: 1',
    `Original-Mail-From: <${oneLine(input.originalMailFrom)}>`,
    `Original-Rcpt-To: <${oneLine(input.originalRcptTo)}>`,
    `Arrival-Date: ${rfc5322Date(input.arrivalDate)}`,
    `Reporting-MTA: dns; ${domain}`,
    ...(input.sourceIp === undefined ? [] : [`Source-IP: ${oneLine(input.sourceIp)}`]),
  ].join(CRLF);
  return multipartReport({
    reportType: 'feedback-report',
    boundary,
    headers: [`From: Abuse Desk <abuse@${domain}>`, `To: <${oneLine(input.to)}>`, `Subject: Abuse report: complaint about a message to ${oneLine(input.originalRcptTo)}`],
    idDomain: domain,
    date: input.date,
    human: [`This is an email abuse report for an email message received from a recipient of ${domain}.`, 'The recipient marked it as spam.'],
    reportPart: { contentType: 'message/feedback-report', body: report },
    originalHeaders: input.originalHeaders,
  });
}

/** The Message-ID of a header block (with its angle brackets), or undefined. */
export function messageIdOf(headerBlock: string): string | undefined {
  const match = /^message-id:[ \t]*(.*(?:\r?\n[ \t].*)*)/im.exec(headerBlock);
  const value = match?.[1]?.replace(/\r?\n[ \t]+/g, ' ').trim();
  return value === undefined || value === '' ? undefined : value;
}

/** The header block of a raw message (up to the first empty line), without that empty line. */
export function headerBlockOf(raw: string): string {
  const end = raw.search(/\r?\n\r?\n/);
  return end < 0 ? raw : raw.slice(0, end);
}

/** RFC 5322 date-time in UTC: `Thu, 03 Dec 2026 12:00:00 +0000`. */
export function rfc5322Date(d: Date): string {
  return d.toUTCString().replace(/GMT$/, '+0000');
}

interface ReportParts {
  reportType: 'delivery-status' | 'feedback-report';
  boundary: string;
  headers: string[];
  idDomain: string;
  date: Date | undefined;
  human: string[];
  reportPart: { contentType: string; body: string };
  originalHeaders: string;
}

function multipartReport(p: ReportParts): string {
  const original = toCrlf(headerBlockOf(p.originalHeaders)).replace(/(\r\n)+$/, '');
  if (messageIdOf(original) === undefined) throw new Error('report-mail: the original headers carry no Message-ID');
  const lines = [
    ...p.headers,
    `Date: ${rfc5322Date(p.date ?? new Date())}`,
    `Message-ID: <${randomBytes(12).toString('hex')}@${p.idDomain}>`,
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=${p.reportType};${CRLF}\tboundary="${p.boundary}"`,
    '',
    'This is a MIME-encapsulated message.',
    '',
    `--${p.boundary}`,
    'Content-Type: text/plain; charset=us-ascii',
    'Content-Transfer-Encoding: 7bit',
    '',
    ...p.human,
    '',
    `--${p.boundary}`,
    `Content-Type: ${p.reportPart.contentType}`,
    'Content-Transfer-Encoding: 7bit',
    '',
    p.reportPart.body,
    '',
    `--${p.boundary}`,
    'Content-Type: text/rfc822-headers',
    'Content-Transfer-Encoding: 7bit',
    '',
    original,
    '',
    `--${p.boundary}--`,
    '',
  ];
  return lines.join(CRLF);
}

function newBoundary(): string {
  return `=_report_${randomBytes(12).toString('hex')}`;
}

function toCrlf(text: string): string {
  return text.replace(/\r?\n/g, CRLF);
}

/** Flattens a value copied from received mail to one line: no CR/LF reaches a header. */
function oneLine(value: string): string {
  return value.replace(/[\r\n]+[ \t]*/g, ' ').trim();
}
