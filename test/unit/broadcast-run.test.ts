/**
 * BroadcastRun over in-memory ports: claims, a send queue that sends on its own (or holds sends
 * when told), an outcome recorder whose completions are written only on flush, and a run store
 * with a batch ledger. What must hold (listmonk's pipe_test checks the same about its
 * checkpoint): a checkpoint and a confirmed batch only ever cover users whose outcome is WRITTEN;
 * a pause hands back what was not sent and a resume sends exactly the rest; the ledger lets a
 * resumed run skip confirmed batches; counters of an interrupted-then-resumed broadcast equal an
 * uninterrupted one.
 */
import { describe, expect, it } from 'vitest';
import { BroadcastRun, batchIdOf, type BroadcastRunOptions, type RunResult } from '../../src/core/broadcast-run.js';
import { compileTemplates } from '../../src/core/templates.js';
import { HOUR_MS } from '../../src/core/time.js';
import type { Delivery } from '../../src/core/types.js';
import type { BroadcastQueue } from '../../src/ports/broadcasts.js';
import type { Clock, RawUser } from '../../src/ports/index.js';
import { loadConfig } from '../../src/config/load.js';
import { FakeClock, flushMicrotasks } from '../helpers/fake-clock.js';
import { batches, MemoryRunStore, Recorder, tick, users } from '../helpers/broadcast-run-fakes.js';
import { MemoryClaimStore, RecordingEvents, silentLogger } from '../helpers/fakes.js';

const log = silentLogger();
const fields = loadConfig({ env: {} }).config.users.fields;
const content = compileTemplates({ subject: 'News for {{name}}', text: 'Hello {{name}}' }, 'broadcast');
const BID = 'bc1';
/**
 * Sends on its own, `concurrency` at a time, each after a macrotask; `hold` parks new sends
 * until `release()`. Every send is recorded, outcome goes to the recorder, then to the run.
 */
class AutoQueue implements BroadcastQueue {
  readonly waiting: Delivery[] = [];
  /** Every delivery submitted, as submitted. */
  readonly submitted: Delivery[] = [];
  readonly sent: string[] = [];
  inFlight = 0;
  maxQueued = 0;
  hold = false;
  fail = new Set<string>();
  onOutcome: (key: string, status: 'sent' | 'failed') => void = () => undefined;
  constructor(
    readonly recorder: Recorder,
    readonly concurrency = 4,
  ) {}

  submit(d: Delivery): void {
    this.submitted.push(d);
    this.waiting.push(d);
    this.maxQueued = Math.max(this.maxQueued, this.waiting.length + this.inFlight);
    this.#pump();
  }

  withdraw(match: (d: Delivery) => boolean): Delivery[] {
    const out = this.waiting.filter(match);
    for (const d of out) this.waiting.splice(this.waiting.indexOf(d), 1);
    return out;
  }

  release(): void {
    this.hold = false;
    this.#pump();
  }

  #pump(): void {
    while (!this.hold && this.inFlight < this.concurrency && this.waiting.length > 0) {
      const d = this.waiting.shift() as Delivery;
      this.inFlight++;
      setImmediate(() => {
        this.inFlight--;
        const status = this.fail.has(d.key) ? 'failed' : 'sent';
        this.sent.push(d.key);
        this.recorder.pending.push({ key: d.key, status });
        this.onOutcome(d.key, status);
        this.#pump();
      });
    }
  }
}

interface World {
  claims: MemoryClaimStore;
  recorder: Recorder;
  queue: AutoQueue;
  store: MemoryRunStore;
  events: RecordingEvents;
  suppressed: Set<string>;
}

function world(concurrency = 4): World {
  const claims = new MemoryClaimStore();
  const recorder = new Recorder(claims);
  return { claims, recorder, queue: new AutoQueue(recorder, concurrency), store: new MemoryRunStore(), events: new RecordingEvents(), suppressed: new Set() };
}

