/**
 * Counts of feedback inputs refused or ignored, per source and reason (webhooks, the inbound
 * listener and the sink all count here; `/metrics` exports them as
 * `mailwheel_feedback_refused_total{source,reason}`). A refusal is never an error in the log: a
 * hostile or broken sender must not be able to flood the journal, so only the count moves.
 */
import type { FeedbackRefusal, FeedbackRefusals, FeedbackSource } from '../ports/feedback.js';

export class RefusalCounter implements FeedbackRefusals {
  readonly #counts = new Map<string, { source: FeedbackSource; reason: FeedbackRefusal; n: number }>();

  refuse(source: FeedbackSource, reason: FeedbackRefusal): void {
    const k = `${source}\u0000${reason}`;
    const c = this.#counts.get(k);
    if (c) c.n++;
    else this.#counts.set(k, { source, reason, n: 1 });
  }

  /** Every (source, reason) counted so far. */
  counts(): Array<{ source: FeedbackSource; reason: FeedbackRefusal; n: number }> {
    return [...this.#counts.values()].map((c) => ({ ...c }));
  }

  /** The count of one source and reason (0 when never counted). */
  count(source: FeedbackSource, reason: FeedbackRefusal): number {
    return this.#counts.get(`${source}\u0000${reason}`)?.n ?? 0;
  }
}
