/**
 * One run of one broadcast: from the segment's user stream to recorded outcomes, batch by batch,
 * until the stream ends, the operator pauses or cancels, another process takes the run over, or
 * the daemon stops. Talks only to ports (no MongoDB, no SMTP).
 *
 * A batch (one cursor batch of `batchSize` users) goes through: validation and the suppression
 * list, one bulk claim of its delivery keys (`broadcast-batch.ts`, done for the next batch while
 * the open ones are sent), the send queue (`broadcast-feeder.ts`: at most `feedAhead` of the run's
 * messages per destination group, so scheduled mail is never stuck behind a broadcast), and only
 * when every message of the batch has an outcome and those outcomes are written, a checkpoint: the
 * batch is confirmed in a ledger and the counters move (published at most every `controlPollMs`).
 *
 * Crash bound: up to OPEN_BATCHES (2) batches are open at once, the older one finishing (its last
 * sends, a deferred group's retries, its outcome and ledger writes) while the next one is sent, so
 * SMTP never waits for a batch's writes (measured: ~20 ms of idle connections every 250 messages,
 * `npm run bench broadcast`). A third batch opens only once the oldest is settled. So at any moment
 * at most two batches hold messages handed to SMTP without a recorded outcome: after a crash the
 * duplicates are bounded by 2 × `batchSize` (and by the outcome recorder's, `send.recordBatch`).
 *
 * Resuming (pause/resume, crash, restart, takeover) re-streams the segment from the start rather
 * than seeking to a checkpoint: seeking needs a stable order (an in-memory sort of the whole
 * collection on FerretDB v1, or natural order, which sharding or compaction does not keep) and a
 * wrong seek skips users silently; re-streaming is correct whatever changed, because the claims
 * (`b:<broadcastId>:<userId>`, `<key>#done`) decide who was served. The part already done is
 * skipped cheaply: each confirmed batch is in a ledger under a hash of its user ids, so a batch of
 * exactly the same users is skipped with one small read; any other is claimed again and its
 * duplicates come back "already done". Memory stays flat: the open batches and the prepared one.
 *
 * The run never polls: it waits on its wake signal (a batch settled, a stop, a halt) or the clock
 * deadline of its next control check, on the injected clock.
 */
import type { Logger } from 'pino';
import type { BatchCounts, BroadcastCheckpoint, BroadcastCounters, RunVerdict } from '../ports/broadcasts.js';
import { systemClock, type Clock } from '../ports/clock.js';
import { handled, prepareBatch, recheckQuiet, zeroCounts, type BatchContext, type PreparedBatch } from './broadcast-batch.js';
import { BroadcastFeeder, type FeedBatch } from './broadcast-feeder.js';
import type { BroadcastRunDeps, BroadcastRunOptions, RunEnd, RunResult } from './broadcast-run-types.js';
import { ProgressWriter } from './broadcast-progress.js';
import { Signal } from './signal.js';
import { ZoneBook } from './zone-book.js';

export { batchIdOf } from './broadcast-batch.js';
export type { BroadcastRunDeps, BroadcastRunOptions, RunEnd, RunResult } from './broadcast-run-types.js';

const VERDICT_END: Record<Exclude<RunVerdict, 'continue'>, RunEnd> = { pause: 'paused', cancel: 'cancelled', superseded: 'superseded' };

/** Batches open at once: the one finishing (its last sends, its writes) and the next one sending. */
export const OPEN_BATCHES = 2;

/** One open batch: what was prepared, its sending state, and the promise of its last outcome. */
interface Open {
  batch: PreparedBatch;
  feed: FeedBatch | undefined;
  /** Resolves true when every message has an outcome, false when the batch was abandoned. */
  finished: Promise<boolean>;
  finish: (ok: boolean) => void;
}

export class BroadcastRun {
  readonly id: string;
  readonly #deps: BroadcastRunDeps;
  readonly #opts: BroadcastRunOptions;
  readonly #log: Logger;
  readonly #clock: Clock;
  /** What preparing a batch needs (broadcast-batch.ts), fixed for the run. */
  readonly #batchContext: BatchContext;
  readonly #counters: BroadcastCounters = { ...zeroCounts(), total: undefined };
  #checkpoint: BroadcastCheckpoint | undefined;
  readonly #feeder: BroadcastFeeder;
  /** Open batches (activated, not yet settled), oldest first; at most OPEN_BATCHES. */
  readonly #open: Open[] = [];
  /** Each open batch's settling, chained in stream order so the checkpoint only moves forward. */
  #chain: Promise<void> = Promise.resolve();
  /** Set when a batch was abandoned (interrupt): later batches are not settled either. */
  #abandoned = false;
  /** A settle that failed (a storage error): the run ends with it. */
  #failure: { err: unknown } | undefined;
  #stopRequested = false;
  /** Fired by a settled batch, the last outcome during a drain, a stop, a halt. */
  readonly #wake = new Signal();
  /** When the store was last asked for the operator's request (clock.monotonic()). */
  #lastCheck = 0;
  #version = 0;
  readonly #progress: ProgressWriter;
  /** Keys found claimed by another live instance and unfinished, in this run: held elsewhere. */
  #heldElsewhere = 0;
  /** Recipients held until a later instant (local time, quiet hours), and the earliest instant. */
  #held = 0;
  #nextAt: number | undefined;
  /** Per-zone tallies (undefined: a plain broadcast, no zones read). */
  readonly #zones: ZoneBook | undefined;
  /** Each fed key's batch, to count its outcome there (its zone, its finished keys). */
  readonly #batchOf = new Map<string, PreparedBatch>();
  #running: Promise<RunResult> | undefined;

