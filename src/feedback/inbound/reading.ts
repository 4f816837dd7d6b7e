/**
 * What the DSN and ARF readers make of one inbound message, before it is matched to a delivery
 * (listener.ts): the reports it carries, how many of its entries are not bounces or complaints,
 * and the original envelope sender when the report names it (a VERP address to verify).
 */
import type { FeedbackReport } from '../../ports/feedback.js';

export interface InboundReading {
  source: 'dsn' | 'arf';
  /** Bounces or complaints; `messageId` is the original's Message-ID when the report carries it. */
  reports: FeedbackReport[];
  /** Entries that are well-formed but not feedback (a delayed or delivered DSN, a not-spam report). */
  notFeedback: number;
  /** The original message's envelope sender as the report gives it (ARF Original-Mail-From, the original's Return-Path). */
  returnPath: string | undefined;
}

/** A message that is not a readable report of its kind: counted `malformed`, never applied. */
export interface InboundMalformed {
  source: 'dsn' | 'arf';
  malformed: string;
}

/**
 * The event id of one report: the report's own Message-ID, plus the recipient when a DSN lists
 * several (each recipient's bounce is its own event; the same DSN mailed again is a replay).
 */
export function eventIdOf(reportMessageId: string | undefined, email: string, several: boolean): string | undefined {
  if (reportMessageId === undefined) return undefined;
  return several ? `${reportMessageId} ${email.toLowerCase()}` : reportMessageId;
}
