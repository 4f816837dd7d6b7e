/**
 * SendQueue on a shared budget (smtp/shared-gate.ts) over a fake transport and a fake budget, on
 * a fake clock: partial grants (the rest waits in front), scheduled mail before broadcasts when a
 * window frees, Redis down (nothing starts, a capped backoff on the clock, resumes by itself, a send
 * in flight finishes normally), and the per-send place taken and returned.
 */
import { describe, expect, it, vi } from 'vitest';
import { SendQueue } from '../../src/adapters/smtp/send-queue.js';
import { pacingOnly, REDIS_BACKOFF, type SharedBudget } from '../../src/adapters/smtp/shared-gate.js';
import { backoffDelay } from '../../src/core/backoff.js';
import type { Delivery, DeliveryKind } from '../../src/core/types.js';
import { Errors } from '../../src/errors.js';
import type { MailTransport, Outcome } from '../../src/ports/index.js';
import { FakeClock, flushMicrotasks } from '../helpers/fake-clock.js';
import { silentLogger } from '../helpers/fakes.js';

const WAIT = { timeout: 10_000, interval: 5 };

function delivery(key: string, kind: DeliveryKind = 'scheduled'): Delivery {
  return { key, kind, userId: key, email: `${key}@example.test`, name: undefined, dueAt: 0 };
}

/** One window of `left` sends (no refill unless the test refills it) and the places of the second. */
class FakeBudget implements SharedBudget {
  readonly scope = 'shared' as const;
  up = true;
  left: number;
  readonly takes: number[] = [];
  /** Takes that got nothing (a full window). */
  emptyAnswers = 0;
  readonly calls = { take: 0, start: 0, finish: 0 };
  readonly started = new Set<string>();
  finished: Array<{ id: string; grantedAt: number | undefined }> = [];
  #n = 0;
  constructor(left: number) {
    this.left = left;
  }
  get state(): 'up' | 'down' {
    return this.up ? 'up' : 'down';
  }
  async use() {
    return [];
  }
  async take(n: number) {
    this.calls.take++;
    if (!this.up) throw new Errors.REDIS_UNAVAILABLE('down');
    this.takes.push(n);
    const granted = Math.min(n, this.left);
    this.left -= granted;
    if (granted === 0) this.emptyAnswers++;
    return { granted, waitMs: granted === 0 ? 1000 : 0, atMs: 1234 };
  }
  async startSend() {
    this.calls.start++;
    if (!this.up) throw new Errors.REDIS_UNAVAILABLE('down');
    const id = `p${this.#n++}`;
    this.started.add(id);
    return { id, waitMs: 0 };
  }
  async finishSend(id: string, grantedAt?: number) {
    this.calls.finish++;
    this.finished.push({ id, grantedAt });
    if (!this.up) throw new Errors.REDIS_UNAVAILABLE('down');
  }
  async cancelSend() {}
}

class FakeTransport implements MailTransport {
  readonly sent: string[] = [];
  hold: Promise<void> | undefined;
  async send(d: Delivery) {
    if (this.hold) await this.hold;
    this.sent.push(d.key);
    return { messageId: `<${d.key}@t>`, response: '250 OK' };
  }
  async close() {}
}

function setup(left: number) {
  const clock = new FakeClock(0);
  const budget = new FakeBudget(left);
  const transport = new FakeTransport();
  const outcomes: Outcome[] = [];
  const queue = new SendQueue(
    transport,
    { concurrency: 4, rate: { perSecond: null, perMinute: 100, perHour: null, perDay: 5 }, maxAttempts: 3, backoffBaseMs: 10, backoffMaxMs: 100, clock, shared: budget },
    { onOutcome: (o) => void outcomes.push(o) },
    silentLogger(),
  );
  return { clock, budget, transport, outcomes, queue };
}