  constructor(deps: BroadcastRunDeps, opts: BroadcastRunOptions, log: Logger) {
    this.id = deps.broadcastId;
    this.#deps = deps;
    this.#opts = opts;
    this.#log = log;
    this.#clock = deps.clock ?? systemClock;
    this.#batchContext = {
      broadcastId: deps.broadcastId,
      content: deps.content,
      dueAt: opts.dueAt,
      window: opts.window,
      fields: deps.fields,
      claims: deps.claims,
      events: deps.events,
      isSuppressed: deps.isSuppressed,
      store: deps.store,
      clock: this.#clock,
    };
    const onHalt = (err: unknown): void => {
      log.info({ err }, 'send queue refused a broadcast message; stopping the run');
      this.#wake.notify();
    };
    // Idle with both batches open: the oldest one's writes; with fewer: the next batch's read and claim.
    const cause = (): string => (this.#open.length >= OPEN_BATCHES ? 'settle' : 'prepare');
    this.#feeder = new BroadcastFeeder(deps.queue, opts.feedAhead, onHalt, { now: () => this.#clock.monotonic(), cause });
    this.#progress = new ProgressWriter(deps.store, deps.recorder, this.#clock, opts.controlPollMs, log);
    this.#counters.total = opts.baseline?.total;
    if (opts.window !== undefined) this.#counters.missed = 0;
    this.#zones = opts.window === undefined ? undefined : new ZoneBook(opts.window, opts.baselineZones);
    void deps.total?.then(
      (n) => {
        if (n !== undefined) this.#counters.total = n;
      },
      (err: unknown) => log.warn({ err }, 'could not count the segment'),
    );
  }

  /** Counters of this run so far (outcomes received, not necessarily written yet). */
  get counters(): Readonly<BroadcastCounters> {
    return this.#counters;
  }

  get checkpoint(): BroadcastCheckpoint | undefined {
    return this.#checkpoint;
  }

  /** Runs to the end; a second call returns the same promise. */
  run(): Promise<RunResult> {
    this.#running ??= this.#run();
    return this.#running;
  }

