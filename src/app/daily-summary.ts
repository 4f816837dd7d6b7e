/**
 * The daily summary log line: what happened since the previous summary (or the start), from the
 * components' own counters, so it costs no query. One line, `msg: "daily summary"`, for whoever
 * reads the journal or ships logs.
 *
 * Bounces and complaints: the period's hard and soft bounces and complaints, and their rates over
 * the period's `sent` (core/feedback-rates.ts: hard bounces / sent, complaints / sent; null when
 * nothing was sent). Both come from this process's counters: with several instances each line
 * rates the reports its own feedback sink applied against its own sends.
 */
import { feedbackRates, NO_FEEDBACK } from '../core/feedback-rates.js';
import type { OutcomeType } from '../core/types.js';
import type { FeedbackTally } from '../ports/feedback.js';

export interface SummaryCounters {
  /** Analytics events by type (sent, failed, retried, skipped, suppressed, invalid, missed). */
  events: ReadonlyMap<OutcomeType, number>;
  breakerOpens: number;
  slowdowns: number;
  analyticsWriteErrors: number;
  /** Bounces and complaints applied so far (monotonic); absent: no feedback side, counted as none. */
  feedback?: FeedbackTally | undefined;
}

export interface SummaryState {
  users: number;
  jobs: number;
  analyticsBuffered: number;
  nextFire: string | null;
}

export class DailySummary {
  readonly #read: () => SummaryCounters;
  #prev: { at: number; counters: SummaryCounters };

  constructor(read: () => SummaryCounters, nowMs: number) {
    this.#read = read;
    this.#prev = { at: nowMs, counters: snapshot(read()) };
  }

  /** The fields of one summary line; the period starts where the previous one ended. */
  next(nowMs: number, state: SummaryState): Record<string, unknown> {
    const cur = snapshot(this.#read());
    const prev = this.#prev.counters;
    const delta = (type: OutcomeType): number => (cur.events.get(type) ?? 0) - (prev.events.get(type) ?? 0);
    const fb = (k: keyof FeedbackTally): number => (cur.feedback ?? NO_FEEDBACK)[k] - (prev.feedback ?? NO_FEEDBACK)[k];
    const feedback = { hardBounces: fb('hardBounces'), softBounces: fb('softBounces'), complaints: fb('complaints') };
    const line = {
      from: new Date(this.#prev.at).toISOString(),
      to: new Date(nowMs).toISOString(),
      sent: delta('sent'),
      failed: delta('failed'),
      retried: delta('retried'),
      skipped: delta('skipped'),
      suppressed: delta('suppressed'),
      invalid: delta('invalid'),
      missed: delta('missed'),
      breakerOpens: cur.breakerOpens - prev.breakerOpens,
      slowdowns: cur.slowdowns - prev.slowdowns,
      analyticsWriteErrors: cur.analyticsWriteErrors - prev.analyticsWriteErrors,
      ...feedback,
      ...feedbackRates(feedback, delta('sent')),
      ...state,
    };
    this.#prev = { at: nowMs, counters: cur };
    return line;
  }
}

function snapshot(c: SummaryCounters): SummaryCounters {
  return { ...c, events: new Map(c.events), feedback: c.feedback === undefined ? undefined : { ...c.feedback } };
}