describe('SendQueue on a shared budget', () => {
  it('keeps only the second of the local rate: the minute, hour and day windows are the shared ones', () => {
    expect(pacingOnly({ perSecond: 200, perMinute: 100, perHour: 1000, perDay: 5 })).toEqual({ perSecond: 200, perMinute: null, perHour: null, perDay: null });
  });

  it('a partial grant sends what it got; the rest waits in front until a window frees (local perDay 5 does not apply)', async () => {
    const t = setup(7);
    expect(t.queue.budget).toBe(t.budget);
    for (let i = 0; i < 10; i++) t.queue.submit(delivery(`s${i}`));
    await vi.waitFor(() => expect(t.transport.sent).toHaveLength(7), WAIT);
    await flushMicrotasks();
    expect(t.transport.sent).toEqual(['s0', 's1', 's2', 's3', 's4', 's5', 's6']);
    expect(t.queue.waiting).toBe(3);
    // Every send held a place and returned it with its grant's time.
    await vi.waitFor(() => expect(t.budget.finished).toHaveLength(7), WAIT);
    expect(t.budget.finished.every((f) => t.budget.started.has(f.id) && f.grantedAt === 1234)).toBe(true);
    // The rest asked again and got none (the window is full): it waits in front.
    await vi.waitFor(() => expect(t.budget.emptyAnswers).toBe(1), WAIT);
    // The window frees after the wait the budget named (1000 ms on the queue's clock).
    t.budget.left = 10;
    await t.clock.advanceAsync(999);
    expect(t.transport.sent).toHaveLength(7);
    await t.clock.advanceAsync(1);
    await vi.waitFor(() => expect(t.transport.sent).toHaveLength(10), WAIT);
    expect(t.transport.sent.slice(7)).toEqual(['s7', 's8', 's9']);
    await t.queue.stop(100);
  });

  it('scheduled mail goes before broadcasts that waited longer for the window', async () => {
    const t = setup(0);
    for (let i = 0; i < 5; i++) t.queue.submit(delivery(`b${i}`, 'broadcast'));
    await vi.waitFor(() => expect(t.budget.takes.length).toBeGreaterThan(0), WAIT);
    for (let i = 0; i < 5; i++) t.queue.submit(delivery(`s${i}`));
    t.budget.left = 10;
    await t.clock.advanceAsync(1000);
    await vi.waitFor(() => expect(t.transport.sent).toHaveLength(10), WAIT);
    // Only a grant still being decided when the scheduled mail came (one broadcast each: the
    // broadcasts were submitted one by one) may go first (send-queue.ts #pump, GRANTS_AHEAD 2).
    const lastScheduled = Math.max(...['s0', 's1', 's2', 's3', 's4'].map((k) => t.transport.sent.indexOf(k)));
    expect(lastScheduled).toBeLessThanOrEqual(4 + 2);
    expect(t.transport.sent.slice(lastScheduled + 1).length).toBeGreaterThanOrEqual(3);
    await t.queue.stop(100);
  });

  it('Redis down: nothing starts, retries back off on the clock (capped), a send in flight finishes, sending resumes by itself', async () => {
    const t = setup(1000);
    let release = (): void => undefined;
    t.transport.hold = new Promise((r) => (release = r));
    t.queue.submit(delivery('inflight'));
    await vi.waitFor(() => expect(t.queue.inFlight).toBe(1), WAIT);
    const calls = (): number => t.budget.calls.take + t.budget.calls.start;
    // The calls made while Redis answered (the in-flight send's grant and place): the first call
    // that fails comes after them, through the local limiter, in real time.
    const whileUp = calls();
    t.budget.up = false;
    for (let i = 0; i < 20; i++) t.queue.submit(delivery(`d${i}`));
    await vi.waitFor(() => expect(calls()).toBeGreaterThan(whileUp), WAIT);
    // The send in flight when Redis failed finishes normally (its place is not returned: it expires in Redis).
    t.transport.hold = undefined;
    release();
    await vi.waitFor(() => expect(t.outcomes.map((o) => o.delivery.key)).toEqual(['inflight']), WAIT);
    // While down: one more round of calls per backoff (100, 200, 400, ... ms, capped at 2 s) on the
    // queue's clock, and nothing sent.
    for (let attempt = 1; attempt <= 7; attempt++) {
      const before = calls();
      const delay = backoffDelay(REDIS_BACKOFF, attempt);
      await t.clock.advanceAsync(delay - 1);
      expect(calls()).toBe(before);
      await t.clock.advanceAsync(1);
      await vi.waitFor(() => expect(calls()).toBeGreaterThan(before), WAIT);
    }
    expect(backoffDelay(REDIS_BACKOFF, 7)).toBe(2000);
    expect(t.transport.sent).toEqual(['inflight']);
    expect(t.queue.waiting).toBe(20);
    // Redis answers again: within one capped backoff everything goes, once each.
    t.budget.up = true;
    await t.clock.advanceAsync(2000);
    await vi.waitFor(() => expect(t.transport.sent).toHaveLength(21), WAIT);
    expect(new Set(t.transport.sent).size).toBe(21);
    await t.queue.stop(100);
  });
});
