/**
 * Abuse reports in the Abuse Reporting Format (RFC 5965): a multipart/report;
 * report-type=feedback-report whose message/feedback-report part is one field block.
 *
 * - `Feedback-Type: abuse | fraud | other` is a complaint; any other type (not-spam, virus,
 *   auth-failure, …) is not feedback: counted, not applied (a not-spam report must never
 *   suppress anyone).
 * - the complainer is each `Original-Rcpt-To`, else the original message's To address. A report
 *   that names nobody (recipients redacted, RFC 6590) is malformed here: a complaint is applied
 *   to an address the report names, never guessed.
 * - `Original-Mail-From` is the original envelope sender: mailwheel's VERP address, which names
 *   the delivery (verified by the listener); else the original's Return-Path.
 * - the time is `Arrival-Date` (or the older `Received-Date`), else the report's Date.
 */
import type { FeedbackReport } from '../../ports/feedback.js';
import type { InboundMalformed, InboundReading } from './reading.js';
import { eventIdOf } from './reading.js';
import { addressIn, bracketed, dateIn, field, fieldBlocks, type ReportMessage } from './report-mime.js';

const COMPLAINT_TYPES = new Set(['abuse', 'fraud', 'other']);

export function readArf(msg: ReportMessage, now: Date): InboundReading | InboundMalformed {
  if (msg.reportType !== 'feedback-report') return { source: 'arf', malformed: `not a multipart/report; report-type=feedback-report (report-type "${msg.reportType}")` };
  if (msg.statusPart === undefined) return { source: 'arf', malformed: 'no message/feedback-report part' };
  const [fields] = fieldBlocks(msg.statusPart);
  const type = field(fields, 'feedback-type')?.toLowerCase();
  if (fields === undefined || type === undefined) return { source: 'arf', malformed: 'no Feedback-Type in the feedback report' };
  const returnPath = field(fields, 'original-mail-from') ?? field(msg.original, 'return-path');
  if (!COMPLAINT_TYPES.has(type)) return { source: 'arf', reports: [], notFeedback: 1, returnPath };

  const named = (fields.get('original-rcpt-to') ?? []).map(addressIn);
  const fromOriginal = (msg.original?.get('to') ?? []).flatMap((v) => v.split(',')).map(addressIn);
  const emails = [...new Set((named.length > 0 ? named : fromOriginal).filter((e): e is string => e !== undefined))];
  if (emails.length === 0) return { source: 'arf', malformed: 'the feedback report names no recipient (Original-Rcpt-To or the original To)' };
  const messageId = bracketed(field(msg.original, 'message-id'));
  const at = dateIn(field(fields, 'arrival-date')) ?? dateIn(field(fields, 'received-date')) ?? msg.date ?? now;
  const reports: FeedbackReport[] = emails.map((email) => ({
    source: 'arf',
    kind: 'complaint',
    email,
    messageId,
    eventId: eventIdOf(msg.messageId, email, emails.length > 1),
    at,
    detail: type,
  }));
  return { source: 'arf', reports, notFeedback: 0, returnPath };
}
