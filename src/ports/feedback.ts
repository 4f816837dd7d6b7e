/**
 * Hearing back from the mail system (docs/ARCHITECTURE.md "Bounces and complaints"). Every source
 * of feedback (a provider webhook, a DSN or an ARF report at the inbound listener) authenticates
 * and parses its input into FeedbackReports; one FeedbackSink applies them (core/feedback.ts):
 * suppression, events, broadcast rates and the pause threshold. A source never suppresses anyone
 * itself, and a report it cannot authenticate or parse never reaches the sink: it is refused
 * with a counted reason (FeedbackRefusal).
 */

/** What the report says happened to the message. */
export type FeedbackKind = 'hard-bounce' | 'soft-bounce' | 'complaint';

/** Where the report came from. */
export type FeedbackSource = 'ses' | 'sendgrid' | 'mailgun' | 'postmark' | 'dsn' | 'arf';

export const FEEDBACK_SOURCES: readonly FeedbackSource[] = ['ses', 'sendgrid', 'mailgun', 'postmark', 'dsn', 'arf'];

/** One recipient's bounce or complaint, authenticated and parsed by its source. */
export interface FeedbackReport {
  source: FeedbackSource;
  kind: FeedbackKind;
  /** The recipient the report is about (as the report gives it; the sink normalises it). */
  email: string;
  /**
   * The delivery, when the report names it in a way mailwheel signed (a verified VERP token).
   * Otherwise the sink looks it up by `messageId` (the message index).
   */
  deliveryKey?: string | undefined;
  /** The original message's Message-ID, with its angle brackets, when the report carries it. */
  messageId?: string | undefined;
  /**
   * The source's own id of this notification (SNS MessageId, SendGrid sg_event_id, Mailgun event
   * id, Postmark ID, the report's Message-ID): a replay of the same notification changes nothing.
   */
  eventId?: string | undefined;
  /** When the mail system says it happened. */
  at: Date;
  /** The status and diagnostic (`5.1.1 user unknown`) or the feedback type (`abuse`), for the operator. */
  detail?: string | undefined;
}

/** Why an input was refused or ignored before (or by) the sink, counted per source in `/metrics`. */
export type FeedbackRefusal =
  | 'unauthenticated' // no or wrong credentials (Postmark basic auth)
  | 'bad-signature'
  | 'stale' // a signed timestamp outside feedback.webhooks.maxAgeSeconds
  | 'replayed' // the same notification (same event id) seen before
  | 'too-large'
  | 'malformed' // not the provider's format, or a MIME report that does not parse
  | 'bad-certificate' // SNS: certificate URL off the host pattern, or not the signer
  | 'unknown-topic' // SNS: a topic not in feedback.webhooks.ses.topicArns
  | 'unknown-message' // a DSN/ARF report matched to no delivery mailwheel sent
  | 'not-feedback'; // a well-formed event that is not a bounce or complaint (delivered, opened)

/** What the sink did with a batch of reports. */
export interface FeedbackApplyResult {
  /** Reports that changed something (an event recorded; maybe a suppression). */
  applied: number;
  /** The same report again (same delivery and kind, or same event id): nothing changed. */
  duplicates: number;
  /** Addresses this batch put on the suppression list. */
  suppressed: number;
  /** Reports the sink would not apply, and why (an inbound report for an unknown message). */
  ignored: Array<{ report: FeedbackReport; reason: FeedbackRefusal }>;
}

export interface FeedbackSink {
  apply(reports: readonly FeedbackReport[]): Promise<FeedbackApplyResult>;
}

/** Counts refusals per source and reason (the sources call it; `/metrics` reads it). */
export interface FeedbackRefusals {
  refuse(source: FeedbackSource, reason: FeedbackRefusal): void;
}

/**
 * What mailwheel remembers of each message it sent, so a report that carries only the original
 * Message-ID (or a VERP token, which carries its digest) finds its delivery. `digest` is the
 * Message-ID's local part (core/message.ts `messageIdFor`: the first 32 hex of SHA-256 of the key).
 */
export interface SentMessage {
  digest: string;
  key: string;
  email: string;
  userId: string;
  broadcastId?: string | undefined;
  at: Date;
}

export interface MessageIndex {
  /** Records sent messages (one unordered insert; a repeat of a digest is ignored). */
  record(messages: readonly SentMessage[]): Promise<void>;
  /** The messages for these digests (unknown ones are absent). */
  find(digests: readonly string[]): Promise<Map<string, SentMessage>>;
}

/**
 * Remembers notifications already accepted, so a replayed one (the same signed body sent again)
 * is refused rather than applied twice. `firstSeen` inserts `<source>:<id>` under a unique key:
 * true the first time, false for a replay, across every instance.
 */
export interface ReplayGuard {
  firstSeen(source: FeedbackSource, id: string): Promise<boolean>;
}

/** Feedback counted for one broadcast or one UTC day (what the sink applied: duplicates do not count). */
export interface FeedbackTally {
  hardBounces: number;
  softBounces: number;
  complaints: number;
}

/**
 * The feedback the sink counted, per broadcast and per UTC day, across every instance (stored as
 * `<prefix>feedback_counts`: `_id` `b:<broadcast id>` and `d:<YYYY-MM-DD>`). Read by `/metrics`,
 * the daily rates and `broadcast status`; an unknown broadcast or day reads as all zeros.
 */
export interface FeedbackCounts {
  forBroadcast(id: string): Promise<FeedbackTally>;
  /** @param day a UTC day, `YYYY-MM-DD` */
  forDay(day: string): Promise<FeedbackTally>;
}
