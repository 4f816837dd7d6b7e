/**
 * BroadcastRun's overlapping batches and per-group feeding (issue 17), over in-memory ports:
 * - the next batch is sent while the previous one's writes (outcomes, ledger, progress) are
 *   under way, and never more than two batches hold messages without a confirmed checkpoint
 *   (the crash bound: 2 x batchSize);
 * - a destination group whose messages wait (deferred, retrying) does not hold the other
 *   groups' messages: they are fed beside it, each group with its own `feedAhead` room, and the
 *   waiting group's batch is confirmed only once its messages have outcomes.
 */
import { describe, expect, it } from 'vitest';
import { BroadcastRun } from '../../src/core/broadcast-run.js';
import { loadConfig } from '../../src/config/load.js';
import { compileTemplates } from '../../src/core/templates.js';
import type { Delivery } from '../../src/core/types.js';
import type { BroadcastQueue } from '../../src/ports/broadcasts.js';
import { batches, MemoryRunStore, Recorder, tick, users } from '../helpers/broadcast-run-fakes.js';
import { MemoryClaimStore, RecordingEvents, silentLogger } from '../helpers/fakes.js';

const fields = loadConfig({ env: {} }).config.users.fields;
const content = compileTemplates({ subject: 'News for {{name}}', text: 'Hello {{name}}' }, 'broadcast');
const BID = 'bc1';
const key = (i: number): string => `b:${BID}:u${String(i).padStart(4, '0')}`;
const indexOf = (k: string): number => Number(k.slice(-4));

async function until(what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 20_000 && !cond(); i++) await tick();
  expect(cond(), what).toBe(true);
}

/**
 * Two destination groups: `slow` (even user numbers) holds its messages, as a deferred provider's
 * retries do, until `releaseSlow()`; `fast` sends each after a macrotask.
 */
class GroupedQueue implements BroadcastQueue {
  readonly submitted: Delivery[] = [];
  readonly sent: string[] = [];
  parked: Delivery[] = [];
  holdSlow = true;
  readonly inQueue = new Map<string, number>();
  maxInQueue = 0;
  onOutcome: (key: string, status: 'sent' | 'failed') => void = () => undefined;
  constructor(readonly recorder: Recorder) {}

