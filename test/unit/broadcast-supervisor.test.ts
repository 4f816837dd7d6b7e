/**
 * BroadcastSupervisor over in-memory ports and a FakeClock: its poll timer and its retry
 * bookkeeping run on the injected clock, so the test moves time instead of waiting for it. The
 * lease, the decision table and whole runs against MongoDB and SMTP are covered by the
 * integration tests (broadcast*.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { BroadcastSupervisor, type BroadcastSupervisorOptions } from '../../src/core/broadcast-supervisor.js';
import type { BatchCounts, BroadcastDoc, BroadcastRunStore, BroadcastStore, ControlAction, NewBroadcast, RecipientSource } from '../../src/ports/broadcasts.js';
import type { RawUser } from '../../src/ports/index.js';
import { FakeClock, flushMicrotasks } from '../helpers/fake-clock.js';
import { MemoryClaimStore, RecordingEvents, silentLogger } from '../helpers/fakes.js';

const fields = loadConfig({ env: {} }).config.users.fields;
const START = '2026-03-08T09:00:00Z';

/** Broadcasts in memory: one lease holder per broadcast, released or not. */
class MemoryBroadcastStore implements BroadcastStore {
  readonly docs = new Map<string, BroadcastDoc>();
  readonly leases = new Map<string, { gen: number; released: boolean }>();
  opens = 0;
  #next = 0;
  constructor(readonly clock: FakeClock) {}

  async create(input: NewBroadcast): Promise<BroadcastDoc> {
    const now = new Date(this.clock.now());
    const doc: BroadcastDoc = { _id: `bc${++this.#next}`, ...input, status: 'queued', createdAt: now, counters: { sent: 0, failed: 0, skipped: 0, suppressed: 0 }, gen: 0, updatedAt: now };
    this.docs.set(doc._id, doc);
    return { ...doc };
  }
  async get(id: string): Promise<BroadcastDoc | undefined> {
    const d = this.docs.get(id);
    return d && { ...d };
  }
  async list(): Promise<BroadcastDoc[]> {
    return [...this.docs.values()].map((d) => ({ ...d }));
  }
  async open(): Promise<BroadcastDoc[]> {
    this.opens++;
    return [...this.docs.values()].filter((d) => ['queued', 'running', 'paused'].includes(d.status)).map((d) => ({ ...d }));
  }
  async control(): Promise<ControlAction | undefined> {
    return undefined;
  }
  async requestControl(): Promise<void> {}
  async acquire(doc: BroadcastDoc): Promise<number | undefined> {
    const lease = this.leases.get(doc._id);
    if (lease !== undefined && !lease.released) return undefined;
    const gen = (lease?.gen ?? 0) + 1;
    this.leases.set(doc._id, { gen, released: false });
    return gen;
  }
  async releaseLease(id: string, gen: number): Promise<void> {
    const lease = this.leases.get(id);
    if (lease?.gen === gen) lease.released = true;
  }
  async update(id: string, set: Partial<Omit<BroadcastDoc, '_id'>>): Promise<void> {
    const d = this.docs.get(id);
    if (d !== undefined) this.docs.set(id, { ...d, ...set, updatedAt: new Date(this.clock.now()) });
  }
  async dropLedger(): Promise<void> {}
  runStore(id: string, gen: number, owner: string): BroadcastRunStore {
    return {
      check: async () => 'continue',
      confirmedBatch: async (): Promise<BatchCounts | undefined> => undefined,
      confirmBatch: async () => undefined,
      partialBatch: async () => undefined,
      recordPartial: async () => undefined,
      publish: ({ counters }) => this.update(id, { status: 'running', owner, gen, counters }),
    };
  }
}

/** A recipient stream whose cursor fails at once (MongoDB went away). */
function failing(): AsyncIterable<RawUser[]> {
  return { [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(new Error('cursor lost')) }) };
}

const OPTS: BroadcastSupervisorOptions = { batchSize: 10, pollMs: 500, controlPollMs: 1_000, maxConcurrent: 2, feedAhead: 10, drainTimeoutMs: 1_000 };

function supervisor(clock: FakeClock, store: BroadcastStore, recipients: RecipientSource): BroadcastSupervisor {
  return new BroadcastSupervisor(
    {
      store,
      recipients,
      instance: { id: 'me', isAlive: async () => true },
      claims: new MemoryClaimStore(),
      queue: { submit: () => undefined, withdraw: () => [] },
      recorder: { flush: async () => undefined },
      events: new RecordingEvents(),
      isSuppressed: () => false,
      fields,
      clock,
    },
    OPTS,
    silentLogger(),
  );
}

async function settle(until: () => boolean = () => false): Promise<void> {
  for (let i = 0; i < 100 && !until(); i++) await flushMicrotasks();
}

const noRecipients: RecipientSource = {
  stream: () => failing(),
  count: async () => 0,
  probe: async () => undefined,
  zoneCounts: async () => ({ zones: new Map(), missing: 0, notString: 0 }),
};

describe('BroadcastSupervisor on a fake clock', () => {
  it('looks at the open broadcasts at start, then once every pollMs of the clock; stop() disarms the timer', async () => {
    const clock = new FakeClock(START);
    const store = new MemoryBroadcastStore(clock);
    const sup = supervisor(clock, store, noRecipients);
    sup.start();
    await settle();
    expect(store.opens).toBe(1);
    expect(clock.nextTimerAt()).toBe(Date.parse(START) + 500);
    await clock.advanceAsync(499);
    expect(store.opens).toBe(1);
    await clock.advanceAsync(1);
    expect(store.opens).toBe(2);
    await clock.advanceAsync(1_000);
    expect(store.opens).toBe(4);
    await sup.stop();
    expect(clock.pending).toBe(0);
    await clock.advanceAsync(5_000);
    expect(store.opens).toBe(4);
  });

  it('a failed run is taken up again after 2 s, then 4 s, on the clock (not sooner, whatever the polls)', async () => {
    const clock = new FakeClock(START);
    const store = new MemoryBroadcastStore(clock);
    let streams = 0;
    const recipients: RecipientSource = { ...noRecipients, stream: () => (streams++, failing()) };
    const doc = await store.create({ subject: 'Hi', text: 'Hello {{name}}', segment: '{}' });
    const sup = supervisor(clock, store, recipients);
    sup.start();
    await settle(() => sup.stats.errors === 1);
    expect(sup.stats).toMatchObject({ started: 1, errors: 1 });
    expect(store.docs.get(doc._id)?.error).toBe('cursor lost');

    // Polls every 500 ms meanwhile; the broadcast is left alone until its retry instant.
    await clock.advanceAsync(1_999);
    await settle();
    expect(sup.stats.started).toBe(1);
    await clock.advanceAsync(1);
    await settle(() => sup.stats.errors === 2);
    expect(sup.stats).toMatchObject({ started: 2, errors: 2 });

    // The second failure doubles the wait.
    await clock.advanceAsync(3_999);
    await settle();
    expect(sup.stats.started).toBe(2);
    await clock.advanceAsync(1);
    await settle(() => sup.stats.errors === 3);
    expect(sup.stats).toMatchObject({ started: 3, errors: 3 });
    expect(streams).toBe(3);
    await sup.stop();
    expect(clock.pending).toBe(0);
  });
});
