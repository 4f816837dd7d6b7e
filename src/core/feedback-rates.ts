/**
 * Bounce and complaint rates, one definition for `/metrics`, the daily summary and `broadcast
 * status`. A rate is reports over messages sent; with nothing sent there is no rate (null), not a
 * division by zero: a report can arrive for a broadcast whose counters were not published yet.
 *
 * The bounce rate counts hard bounces only, as the providers judge a sender (Amazon SES's bounce
 * rate, Gmail's and Yahoo's sender rules): a soft bounce is a temporary refusal that a later
 * message may get past. Soft bounces are shown next to it, counted, not rated.
 */
import type { FeedbackTally } from '../ports/feedback.js';

export interface FeedbackRates {
  /** Hard bounces / sent; null when nothing was sent. */
  bounceRate: number | null;
  /** Complaints / sent; null when nothing was sent. */
  complaintRate: number | null;
}

export const NO_FEEDBACK: Readonly<FeedbackTally> = Object.freeze({ hardBounces: 0, softBounces: 0, complaints: 0 });

/** `n / sent`, or null when `sent` is not a positive count. */
export function rateOf(n: number, sent: number): number | null {
  return sent > 0 && Number.isFinite(sent) ? n / sent : null;
}

export function feedbackRates(t: FeedbackTally, sent: number): FeedbackRates {
  return { bounceRate: rateOf(t.hardBounces, sent), complaintRate: rateOf(t.complaints, sent) };
}

/** The UTC day of an instant, `YYYY-MM-DD` (the key of the per-day feedback counts). */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** Start of the UTC day of an instant (epoch ms). */
export function utcDayStart(ms: number): number {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
}
