/** Domain types shared by the core and the adapters. No I/O here. */
import type { TemplateSet } from './template-set.js';

/** A validated user, reduced to what scheduling and rendering need. */
export interface UserRecord {
  id: string;
  email: string;
  name: string | undefined;
  /** IANA zone name; UTC when the document has none. */
  timezone: string;
  /** Local times of day, `HH:MM`, deduplicated and sorted. */
  times: string[];
  /** Local weekdays allowed (0 = Sunday); undefined means every day. */
  days: number[] | undefined;
}

export type DeliveryKind = 'scheduled' | 'broadcast';

/** One message to one user, identified by its delivery key (see docs/ARCHITECTURE.md "Claims"). */
export interface Delivery {
  key: string;
  kind: DeliveryKind;
  userId: string;
  email: string;
  name: string | undefined;
  /** Scheduled mail: the slot (`HH:MM`) and the user's local date (`YYYY-MM-DD`). */
  slot?: string;
  localDate?: string;
  timezone?: string;
  /** Broadcast mail: the broadcast id. */
  broadcastId?: string;
  /**
   * Broadcast mail: the broadcast's compiled subject/text/html, which the transport renders. One
   * object shared by every delivery of a run (set when the run builds a batch), so the content
   * travels with the deliveries instead of through a registry beside the send path. Absent for
   * scheduled mail, which uses the scheduled templates of the config.
   */
  content?: TemplateSet;
  /** The instant this delivery was due (ms since epoch). */
  dueAt: number;
}

/**
 * `bounced` and `complained`: a report that arrived after the send (a DSN, an ARF report, a
 * provider webhook; core/feedback.ts), tied to the delivery key when it was found; `reason` names
 * the report's kind, source and detail.
 */
export type OutcomeType = 'sent' | 'failed' | 'retried' | 'skipped' | 'suppressed' | 'invalid' | 'missed' | 'bounced' | 'complained';

/** One analytics event; written in batches to the events collection. */
export interface OutcomeEvent {
  type: OutcomeType;
  at: Date;
  key?: string;
  kind?: DeliveryKind;
  userId?: string;
  /** Why: invalid-user reason, skip reason, SMTP error text. */
  reason?: string;
  smtpCode?: number;
  attempt?: number;
  /** Backoff delay before the next attempt, for `retried`. */
  delayMs?: number;
  latencyMs?: number;
}