function makeRun(w: World, all: RawUser[], batchSize: number, opts: Partial<BroadcastRunOptions> = {}, clock?: Clock, queue: BroadcastQueue = w.queue): BroadcastRun {
  const run = new BroadcastRun(
    {
      broadcastId: BID,
      content,
      recipients: batches(all, batchSize),
      fields,
      claims: w.claims,
      queue,
      recorder: w.recorder,
      events: w.events,
      isSuppressed: (e) => w.suppressed.has(e),
      store: w.store,
      total: Promise.resolve(all.length),
      clock,
    },
    { feedAhead: 10, controlPollMs: 5, drainTimeoutMs: 1000, dueAt: 0, ...opts },
    log,
  );
  w.queue.onOutcome = (key, status) => run.onOutcome(key, status);
  return run;
}

const key = (i: number): string => `b:${BID}:u${String(i).padStart(4, '0')}`;

describe('BroadcastRun', () => {
  it('sends once to each valid, unsuppressed user; counts the rest; confirms every batch', async () => {
    const w = world();
    const all = users(95, (i) => (i === 3 ? { email: 'not-an-address' } : i === 4 ? { active: false } : i === 5 ? { unsubscribed: true } : {}));
    w.suppressed.add('u6@example.test');
    w.queue.fail.add(key(7));
    const r = await makeRun(w, all, 20).run();
    expect(r.end).toBe('done');
    expect(new Set(w.queue.sent).size).toBe(w.queue.sent.length);
    expect(w.queue.sent.sort()).toEqual(Array.from({ length: 95 }, (_, i) => i).filter((i) => ![3, 4, 5, 6].includes(i)).map(key).sort());
    expect(r.counters).toEqual({ total: 95, sent: 90, failed: 1, skipped: 3, suppressed: 1 });
    expect(w.store.confirms).toHaveLength(5);
    expect(r.checkpoint).toMatchObject({ batches: 5, processed: 95, lastUserId: 'u0094' });
    expect(w.events.events.filter((e) => e.type === 'invalid').map((e) => e.userId)).toEqual(['u0003']);
    expect(w.events.events.filter((e) => e.type === 'suppressed').map((e) => e.key)).toEqual([key(6)]);
  });

  it('memory stays flat: it never reads more than two batches ahead of the batch being confirmed', async () => {
    const w = world(3);
    let yielded = 0;
    let maxAhead = 0;
    async function* counted(): AsyncGenerator<RawUser[]> {
      for await (const b of batches(users(1_000), 25)) {
        yielded++;
        maxAhead = Math.max(maxAhead, yielded - w.store.confirms.length);
        yield b;
      }
    }
    const run = new BroadcastRun(
      { broadcastId: BID, content, recipients: counted(), fields, claims: w.claims, queue: w.queue, recorder: w.recorder, events: w.events, isSuppressed: () => false, store: w.store },
      { feedAhead: 10, controlPollMs: 5, drainTimeoutMs: 1000, dueAt: 0 },
      log,
    );
    w.queue.onOutcome = (k, st) => run.onOutcome(k, st);
    expect((await run.run()).end).toBe('done');
    expect(yielded).toBe(40);
    // The two open batches (one finishing, one sending) and the prefetched next one: never more.
    expect(maxAhead).toBeLessThanOrEqual(3);
  });

  it('keeps at most feedAhead of its messages in the queue', async () => {
    const w = world(2);
    await makeRun(w, users(200), 100, { feedAhead: 7 }).run();
    expect(w.queue.maxQueued).toBeLessThanOrEqual(7);
    expect(w.queue.sent).toHaveLength(200);
  });

  it('checkpoints and confirms only users whose outcome is written (not just received)', async () => {
    const w = world();
    const all = users(60);
    const check = (processed: number): void => {
      // Every user inside the checkpoint has a WRITTEN outcome (the claim's `#done`).
      for (let i = 0; i < processed; i++) expect(w.claims.done.has(key(i)), `user ${i} inside checkpoint ${processed}`).toBe(true);
    };
    w.store.onCheckpoint = check;
    const confirm = w.store.confirmBatch.bind(w.store);
    w.store.confirmBatch = async (id, counts) => {
      check(w.store.confirms.length * 20 + 20);
      await confirm(id, counts);
    };
    // Progress is written at every settled batch (no throttle), so the check runs mid-run
    // whatever the machine's speed: with the 5 ms throttle a loaded machine wrote only twice.
    const r = await makeRun(w, all, 20, { controlPollMs: 0 }).run();
    expect(r.end).toBe('done');
    expect(w.store.publishes.length).toBeGreaterThanOrEqual(3);
  });

  it('pause mid-batch: hands back what was not sent; resume sends exactly the rest; counters match one run', async () => {
    const w = world(2);
    const all = users(100);
    let pause = false;
    w.store.verdict = () => (pause ? 'pause' : 'continue');
    const run = makeRun(w, all, 30);
    const first = run.run();
    // Pause once the second batch is part sent.
    while (w.queue.sent.length < 45) await tick();
    // Sends already started still finish; the rest waits in the queue until the run looks.
    w.queue.hold = true;
    pause = true;
    const sentAtPause = w.queue.sent.length;
    const r1 = await first;
    w.queue.release();
    expect(r1.end).toBe('paused');
    const sentBefore = new Set(w.queue.sent);
    expect(sentBefore.size).toBeGreaterThanOrEqual(45);
    expect(sentBefore.size).toBeLessThanOrEqual(sentAtPause + 2);
    expect(sentBefore.size).toBeLessThan(60);
    // Released claims are exactly the fed-but-unsent and never-fed keys of the interrupted batch,
    // plus the whole next batch (open beside it, none of it fed while the older one filled
    // feedAhead) and the one after (claimed ahead, never opened).
    const interrupted = Array.from({ length: 30 }, (_, i) => key(30 + i)).filter((k) => !sentBefore.has(k));
    const preparedNext = Array.from({ length: 40 }, (_, i) => key(60 + i));
    expect(new Set(w.claims.released)).toEqual(new Set([...interrupted, ...preparedNext]));
    expect(preparedNext.some((k) => sentBefore.has(k))).toBe(false);
    expect(w.store.confirms).toHaveLength(1);
    expect(r1.counters.sent).toBe(sentBefore.size);

    // Resume: a new run over the same claims and ledger, publishing only once it caught up.
    pause = false;
    const claimCallsBefore = w.claims.claimCalls.length;
    const r2 = await makeRun(w, all, 30, { baseline: r1.counters }).run();
    expect(r2.end).toBe('done');
    const counts = new Map<string, number>();
    for (const k of w.queue.sent) counts.set(k, (counts.get(k) ?? 0) + 1);
    expect(counts.size).toBe(100);
    expect([...counts.values()].every((c) => c === 1)).toBe(true);
    // The confirmed first batch was skipped via the ledger: never claimed again.
    const reclaimed = w.claims.claimCalls.slice(claimCallsBefore).flat();
    expect(reclaimed).not.toContain(key(0));
    expect(reclaimed).toContain(key(30));
    expect(r2.counters).toEqual({ total: 100, sent: 100, failed: 0, skipped: 0, suppressed: 0 });
    // Progress never went backwards across the two runs.
    const published = w.store.publishes.map((p) => p.counters.sent);
    expect(published).toEqual([...published].sort((a, b) => a - b));
  });

  it('cancel stops new sends within the batch in flight', async () => {
    const w = world(1);
    let cancel = false;
    w.store.verdict = () => (cancel ? 'cancel' : 'continue');
    const run = makeRun(w, users(500), 100, { feedAhead: 5 });
    const p = run.run();
    while (w.queue.sent.length < 10) await tick();
    w.queue.hold = true;
    cancel = true;
    const sentAtCancel = w.queue.sent.length;
    const r = await p;
    w.queue.release();
    expect(r.end).toBe('cancelled');
    // Only the send already in flight (concurrency 1) may still have gone out; the queued rest
    // of the batch went back.
    expect(w.queue.sent.length - sentAtCancel).toBeLessThanOrEqual(1);
    expect(w.claims.released.length).toBeGreaterThan(80);
    expect(r.counters.sent).toBe(w.queue.sent.length);
  });

  it('a confirmed batch is recognised whatever the order of its users', () => {
    expect(batchIdOf(['a', 'b', 'c'])).toBe(batchIdOf(['c', 'a', 'b']));
    expect(batchIdOf(['a', 'b'])).not.toBe(batchIdOf(['a', 'b', 'c']));
  });

  it('keys finished by an earlier run count by their recorded status, and are not sent again', async () => {
    const w = world();
    for (let i = 0; i < 10; i++) {
      w.claims.owner.set(key(i), 'gone');
      w.claims.done.set(key(i), i < 8 ? 'sent' : 'failed');
    }
    const r = await makeRun(w, users(25), 25).run();
    expect(w.queue.sent).toHaveLength(15);
    expect(r.counters).toMatchObject({ sent: 23, failed: 2 });
  });

  it("takes over a dead owner's unfinished claims, adopts its own leftovers, and leaves a live owner's alone: incomplete", async () => {
    const w = world();
    w.claims.owner.set(key(0), 'dead');
    w.claims.owner.set(key(1), 'me');
    w.claims.alive.add('other');
    w.claims.owner.set(key(2), 'other');
    const r = await makeRun(w, users(5), 5).run();
    expect(w.queue.sent.sort()).toEqual([key(0), key(1), key(3), key(4)]);
    expect(r.end).toBe('incomplete');
    expect(r.counters.skipped).toBe(1);
    // Not confirmed: a later run must look at user 2 again.
    expect(w.store.confirms).toEqual([]);
  });

  it('superseded: stops before the next batch and publishes nothing more', async () => {
    const w = world();
    let calls = 0;
    w.store.verdict = () => (++calls > 2 ? 'superseded' : 'continue');
    const r: RunResult = await makeRun(w, users(100), 20).run();
    expect(r.end).toBe('superseded');
    expect(w.queue.sent.length).toBeLessThan(100);
    const publishesAtEnd = w.store.publishes.length;
    await tick();
    expect(w.store.publishes.length).toBe(publishesAtEnd);
  });

  it('stop() (daemon shutdown) hands back the queued messages and ends the run as stopped', async () => {
    const w = world(1);
    const run = makeRun(w, users(100), 50, { feedAhead: 20 });
    const p = run.run();
    while (w.queue.sent.length < 5) await tick();
    w.queue.hold = true;
    await run.stop();
    const r = await p;
    expect(r.end).toBe('stopped');
    const sent = new Set(w.queue.sent);
    // Every claim is either sent or released: nothing of the batch is left claimed and unsent.
    for (let i = 0; i < 50; i++) expect(sent.has(key(i)) !== w.claims.released.includes(key(i)), `user ${i}`).toBe(true);
    expect(w.queue.waiting).toEqual([]);
  });

  it('every delivery carries the content of its run: one shared object, not a copy', async () => {
    const w = world();
    await makeRun(w, users(45), 20).run();
    expect(w.queue.submitted).toHaveLength(45);
    for (const d of w.queue.submitted) expect(d.content).toBe(content);
  });
});

