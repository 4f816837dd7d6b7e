/**
 * Delivery status notifications (RFC 3464): a multipart/report; report-type=delivery-status with
 * a message/delivery-status part: one per-message field block, then one block per recipient.
 *
 * Per recipient (RFC 3464 §2.3.3, §2.3.4):
 * - `Action: failed` is a bounce: hard unless its Status is transient (4.x.x, a relay that gave
 *   up retrying), then soft. A failed recipient without a Status (the field is required) is
 *   taken as hard: the relay says the message will not be delivered.
 * - `delayed`, `delivered`, `relayed`, `expanded`: not feedback (counted, not applied).
 * - the recipient is `Final-Recipient` (else `Original-Recipient`), `rfc822;` or `utf-8;` typed.
 * The detail is the Status and the Diagnostic-Code (`5.1.1 smtp; 550 5.1.1 user unknown`). The
 * time is the recipient's Last-Attempt-Date, else the Arrival-Date, else the report's Date.
 */
import type { FeedbackReport } from '../../ports/feedback.js';
import type { InboundMalformed, InboundReading } from './reading.js';
import { eventIdOf } from './reading.js';
import { addressIn, bracketed, dateIn, field, fieldBlocks, type FieldBlock, type ReportMessage } from './report-mime.js';

const NOT_FEEDBACK_ACTIONS = new Set(['delayed', 'delivered', 'relayed', 'expanded']);

export function readDsn(msg: ReportMessage, now: Date): InboundReading | InboundMalformed {
  if (msg.reportType !== 'delivery-status') return { source: 'dsn', malformed: `not a multipart/report; report-type=delivery-status (report-type "${msg.reportType}")` };
  if (msg.statusPart === undefined) return { source: 'dsn', malformed: 'no message/delivery-status part' };
  const blocks = fieldBlocks(msg.statusPart);
  // The per-message block comes first; a recipient block is one with Action or Final-Recipient.
  const perMessage = blocks.find((b) => !isRecipientBlock(b));
  const recipients = blocks.filter(isRecipientBlock);
  if (recipients.length === 0) return { source: 'dsn', malformed: 'no per-recipient block in the delivery status' };

  const messageId = bracketed(field(msg.original, 'message-id'));
  const arrival = dateIn(field(perMessage, 'arrival-date'));
  const failed: Array<Omit<FeedbackReport, 'eventId'>> = [];
  let notFeedback = 0;
  for (const r of recipients) {
    const action = (field(r, 'action') ?? '').toLowerCase().split(/[\s(]/)[0] ?? '';
    if (NOT_FEEDBACK_ACTIONS.has(action)) {
      notFeedback++;
      continue;
    }
    const email = addressIn(field(r, 'final-recipient')) ?? addressIn(field(r, 'original-recipient'));
    if (action !== 'failed' || email === undefined) return { source: 'dsn', malformed: `recipient block with action "${action}" and recipient "${field(r, 'final-recipient') ?? ''}"` };
    const status = /^\s*([245])\.\d{1,3}\.\d{1,3}/.exec(field(r, 'status') ?? '');
    const diagnostic = field(r, 'diagnostic-code');
    failed.push({
      source: 'dsn',
      kind: status?.[1] === '4' ? 'soft-bounce' : 'hard-bounce',
      email,
      messageId,
      at: dateIn(field(r, 'last-attempt-date')) ?? arrival ?? msg.date ?? now,
      detail: [field(r, 'status'), diagnostic].filter((s) => s !== undefined).join(' ').slice(0, 500) || undefined,
    });
  }
  const reports = failed.map((f) => ({ ...f, eventId: eventIdOf(msg.messageId, f.email, failed.length > 1) }));
  // The original's Return-Path is the envelope sender it was sent with (a VERP address of ours).
  return { source: 'dsn', reports, notFeedback, returnPath: field(msg.original, 'return-path') ?? field(perMessage, 'x-postfix-sender') };
}

function isRecipientBlock(b: FieldBlock): boolean {
  return b.has('action') || b.has('final-recipient');
}
