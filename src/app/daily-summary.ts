/**
 * The daily summary log line: what happened since the previous summary (or the start), from the
 * components' own counters, so it costs no query. One line, `msg: "daily summary"`, for whoever
 * reads the journal or ships logs.
 */
import type { OutcomeType } from '../core/types.js';

export interface SummaryCounters {
  /** Analytics events by type (sent, failed, retried, skipped, suppressed, invalid, missed). */
  events: ReadonlyMap<OutcomeType, number>;
  breakerOpens: number;
  slowdowns: number;
  analyticsWriteErrors: number;
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
      ...state,
    };
    this.#prev = { at: nowMs, counters: cur };
    return line;
  }
}

function snapshot(c: SummaryCounters): SummaryCounters {
  return { ...c, events: new Map(c.events) };
}
