/**
 * Dispatcher + OutcomeRecorder with an in-memory ClaimStore and EventRecorder, over either a
 * scripted DeliveryQueue (to hold sends at will) or the real SendQueue on a fake transport.
 * What must hold: only claimed keys are sent, taken keys are reported as skipped, the send queue
 * stays bounded, a stop gives back every claim that never reached SMTP, and completions are
 * written.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SendQueue } from '../../src/adapters/smtp/send-queue.js';
import { Dispatcher, type DispatcherOptions } from '../../src/core/dispatcher.js';
import { OutcomeRecorder } from '../../src/core/outcome-recorder.js';
import type { Delivery } from '../../src/core/types.js';
import type { DeliveryQueue, MailTransport } from '../../src/ports/index.js';
import { FakeClock, flushMicrotasks } from '../helpers/fake-clock.js';
import { MemoryClaimStore, RecordingEvents, silentLogger } from '../helpers/fakes.js';

const log = silentLogger();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const until = (check: () => void): Promise<void> => vi.waitFor(check, { timeout: 5000, interval: 2 });

function delivery(i: number): Delivery {
  const userId = `u${i}`;
  return { key: `s:${userId}:09:00:2026-01-05`, kind: 'scheduled', userId, email: `${userId}@example.test`, name: undefined, slot: '09:00', localDate: '2026-01-05', timezone: 'UTC', dueAt: Date.parse('2026-01-05T09:00:00Z') };
}
const deliveries = (n: number): Delivery[] => Array.from({ length: n }, (_, i) => delivery(i));

/**
 * A send queue the test drives by hand: `submit` parks deliveries in `queued`; `start()` moves one
 * to in-flight; `finish()` reports its outcome through the recorder's hook, as SendQueue does.
 */
class ManualQueue implements DeliveryQueue {
  readonly queued: Delivery[] = [];
  readonly flying: Delivery[] = [];
  readonly submitted: Delivery[] = [];
  maxWaiting = 0;
  #stopped = false;
  #idle: Array<() => void> = [];
  #room: Array<{ limit: number; resolve: () => void }> = [];

  constructor(private readonly onOutcome: (o: { delivery: Delivery; status: 'sent' | 'failed'; attempts: number; latencyMs: number }) => Promise<void>) {}

  get waiting(): number {
    return this.queued.length;
  }
  get inFlight(): number {
    return this.flying.length;
  }

