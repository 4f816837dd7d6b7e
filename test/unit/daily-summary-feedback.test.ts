/** The daily summary line carries the period's bounces and complaints and their rates over its sends. */
import { describe, expect, it } from 'vitest';
import { DailySummary, type SummaryCounters } from '../../src/app/daily-summary.js';
import type { OutcomeType } from '../../src/core/types.js';
import type { FeedbackTally } from '../../src/ports/feedback.js';

const STATE = { users: 1, jobs: 1, analyticsBuffered: 0, nextFire: null };

/** Counters a test moves by hand, as the components' own counters move. */
function counters(): { c: SummaryCounters; send(n: number): void; report(t: Partial<FeedbackTally>): void } {
  const events = new Map<OutcomeType, number>();
  const feedback: FeedbackTally = { hardBounces: 0, softBounces: 0, complaints: 0 };
  const c: SummaryCounters = { events, breakerOpens: 0, slowdowns: 0, analyticsWriteErrors: 0, feedback };
  return {
    c,
    send: (n) => events.set('sent', (events.get('sent') ?? 0) + n),
    report: (t) => {
      feedback.hardBounces += t.hardBounces ?? 0;
      feedback.softBounces += t.softBounces ?? 0;
      feedback.complaints += t.complaints ?? 0;
    },
  };
}

describe('daily summary: bounces and complaints', () => {
  it("gives the period's hard and soft bounces, complaints and their rates, each period on its own", () => {
    const k = counters();
    k.send(100);
    k.report({ hardBounces: 1 });
    const s = new DailySummary(() => k.c, 0);
    k.send(2_000);
    k.report({ hardBounces: 30, softBounces: 12, complaints: 4 });
    expect(s.next(86_400_000, STATE)).toMatchObject({ sent: 2_000, hardBounces: 30, softBounces: 12, complaints: 4, bounceRate: 0.015, complaintRate: 0.002 });
    k.send(500);
    k.report({ complaints: 1 });
    expect(s.next(2 * 86_400_000, STATE)).toMatchObject({ sent: 500, hardBounces: 0, softBounces: 0, complaints: 1, bounceRate: 0, complaintRate: 0.002 });
  });

  it('a period without sends has no rates (null), not a division by zero', () => {
    const k = counters();
    const s = new DailySummary(() => k.c, 0);
    k.report({ hardBounces: 2, complaints: 1 });
    const line = s.next(1_000, STATE);
    expect(line).toMatchObject({ sent: 0, hardBounces: 2, complaints: 1, bounceRate: null, complaintRate: null });
    expect(JSON.parse(JSON.stringify(line))).toMatchObject({ bounceRate: null, complaintRate: null });
  });

  it('without a feedback side it counts none', () => {
    const events = new Map<OutcomeType, number>([['sent', 10]]);
    const s = new DailySummary(() => ({ events, breakerOpens: 0, slowdowns: 0, analyticsWriteErrors: 0 }), 0);
    events.set('sent', 20);
    expect(s.next(1_000, STATE)).toMatchObject({ sent: 10, hardBounces: 0, softBounces: 0, complaints: 0, bounceRate: 0, complaintRate: 0 });
  });
});