/**
 * A send queue whose first `slots` submissions are in flight until the test answers them; the
 * rest wait (withdrawable).
 */
class ManualQueue implements BroadcastQueue {
  readonly inFlight: Delivery[] = [];
  readonly waiting: Delivery[] = [];
  constructor(readonly slots: number) {}
  submit(d: Delivery): void {
    (this.inFlight.length < this.slots ? this.inFlight : this.waiting).push(d);
  }
  withdraw(match: (d: Delivery) => boolean): Delivery[] {
    const out = this.waiting.filter(match);
    for (const d of out) this.waiting.splice(this.waiting.indexOf(d), 1);
    return out;
  }
}

/** Lets the run's promise callbacks and the recipient stream's turns run; no timer moves. */
async function settle(until: () => boolean = () => false): Promise<void> {
  for (let i = 0; i < 100 && !until(); i++) await flushMicrotasks();
}

describe('BroadcastRun on a fake clock: it waits on events and clock deadlines, never polls', () => {
  const START = '2026-03-08T09:00:00Z';

  it('a pause requested while a batch is outstanding is seen at the next control check; the run then ends paused with the queued messages withdrawn and their claims released', async () => {
    const clock = new FakeClock(START);
    const w = world();
    // Nothing is handed to SMTP: the whole fed part of the batch stays in the queue, outstanding.
    w.queue.hold = true;
    let pause = false;
    let checks = 0;
    w.store.verdict = () => {
      checks++;
      return pause ? 'pause' : 'continue';
    };
    let result: RunResult | undefined;
    void makeRun(w, users(40), 20, { feedAhead: 10, controlPollMs: HOUR_MS }, clock)
      .run()
      .then((r) => (result = r));
    // Both batches open (a control check before each): the first fed up to feedAhead, nothing of
    // the second (the older batch goes first); the end of the stream read ahead.
    await settle(() => w.queue.waiting.length === 10 && w.claims.claimCalls.length === 2 && checks === 2);
    expect(w.queue.waiting).toHaveLength(10);
    expect(w.queue.waiting.every((d) => d.key < key(10))).toBe(true);
    expect(w.claims.claimCalls).toHaveLength(2);
    expect(checks).toBe(2);
    // The run waits on one timer: the deadline of its next control check.
    expect(clock.pending).toBe(1);
    expect(clock.nextTimerAt()).toBe(Date.parse(START) + HOUR_MS);

    pause = true;
    await settle();
    await clock.advanceAsync(HOUR_MS - 1);
    await settle();
    expect(result).toBeUndefined();
    expect(checks).toBe(2);

    await clock.advanceAsync(1);
    await settle(() => result !== undefined);
    expect(checks).toBe(3);
    expect(result?.end).toBe('paused');
    expect(result?.counters).toMatchObject({ sent: 0, failed: 0 });
    expect(w.queue.waiting).toEqual([]);
    expect(w.queue.sent).toEqual([]);
    // Every claim went back: the 10 withdrawn, the 10 never fed, the 20 of the second open batch.
    expect(new Set(w.claims.released)).toEqual(new Set(Array.from({ length: 40 }, (_, i) => key(i))));
    expect(w.claims.owned.size).toBe(0);
    expect(w.store.confirms).toEqual([]);
    expect(clock.pending).toBe(0);
  });

  it('on stop, the drain ends with the last outcome of the sends in flight, without the clock moving', async () => {
    const clock = new FakeClock(START);
    const w = world();
    const queue = new ManualQueue(2);
    const run = makeRun(w, users(20), 20, { feedAhead: 5, controlPollMs: HOUR_MS, drainTimeoutMs: 30_000 }, clock, queue);
    let result: RunResult | undefined;
    void run.run().then((r) => (result = r));
    await settle(() => queue.waiting.length === 3);
    expect(queue.inFlight).toHaveLength(2);

    const stopped = run.stop();
    await settle();
    // Waiting on the wake signal raced against the drain's deadline.
    expect(result).toBeUndefined();
    expect(clock.nextTimerAt()).toBe(Date.parse(START) + 30_000);
    expect(queue.waiting).toEqual([]);
    for (const d of queue.inFlight) {
      w.recorder.pending.push({ key: d.key, status: 'sent' });
      run.onOutcome(d.key, 'sent');
    }
    await stopped;
    expect(result?.end).toBe('stopped');
    expect(result?.counters.sent).toBe(2);
    expect(clock.now()).toBe(Date.parse(START));
    // The 2 sent keep their claims (done); the 3 withdrawn and the 15 never fed went back.
    expect(w.claims.released).toHaveLength(18);
    expect(queue.inFlight.some((d) => w.claims.released.includes(d.key))).toBe(false);
    expect(clock.pending).toBe(0);
  });

  it('on stop, a send in flight that never answers is given up at the clock deadline, its claim kept', async () => {
    const clock = new FakeClock(START);
    const w = world();
    const queue = new ManualQueue(1);
    const run = makeRun(w, users(10), 10, { feedAhead: 4, controlPollMs: HOUR_MS, drainTimeoutMs: 30_000 }, clock, queue);
    let result: RunResult | undefined;
    void run.run().then((r) => (result = r));
    await settle(() => queue.waiting.length === 3);
    void run.stop();
    await settle();
    await clock.advanceAsync(29_999);
    await settle();
    expect(result).toBeUndefined();
    await clock.advanceAsync(1);
    await settle(() => result !== undefined);
    expect(result?.end).toBe('stopped');
    const stuck = queue.inFlight[0]?.key ?? '';
    // Its outcome is unknown: the claim stays for a later run to take over.
    expect(w.claims.released).not.toContain(stuck);
    expect(w.claims.owned).toEqual(new Set([stuck]));
    expect(w.claims.released).toHaveLength(9);
  });
});