  /** The send queue's outcome for one of this broadcast's deliveries. */
  onOutcome(key: string, status: 'sent' | 'failed'): void {
    const fb = this.#feeder.outcome(key);
    if (fb === undefined) return;
    const batch = this.#batchOf.get(key);
    this.#batchOf.delete(key);
    this.#counters[status]++;
    if (batch !== undefined) {
      batch.counts[status]++;
      batch.done?.set(key, status);
      const zone = batch.zoneOf?.get(key);
      if (zone !== undefined) this.#zones?.done(zone, 1);
    }
    this.#version++;
    if (BroadcastFeeder.finished(fb)) this.#open.find((o) => o.feed === fb)?.finish(true);
    if (this.#feeder.outstanding === 0) this.#wake.notify();
  }

  /**
   * The daemon is stopping: no new sends; what is queued goes back (claims released), sends in
   * flight get `drainTimeoutMs`. Resolves when the run has ended.
   */
  async stop(): Promise<RunResult | undefined> {
    this.#stopRequested = true;
    this.#wake.notify();
    return this.#running?.catch(() => undefined);
  }

  async #run(): Promise<RunResult> {
    const stream = this.#deps.recipients[Symbol.asyncIterator]();
    const prepareNext = (): Promise<PreparedBatch | undefined> => {
      const p = stream.next().then((r) => (r.done === true ? undefined : prepareBatch(this.#batchContext, r.value)));
      // Marked handled here; awaiting it below still throws.
      p.catch(() => undefined);
      return p;
    };
    let pending: Promise<PreparedBatch | undefined> | undefined;
    let streamEnded = false;
    let end: RunEnd | undefined;
    try {
      pending = prepareNext();
      while (end === undefined) {
        this.#throwIfFailed();
        if (this.#stopRequested || this.#feeder.halted) {
          end = await this.#interrupt('stopped');
          break;
        }
        if (!streamEnded && this.#open.length < OPEN_BATCHES) {
          // A control check before every batch, then its turn: the next one is read and claimed
          // while the open ones are sent.
          const verdict = await this.#verdict();
          if (verdict !== undefined) {
            end = await this.#interrupt(verdict);
            break;
          }
          const batch = await pending;
          pending = undefined;
          if (batch === undefined) streamEnded = true;
          else {
            pending = prepareNext();
            await this.#activate(batch);
          }
          continue;
        }
        if (streamEnded && this.#open.length === 0) {
          await this.#chain;
          this.#throwIfFailed();
          end = this.#heldElsewhere > 0 ? 'incomplete' : this.#held > 0 ? 'waiting' : 'done';
          break;
        }
        // Until a batch settles, a stop or a halt, or the deadline of the next control check.
        const nextCheck = this.#lastCheck + this.#opts.controlPollMs;
        await this.#wake.sleep(this.#clock, nextCheck - this.#clock.monotonic());
        if (this.#stopRequested || this.#feeder.halted || this.#failure !== undefined) continue;
        if (this.#clock.monotonic() >= nextCheck) {
          const verdict = await this.#verdict();
          if (verdict !== undefined) {
            end = await this.#interrupt(verdict);
            break;
          }
          void this.#publish(false);
        }
      }
    } catch (err) {
      await this.#interrupt('stopped').catch((e: unknown) => this.#log.warn({ err: e }, 'could not hand back the batches in flight'));
      throw err;
    } finally {
      // A batch prepared but never sent: its claims go back.
      const unsent = await pending?.catch(() => undefined);
      if (unsent !== undefined && unsent.deliveries.length > 0) {
        await this.#deps.claims.release(unsent.deliveries.map((d) => d.key)).catch((e: unknown) => this.#log.warn({ err: e }, 'could not release the prepared batch'));
      }
      await stream.return?.(undefined)?.catch(() => undefined);
    }
    // A run that read the whole segment (done, or waiting for later instants) recounted everyone.
    const whole = end === 'done' || end === 'waiting';
    if (whole) this.#counters.total = this.#checkpoint?.processed ?? 0;
    if (end !== 'superseded') await this.#publish(true, whole);
    const nextAt = end === 'waiting' ? this.#nextAt : undefined;
    this.#log.info(
      {
        end,
        ...this.#counters,
        processed: this.#checkpoint?.processed ?? 0,
        held: this.#held,
        publishes: this.#progress.writes,
        publishMs: Math.round(this.#progress.writeMs),
        idleMs: Object.fromEntries([...this.#feeder.idleMs].map(([k, v]) => [k, Math.round(v)])),
        ...(nextAt === undefined ? {} : { nextAt: new Date(nextAt).toISOString() }),
      },
      'broadcast run ended',
    );
    return { end, counters: { ...this.#counters }, checkpoint: this.#checkpoint, nextAt, zones: this.#zones?.progress(this.#clock.now(), whole) };
  }

  /** A batch's settling failed (a storage error): the run ends with that error. */
  #throwIfFailed(): void {
    if (this.#failure !== undefined) throw this.#failure.err;
  }

  /** Undefined to go on, else how the run ends: a stop, or what the store says. */
  async #verdict(): Promise<RunEnd | undefined> {
    if (this.#stopRequested) return 'stopped';
    this.#lastCheck = this.#clock.monotonic();
    const v = await this.#deps.store.check();
    return v === 'continue' ? undefined : VERDICT_END[v];
  }

  /**
   * Opens a prepared batch: counts what preparing found, feeds its deliveries (after the open
   * batch's), and chains its settling after the batches before it.
   */
  async #activate(batch: PreparedBatch): Promise<void> {
    let finish: (ok: boolean) => void = () => undefined;
    const finished = new Promise<boolean>((r) => (finish = r));
    const open: Open = { batch, feed: undefined, finished, finish };
    this.#open.push(open);
    if (batch.known === undefined) {
      await recheckQuiet(batch, this.#opts.window, this.#clock.now(), this.#deps.claims);
      this.#add(batch.counts);
      for (const [zone, t] of batch.zones ?? []) this.#zones?.add(zone, t);
      this.#held += batch.held;
      if (batch.nextAt !== undefined) this.#nextAt = Math.min(this.#nextAt ?? Infinity, batch.nextAt);
      for (const d of batch.deliveries) this.#batchOf.set(d.key, batch);
      open.feed = this.#feeder.open(batch.deliveries);
      if (BroadcastFeeder.finished(open.feed)) finish(true);
    } else finish(true);
    const link = this.#chain.then(async () => {
      const ok = await finished;
      if (!ok) this.#abandoned = true;
      if (this.#abandoned || this.#failure !== undefined) return;
      await this.#settle(batch);
    });
    this.#chain = link.then(
      () => this.#close(open),
      (err: unknown) => {
        this.#failure ??= { err };
        this.#close(open);
      },
    );
  }

  #close(open: Open): void {
    const i = this.#open.indexOf(open);
    if (i >= 0) this.#open.splice(i, 1);
    if (open.feed !== undefined) this.#feeder.close(open.feed);
    this.#wake.notify();
  }

  /**
   * A batch whose every message has an outcome: confirmed only once those outcomes are written
   * (the claims' `#done`); a batch with keys still held elsewhere, or recipients held until
   * later, is not confirmed, so a later run looks at it again.
   */
  async #settle(batch: PreparedBatch): Promise<void> {
    if (batch.known !== undefined) {
      this.#add(batch.known);
      for (const z of batch.known.zones ?? []) this.#zones?.add(z.zone, { users: z.done, done: z.done });
      this.#advance(batch.users, batch.lastUserId);
      void this.#publish(false);
      return;
    }
    await this.#deps.recorder.flush();
    if (batch.heldElsewhere === 0 && batch.held === 0) {
      const zones = batch.zones === undefined ? undefined : [...batch.zones].map(([zone, t]) => ({ zone, done: t.users }));
      await this.#deps.store.confirmBatch(batch.batchId, zones === undefined ? batch.counts : { ...batch.counts, zones });
    } else if (batch.done !== undefined && batch.done.size > (batch.doneBefore ?? 0)) {
      // Outcomes written (flushed above): the next wave counts these keys without claiming them.
      await this.#deps.store.recordPartial(batch.batchId, batch.done);
    }
    this.#heldElsewhere += batch.heldElsewhere;
    this.#advance(batch.users, batch.lastUserId);
    void this.#publish(false);
  }

  /**
   * Ends the run early: takes this run's messages back from the queue, releases their claims
   * and those never fed, and waits (bounded) for the sends in flight, whose outcomes count.
   * Batches that finished before are settled in order; the first unfinished one is abandoned
   * (not confirmed, the checkpoint stays before it).
   */
  async #interrupt(end: RunEnd): Promise<RunEnd> {
    const give = this.#feeder.takeBack();
    // Every batch not finished by now lost messages to the take-back: none of them is confirmed
    // (a batch already finished keeps its `true`: a promise resolves once).
    for (const o of this.#open) o.finish(false);
    for (const k of give) this.#batchOf.delete(k);
    if (give.length > 0) await this.#deps.claims.release(give);
    // The last outcome fires the wake signal; the clock bounds the wait.
    const deadline = this.#clock.monotonic() + this.#opts.drainTimeoutMs;
    while (this.#feeder.outstanding > 0 && this.#clock.monotonic() < deadline) await this.#wake.sleep(this.#clock, deadline - this.#clock.monotonic());
    if (this.#feeder.outstanding > 0) {
      // Their outcome is unknown: the claims stay, and a later run takes them over once this
      // process is gone (a possible duplicate, inside the crash bound).
      this.#log.warn({ count: this.#feeder.outstanding }, 'broadcast sends still in flight after the drain timeout');
      this.#feeder.forget();
    }
    await this.#chain;
    await this.#deps.recorder.flush();
    this.#log.info({ released: give.length, end }, 'broadcast batch interrupted');
    return end;
  }

  #add(counts: BatchCounts): void {
    for (const f of ['sent', 'failed', 'skipped', 'suppressed'] as const) this.#counters[f] += counts[f];
    if ((counts.missed ?? 0) > 0) this.#counters.missed = (this.#counters.missed ?? 0) + (counts.missed ?? 0);
    this.#version++;
  }

  #advance(users: number, lastUserId: string | null): void {
    const before = this.#checkpoint;
    this.#checkpoint = { batches: (before?.batches ?? 0) + 1, processed: (before?.processed ?? 0) + users, lastUserId, at: new Date(this.#clock.now()) };
    this.#version++;
  }

  /**
   * Writes the counters (only outcomes already written count), throttled (broadcast-progress.ts),
   * unless this run has not yet caught up with what an earlier run published (`force` with
   * `final` writes them anyway: a finished recount is the truth even if users left the segment).
   */
  #publish(force: boolean, final = false): Promise<void> {
    const base = this.#opts.baseline;
    if (!final && base !== undefined && handled(this.#counters) < handled(base)) return Promise.resolve();
    return this.#progress.publish(
      this.#version,
      () => {
        const zones = this.#zones?.progress(this.#clock.now(), final);
        return { counters: { ...this.#counters }, checkpoint: this.#checkpoint, ...(zones === undefined ? {} : { zones }) };
      },
      force,
    );
  }
}