  submit(d: Delivery): void {
    if (this.#stopped) throw new Error('stopped');
    this.queued.push(d);
    this.submitted.push(d);
    this.maxWaiting = Math.max(this.maxWaiting, this.queued.length);
  }

  start(): Delivery | undefined {
    const d = this.queued.shift();
    if (d) this.flying.push(d);
    this.#wakeRoom();
    return d;
  }

  room(limit: number): Promise<void> {
    if (this.#stopped || this.queued.length < limit) return Promise.resolve();
    return new Promise((resolve) => this.#room.push({ limit, resolve }));
  }

  #wakeRoom(): void {
    const ready = this.#room.filter((w) => this.#stopped || this.queued.length < w.limit);
    this.#room = this.#room.filter((w) => !ready.includes(w));
    for (const w of ready) w.resolve();
  }

  async finish(d: Delivery, status: 'sent' | 'failed' = 'sent'): Promise<void> {
    this.flying.splice(this.flying.indexOf(d), 1);
    await this.onOutcome({ delivery: d, status, attempts: 1, latencyMs: 1 });
    if (this.queued.length === 0 && this.flying.length === 0) for (const w of this.#idle.splice(0)) w();
  }

  idle(): Promise<void> {
    if (this.queued.length === 0 && this.flying.length === 0) return Promise.resolve();
    return new Promise((r) => this.#idle.push(r));
  }

  async stop(): Promise<{ released: Delivery[]; abandoned: Delivery[] }> {
    this.#stopped = true;
    const released = this.queued.splice(0);
    this.#wakeRoom();
    return { released, abandoned: [...this.flying] };
  }
}

const OPTS: DispatcherOptions = { claimBatch: 4, maxQueued: 3, drainTimeoutMs: 1000 };

function manualSetup(opts: Partial<DispatcherOptions> = {}, takenByOthers: string[] = []) {
  const claims = new MemoryClaimStore(takenByOthers);
  const events = new RecordingEvents();
  // Large batch and interval: completions are written only by an explicit flush (stop, idle).
  const recorder = new OutcomeRecorder(claims, events, { batchSize: 1000, intervalMs: 60_000 }, log);
  const queue = new ManualQueue((o) => recorder.hooks.onOutcome(o));
  const dispatcher = new Dispatcher({ claims, queue, recorder, events }, { ...OPTS, ...opts }, log);
  return { claims, events, recorder, queue, dispatcher };
}

class FakeTransport implements MailTransport {
  readonly calls: string[] = [];
  delayMs = 2;
  async send(d: Delivery): Promise<{ messageId: string; response: string }> {
    this.calls.push(d.key);
    await sleep(this.delayMs);
    return { messageId: `<${d.key}>`, response: '250 OK' };
  }
  async close(): Promise<void> {}
}

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((c) => c()));
});

function realSetup(opts: Partial<DispatcherOptions> = {}, takenByOthers: string[] = [], concurrency = 2) {
  const claims = new MemoryClaimStore(takenByOthers);
  const events = new RecordingEvents();
  const recorder = new OutcomeRecorder(claims, events, { batchSize: 1000, intervalMs: 60_000 }, log);
  const transport = new FakeTransport();
  const queue = new SendQueue(transport, { concurrency, rate: {}, maxAttempts: 3, backoffBaseMs: 1, backoffMaxMs: 2 }, recorder.hooks, log);
  const dispatcher = new Dispatcher({ claims, queue, recorder, events }, { ...OPTS, ...opts }, log);
  cleanups.push(() => dispatcher.stop());
  return { claims, events, recorder, queue, transport, dispatcher };
}

describe('Dispatcher: claiming', () => {
  it('submits only claimed deliveries and records one skipped event per taken key', async () => {
    const all = deliveries(10);
    const taken = [all[1], all[4], all[9]].map((d) => d?.key ?? '');
    const { claims, events, transport, dispatcher } = realSetup({ maxQueued: 100 }, taken);
    const result = await dispatcher.dispatch(all);
    await dispatcher.idle();

    expect(result).toEqual({ claimed: 7, skipped: 3, suppressed: 0 });
    const expectedSent = all.map((d) => d.key).filter((k) => !taken.includes(k));
    expect([...transport.calls].sort()).toEqual([...expectedSent].sort());
    const skipped = events.ofType('skipped');
    expect(skipped.map((e) => e.key).sort()).toEqual([...taken].sort());
    for (const e of skipped) {
      const d = all.find((x) => x.key === e.key);
      expect(e).toMatchObject({ kind: 'scheduled', userId: d?.userId });
    }
    // Claims go in bulk, at most claimBatch keys per call, each key asked once.
    expect(claims.claimCalls.every((c) => c.length <= OPTS.claimBatch)).toBe(true);
    expect(claims.claimCalls.flat().sort()).toEqual(all.map((d) => d.key).sort());
    expect(claims.claimCalls.length).toBe(Math.ceil(10 / OPTS.claimBatch));
  });

  it('a second dispatch of the same deliveries sends nothing more', async () => {
    const all = deliveries(6);
    const { transport, events, dispatcher } = realSetup({ maxQueued: 100 });
    await dispatcher.dispatch(all);
    await dispatcher.idle();
    const again = await dispatcher.dispatch(all);
    await dispatcher.idle();
    expect(again).toEqual({ claimed: 0, skipped: 6, suppressed: 0 });
    expect(transport.calls.length).toBe(6);
    expect(events.ofType('skipped').length).toBe(6);
  });
});

describe('Dispatcher: bounded feeding', () => {
  it('never lets more than maxQueued deliveries wait in the send queue', async () => {
    const { queue, dispatcher } = manualSetup({ maxQueued: 3, claimBatch: 5 });
    const all = deliveries(12);
    let done = false;
    const dispatched = dispatcher.dispatch(all).then((r) => {
      done = true;
      return r;
    });
    // Drain the manual queue slowly, as a rate-limited SMTP pool would.
    while (!done) {
      await sleep(5);
      const d = queue.start();
      if (d) await queue.finish(d);
    }
    expect(await dispatched).toEqual({ claimed: 12, skipped: 0, suppressed: 0 });
    expect(queue.submitted.length).toBe(12);
    expect(queue.maxWaiting).toBe(3);
    while (queue.start()) {
      /* drain */
    }
  });

  it('with the real SendQueue, waiting stays within maxQueued while everything gets sent', async () => {
    const { queue, transport, dispatcher } = realSetup({ maxQueued: 4, claimBatch: 10 }, [], 1);
    let maxWaiting = 0;
    const probe = setInterval(() => (maxWaiting = Math.max(maxWaiting, queue.waiting)), 1);
    try {
      await dispatcher.dispatch(deliveries(25));
      await dispatcher.idle();
    } finally {
      clearInterval(probe);
    }
    expect(transport.calls.length).toBe(25);
    expect(maxWaiting).toBeGreaterThan(0);
    expect(maxWaiting).toBeLessThanOrEqual(4);
  });
});

describe('Dispatcher: idle and stop', () => {
  it('idle() resolves only after every outcome is recorded and every completion written', async () => {
    const { claims, events, dispatcher } = realSetup({ maxQueued: 100 });
    const all = deliveries(8);
    await dispatcher.dispatch(all);
    await dispatcher.idle();
    expect(events.ofType('sent').map((e) => e.key).sort()).toEqual(all.map((d) => d.key).sort());
    expect([...claims.done.entries()].sort()).toEqual(all.map((d) => [d.key, 'sent']).sort());
  });

  it('stop releases every claimed key that never reached SMTP and writes the completions of the others', async () => {
    const { claims, queue, dispatcher } = manualSetup({ maxQueued: 2, claimBatch: 10 });
    const all = deliveries(6);
    const dispatched = dispatcher.dispatch(all);
    await until(() => expect(queue.submitted.length).toBe(2));
    // One reached SMTP and finished, one is in flight; the rest are queued or not yet fed.
    const first = queue.start();
    if (!first) throw new Error('nothing queued');
    await queue.finish(first);
    const second = queue.start();
    expect(claims.done.size).toBe(0); // batched: not written yet

    await dispatcher.stop();
    await dispatched;
    const sentOrFlying = [first.key, second?.key];
    expect([...claims.released].sort()).toEqual(all.map((d) => d.key).filter((k) => !sentOrFlying.includes(k)).sort());
    expect(new Set(claims.released).size).toBe(claims.released.length);
    expect([...claims.done.entries()]).toEqual([[first.key, 'sent']]);
    // The in-flight one keeps its claim: its outcome is unknown.
    expect(claims.owned.has(second?.key ?? '')).toBe(true);
    expect(dispatcher.stop()).toBe(dispatcher.stop());
  });

  it('with the real SendQueue: a stop mid-run sends nothing more, and every claimed key is either completed or released', async () => {
    const { claims, transport, dispatcher } = realSetup({ maxQueued: 3, claimBatch: 5 }, [], 1);
    transport.delayMs = 20;
    const all = deliveries(15);
    const dispatched = dispatcher.dispatch(all);
    await until(() => expect(transport.calls.length).toBe(2));
    await dispatcher.stop();
    await dispatched;
    const sentAtStop = transport.calls.length;
    const grantedAtStop = claims.granted.length;
    await sleep(60);
    // Nothing sent and nothing claimed after the stop. (The dispatcher claims the next chunk while
    // it feeds one, so on a busy machine every chunk may be claimed before the stop: what counts
    // is that the sends stop, at most the queue's few in flight past the second.)
    expect(transport.calls.length).toBe(sentAtStop);
    expect(claims.granted.length).toBe(grantedAtStop);
    expect(sentAtStop).toBeLessThan(all.length);

    const completed = [...claims.done.keys()];
    expect([...completed].sort()).toEqual([...transport.calls].sort());
    expect([...completed, ...claims.released].sort()).toEqual([...claims.granted].sort());
    expect(claims.owned.size).toBe(completed.length);
  });

  it('a stop during a claim round trip still releases the keys that round trip claims', async () => {
    const { claims, queue, dispatcher } = manualSetup({ claimBatch: 3 });
    let answer: () => void = () => {};
    claims.gate = new Promise((r) => (answer = r));
    const all = deliveries(3);
    const dispatched = dispatcher.dispatch(all);
    await until(() => expect(claims.claimCalls.length).toBe(1));

    const stopped = dispatcher.stop();
    answer();
    await Promise.all([stopped, dispatched]);
    await sleep(20);
    expect(queue.submitted).toEqual([]);
    // Claimed during the stop and never sent: they must go back, or the emails are missed.
    expect([...claims.released].sort()).toEqual(all.map((d) => d.key).sort());
    expect(claims.owned.size).toBe(0);
  });
});

describe('Dispatcher: spread window', () => {
  it('feeds one dispatch evenly over spreadMs instead of all at once', async () => {
    const { dispatcher, queue } = manualSetup({ spreadMs: 400, maxQueued: 100 });
    const submittedAt: number[] = [];
    const submit = queue.submit.bind(queue);
    queue.submit = (d: Delivery): void => {
      submittedAt.push(Date.now());
      submit(d);
    };
    const started = Date.now();
    await dispatcher.dispatch(deliveries(8));
    expect(submittedAt).toHaveLength(8);
    // Delivery i is fed no earlier than i * 400 / 8 = i * 50 ms after the dispatch started.
    submittedAt.forEach((t, i) => expect(t - started).toBeGreaterThanOrEqual(i * 50 - 2));
    expect((submittedAt[7] as number) - started).toBeLessThan(1000);
  });
});

/** Sends at once, in memory: nothing in the send path waits on a timer of its own. */
class InstantTransport implements MailTransport {
  readonly calls: string[] = [];
  async send(d: Delivery): Promise<{ messageId: string; response: string }> {
    this.calls.push(d.key);
    return { messageId: `<${d.key}>`, response: '250 OK' };
  }
  async close(): Promise<void> {}
}

describe('Dispatcher on a fake clock (real SendQueue, in-memory transport)', () => {
  const START = '2026-01-05T09:00:00Z';

  /**
   * No per-second rate, so Bottleneck grants at once and only the injected clock decides when a
   * delivery is fed; every delivery is claimed in the first bulk claim.
   */
  function clockSetup(takenByOthers: string[] = []) {
    const clock = new FakeClock(START);
    const claims = new MemoryClaimStore(takenByOthers);
    const events = new RecordingEvents();
    const recorder = new OutcomeRecorder(claims, events, { batchSize: 1000, intervalMs: 60_000 }, log);
    const transport = new InstantTransport();
    const queue = new SendQueue(transport, { concurrency: 2, rate: {}, maxAttempts: 3, backoffBaseMs: 1, backoffMaxMs: 2, clock }, recorder.hooks, log);
    const dispatcher = new Dispatcher({ claims, queue, recorder, events, clock }, { claimBatch: 100, maxQueued: 100, drainTimeoutMs: 1000, spreadMs: 60_000 }, log);
    cleanups.push(() => dispatcher.stop());
    return { clock, claims, events, queue, transport, dispatcher };
  }

  it('a 60 s spread of 60 deliveries feeds one per second of fake time, and idle() resolves once the clock has moved 60 s', async () => {
    const all = deliveries(61);
    const taken = all[60]?.key ?? '';
    const { clock, events, queue, transport, dispatcher } = clockSetup([taken]);
    const dispatched = dispatcher.dispatch(all.slice(0, 60));
    await until(() => expect(transport.calls).toHaveLength(1));
    await queue.idle();
    for (let i = 0; i < 5; i++) await flushMicrotasks();
    // The rest wait on the fake clock, not on real time: the next is due 1 s later.
    expect(transport.calls).toEqual([all[0]?.key]);
    expect(dispatcher.backlog).toBe(59);
    expect(clock.nextTimerAt()).toBe(Date.parse(START) + 1000);

    await clock.advanceAsync(1000);
    await until(() => expect(transport.calls).toHaveLength(2));
    await clock.advanceAsync(59_000);
    expect(await dispatched).toEqual({ claimed: 60, skipped: 0, suppressed: 0 });
    await dispatcher.idle();
    expect([...transport.calls].sort()).toEqual(all.slice(0, 60).map((d) => d.key).sort());
    expect(events.ofType('sent')).toHaveLength(60);
    expect(dispatcher.backlog).toBe(0);
    expect(clock.pending).toBe(0);

    // Events are stamped with the injected clock's time.
    await dispatcher.dispatch([all[60] as Delivery]);
    expect(events.ofType('skipped').map((e) => e.at.getTime())).toEqual([Date.parse(START) + 60_000]);
  });

  it('a stop during the spread releases every delivery not yet fed, without advancing the clock', async () => {
    const all = deliveries(60);
    const { clock, claims, events, transport, dispatcher } = clockSetup();
    const dispatched = dispatcher.dispatch(all);
    await until(() => expect(transport.calls).toHaveLength(1));
    await clock.advanceAsync(10_000);
    await until(() => expect(events.ofType('sent')).toHaveLength(11));
    expect(dispatcher.backlog).toBe(49);

    await dispatcher.stop();
    expect(await dispatched).toEqual({ claimed: 60, skipped: 0, suppressed: 0 });
    const sent = all.slice(0, 11).map((d) => d.key);
    expect([...transport.calls].sort()).toEqual([...sent].sort());
    expect([...claims.released].sort()).toEqual(all.slice(11).map((d) => d.key).sort());
    expect([...claims.done.keys()].sort()).toEqual([...sent].sort());
    // The spread's wait was woken by the stop and its timer cleared.
    expect(clock.pending).toBe(0);
  });
});