  groupOf(email: string): string {
    return Number(email.slice(1, email.indexOf('@'))) % 2 === 0 ? 'slow' : 'fast';
  }
  submit(d: Delivery): void {
    this.submitted.push(d);
    const g = this.groupOf(d.email);
    const n = (this.inQueue.get(g) ?? 0) + 1;
    this.inQueue.set(g, n);
    this.maxInQueue = Math.max(this.maxInQueue, n);
    if (g === 'slow' && this.holdSlow) this.parked.push(d);
    else setImmediate(() => this.#send(d));
  }
  withdraw(match: (d: Delivery) => boolean): Delivery[] {
    const out = this.parked.filter(match);
    this.parked = this.parked.filter((d) => !match(d));
    for (const d of out) this.inQueue.set(this.groupOf(d.email), (this.inQueue.get(this.groupOf(d.email)) ?? 1) - 1);
    return out;
  }
  releaseSlow(): void {
    this.holdSlow = false;
    for (const d of this.parked.splice(0)) setImmediate(() => this.#send(d));
  }
  #send(d: Delivery): void {
    this.inQueue.set(this.groupOf(d.email), (this.inQueue.get(this.groupOf(d.email)) ?? 1) - 1);
    this.sent.push(d.key);
    this.recorder.pending.push({ key: d.key, status: 'sent' });
    this.onOutcome(d.key, 'sent');
  }
}

function setUp(n: number, batchSize: number, feedAhead: number, queue: (r: Recorder) => GroupedQueue | BroadcastQueue & { onOutcome: (k: string, s: 'sent' | 'failed') => void; submitted: Delivery[]; sent: string[] }) {
  const claims = new MemoryClaimStore();
  const recorder = new Recorder(claims);
  const q = queue(recorder);
  // Confirmations wait until the test lets each one through.
  const store = new MemoryRunStore();
  store.gated = true;
  const run = new BroadcastRun(
    { broadcastId: BID, content, recipients: batches(users(n), batchSize), fields, claims, queue: q, recorder, events: new RecordingEvents(), isSuppressed: () => false, store },
    { feedAhead, controlPollMs: 5, drainTimeoutMs: 1000, dueAt: 0 },
    silentLogger(),
  );
  q.onOutcome = (k, s) => run.onOutcome(k, s);
  return { claims, recorder, q, store, run };
}

describe('BroadcastRun: overlapping batches', () => {
  it("sends the next batch while the previous one's confirmation is written, and never holds more than two batches unconfirmed", async () => {
    // No groups: every message sends on its own after a macrotask.
    const { q, store, run } = setUp(100, 20, 10, (r) => {
      const g = new GroupedQueue(r);
      g.holdSlow = false;
      return g;
    });
    // At every submit: batches with a message handed to the queue and not yet confirmed.
    let maxUnconfirmed = 0;
    const submit = q.submit.bind(q);
    q.submit = (d) => {
      maxUnconfirmed = Math.max(maxUnconfirmed, Math.floor(indexOf(d.key) / 20) + 1 - store.confirms.length);
      submit(d);
    };
    const done = run.run();
    // Batch 0's confirmation is held: batch 1 is sent meanwhile, batch 2 is not opened.
    await until('batches 0 and 1 sent while batch 0 is being confirmed', () => q.sent.length === 40 && store.gates.length === 1);
    await tick();
    expect(store.confirms).toEqual([]);
    expect(q.submitted.every((d) => indexOf(d.key) < 40)).toBe(true);
    expect(run.checkpoint).toBeUndefined();
    // Let the confirmations through one at a time: each one opens the next batch.
    for (let i = 0; i < 5; i++) {
      await until(`confirmation ${i} asked`, () => store.gates.length > i);
      store.gates[i]?.();
    }
    const r = await done;
    expect(r.end).toBe('done');
    expect(new Set(q.sent).size).toBe(100);
    expect(q.sent).toHaveLength(100);
    expect(store.confirms).toHaveLength(5);
    expect(r.checkpoint).toMatchObject({ batches: 5, processed: 100 });
    expect(maxUnconfirmed).toBe(2);
  });

  it('a held destination group does not hold the others: they are fed beside it, each group with its own room; its batch is confirmed after its outcomes', async () => {
    const { q, store, run } = setUp(100, 20, 5, (r) => new GroupedQueue(r));
    store.gated = false;
    const queue = q as GroupedQueue;
    const done = run.run();
    // The fast group's messages of the two open batches all go out while the slow group waits;
    // the slow group has at most feedAhead (5) in its queue; the third batch is not opened.
    const fastOf = (from: number, to: number): string[] => Array.from({ length: to - from }, (_, i) => from + i).filter((i) => i % 2 === 1).map(key);
    await until('the fast group of batches 0 and 1 sent', () => fastOf(0, 40).every((k) => queue.sent.includes(k)));
    for (let i = 0; i < 50; i++) await tick();
    expect(queue.parked).toHaveLength(5);
    expect(queue.inQueue.get('slow')).toBe(5);
    expect(queue.submitted.every((d) => indexOf(d.key) < 40)).toBe(true);
    expect(store.confirms).toEqual([]);
    expect(run.counters.sent).toBe(20);

    queue.releaseSlow();
    const r = await done;
    expect(r.end).toBe('done');
    expect(new Set(queue.sent).size).toBe(100);
    expect(queue.sent).toHaveLength(100);
    expect(store.confirms).toHaveLength(5);
    expect(queue.maxInQueue).toBeLessThanOrEqual(5);
  });
});
