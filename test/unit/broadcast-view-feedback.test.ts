/**
 * `broadcast status` and `broadcast list` with bounces and complaints: the rate arithmetic (hard
 * bounces / sent, complaints / sent, none rather than a division by zero while nothing was sent)
 * and how the view shows it, and the reason an automatic pause gives.
 */
import { describe, expect, it } from 'vitest';
import { feedbackRates, rateOf, utcDay, utcDayStart } from '../../src/core/feedback-rates.js';
import { feedbackView, listTable, rateText, statusBlock, statusWord } from '../../src/cli/broadcast-view.js';
import type { BroadcastDoc } from '../../src/ports/broadcasts.js';

function doc(over: Partial<BroadcastDoc> = {}): BroadcastDoc {
  const at = new Date('2026-03-08T09:00:00Z');
  return {
    _id: '20260308-090000-abcdef',
    subject: 'News',
    text: 'x',
    segment: '{}',
    status: 'running',
    createdAt: at,
    counters: { total: 2_000, sent: 1_000, failed: 0, skipped: 0, suppressed: 0 },
    gen: 1,
    updatedAt: at,
    ...over,
  };
}

const REASON = 'complaint rate 0.60 % >= 0.30 % (6 complaints / 1,000 sent)';

describe('feedback rates', () => {
  it('are hard bounces and complaints over sent; soft bounces are not rated', () => {
    expect(feedbackRates({ hardBounces: 30, softBounces: 70, complaints: 5 }, 1_000)).toEqual({ bounceRate: 0.03, complaintRate: 0.005 });
  });

  it('are none (null), not Infinity or NaN, when nothing was sent', () => {
    expect(feedbackRates({ hardBounces: 3, softBounces: 0, complaints: 1 }, 0)).toEqual({ bounceRate: null, complaintRate: null });
    expect(rateOf(0, 0)).toBeNull();
    expect(rateOf(0, 10)).toBe(0);
  });

  it('the UTC day and its start', () => {
    const ms = Date.parse('2026-03-08T23:59:59.999Z');
    expect(utcDay(ms)).toBe('2026-03-08');
    expect(utcDayStart(ms)).toBe(Date.parse('2026-03-08T00:00:00Z'));
    expect(utcDay(ms + 1)).toBe('2026-03-09');
  });
});

describe('the broadcast view', () => {
  it('shows a rate as a percentage with two decimals, and none as "–"', () => {
    expect(rateText(0.006)).toBe('0.60 %');
    expect(rateText(0)).toBe('0.00 %');
    expect(rateText(null)).toBe('–');
    expect(feedbackView({ hardBounces: 2, softBounces: 1, complaints: 0 }, 0)).toEqual({ hardBounces: 2, softBounces: 1, complaints: 0, bounceRate: null, complaintRate: null });
  });

  it('status shows the bounces and complaints with their rates', () => {
    const block = statusBlock(doc(), undefined, { feedback: { hardBounces: 12, softBounces: 3, complaints: 6 } });
    expect(block).toMatch(/^bounces {4}12 hard \(rate 1\.20 %\), 3 soft$/m);
    expect(block).toMatch(/^complaints 6 \(rate 0\.60 %\)$/m);
  });

  it('status of a broadcast that sent nothing shows "–" for both rates', () => {
    const block = statusBlock(doc({ counters: { sent: 0, failed: 0, skipped: 0, suppressed: 0 } }), undefined, { feedback: { hardBounces: 1, softBounces: 0, complaints: 0 } });
    expect(block).toMatch(/^bounces {4}1 hard \(rate –\), 0 soft$/m);
    expect(block).toMatch(/^complaints 0 \(rate –\)$/m);
  });

  it('status without feedback counts has no such lines (as before)', () => {
    expect(statusBlock(doc(), undefined)).not.toMatch(/bounces|complaints/);
  });

  it('a pause with a reason says why; without one it is the plain word', () => {
    expect(statusWord(doc({ status: 'paused' }), 'pause', REASON)).toBe(`paused: ${REASON}`);
    expect(statusWord(doc({ status: 'paused' }), 'pause')).toBe('paused');
    expect(statusWord(doc({ status: 'running' }), 'pause', REASON)).toBe(`running (pause requested: ${REASON})`);
    expect(statusBlock(doc({ status: 'paused' }), 'pause', { reason: REASON })).toContain(`status     paused: ${REASON}\n`);
  });

  it('a reason is not shown once the broadcast is over or resumed', () => {
    expect(statusWord(doc({ status: 'cancelled' }), 'pause', REASON)).toBe('cancelled');
    expect(statusWord(doc({ status: 'running' }), 'resume', undefined)).toBe('running');
  });

  it('list shows both rates in their own columns when given the counts', () => {
    const a = doc();
    const b = doc({ _id: '20260308-080000-000000', counters: { sent: 0, failed: 0, skipped: 0, suppressed: 0 } });
    const table = listTable([a, b], new Map([[a._id, { hardBounces: 5, softBounces: 0, complaints: 1 }], [b._id, { hardBounces: 0, softBounces: 0, complaints: 0 }]]));
    const [head, rowA, rowB] = table.split('\n');
    expect(head).toMatch(/FAILED\s+BOUNCE\s+COMPLAINT\s+CREATED/);
    expect(rowA).toMatch(/0\.50 %\s+0\.10 %\s+2026-03-08T09:00:00Z/);
    expect(rowB).toMatch(/–\s+–\s+2026-03-08T09:00:00Z/);
    expect(listTable([a])).not.toContain('BOUNCE');
  });
});
