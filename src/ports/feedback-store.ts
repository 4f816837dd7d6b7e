/**
 * The state the FeedbackSink (core/feedback.ts) keeps: one record per applied report (its unique
 * `_id` makes a repeated report change nothing), the soft bounces of each address within the
 * window, and the counts per broadcast and per UTC day that the pause threshold, `/metrics`, the
 * daily summary and `broadcast status` read. Implemented by adapters/mongo/feedback-store.ts.
 */
import type { FeedbackCounts, FeedbackKind, FeedbackSource, FeedbackTally } from './feedback.js';

export type { FeedbackCounts, FeedbackTally };

/** One applied report, as stored. `id` is `<delivery key>#<kind>`, or `<source>:<event id>` without a delivery. */
export interface FeedbackRecord {
  id: string;
  source: FeedbackSource;
  kind: FeedbackKind;
  /** Normalised (core/suppression-list.ts normaliseEmail). */
  email: string;
  key?: string | undefined;
  userId?: string | undefined;
  broadcastId?: string | undefined;
  eventId?: string | undefined;
  /** When the mail system says it happened. */
  at: Date;
  /** When mailwheel applied it. */
  appliedAt: Date;
  detail?: string | undefined;
}

export const EMPTY_TALLY: Readonly<FeedbackTally> = Object.freeze({ hardBounces: 0, softBounces: 0, complaints: 0 });

export interface FeedbackStore extends FeedbackCounts {
  /**
   * Inserts the records (one unordered insert); returns the ids that were already stored (a
   * repeated report), which the caller then leaves alone.
   */
  insert(records: readonly FeedbackRecord[]): Promise<Set<string>>;
  /** Deletes records (a report whose rules failed to apply: its retry must not be a duplicate). */
  remove(ids: readonly string[]): Promise<void>;
  /**
   * Records a soft bounce of `email` at `at` and returns how many of its soft bounces fall within
   * `windowMs` before `at`, this one included (at most `keep` are remembered).
   */
  softBounce(email: string, at: Date, windowMs: number, keep: number): Promise<number>;
  /** Adds one report of `kind` to the day's count and, when given, the broadcast's; returns the broadcast's tally after it. */
  count(kind: FeedbackKind, day: string, broadcastId?: string): Promise<FeedbackTally | undefined>;
}
