/**
 * One run of one broadcast: from the segment's user stream to recorded outcomes, batch by batch,
 * until the stream ends, the operator pauses or cancels, another process takes the run over, or
 * the daemon stops. Talks only to ports (no MongoDB, no SMTP).
 *
 * A batch (one cursor batch of `batchSize` users) goes through: validation and the suppression
 * list, one bulk claim of its delivery keys, the send queue (at most `feedAhead` of its messages
 * in the queue at once, so scheduled mail is never stuck behind a broadcast), and only when every
 * message of the batch has an outcome and those outcomes are written, a checkpoint: the batch is
 * confirmed in a ledger and the counters are published. So at any moment at most one batch can
 * hold messages that were handed to SMTP without a recorded outcome: after a crash, the
 * duplicates are bounded by `batchSize` (persist progress only for sends whose
 * outcome is recorded; listmonk checkpoints at fetch time and skips on a crash).
 *
 * Resuming (pause/resume, crash, daemon restart, takeover) re-streams the segment from the start
 * rather than seeking to a checkpoint. Trade-off, decided on purpose:
 * - seeking needs a stable order: a sort (on FerretDB v1 an in-memory sort of the whole
 *   collection) or natural order, which a sharded cluster or a compaction does not keep; a wrong
 *   seek skips users silently;
 * - re-streaming is correct whatever the order and whatever changed meanwhile, because the claims
 *   (`b:<broadcastId>:<userId>`, `<key>#done`) decide who was served; the checkpoint on the
 *   broadcast document is progress information for operators;
 * - the cost is reading the users collection again (one scan) and, for the part already done,
 *   skipping it cheaply: each confirmed batch is in a ledger under a hash of its user ids, so a
 *   batch made of exactly the same users is skipped with one small read and its counts reused.
 *   Only a batch that differs (users changed, order changed, or the batch was cut short by a
 *   pause or a crash) is claimed again; duplicates come back as "already done" with their status.
 * Memory stays flat: the run holds the batch in flight and the prepared next one, nothing else.
 *
 * The next batch is prepared (read, ledger lookup, validated, claimed) while the current one is
 * sent, so SMTP does not wait on those round trips at every batch boundary (measured: ~110 ms
 * pauses every 250 messages, half the sending time, `npm run bench broadcast`). Claiming ahead
 * does not widen the crash bound: a prepared batch has handed nothing to SMTP, and if the run
 * ends first its claims are released (or, after a crash, taken over like any other).
 *
 * Preparing a batch lives in `broadcast-batch.ts`. Every delivery of a run carries the same
 * compiled content object (`Delivery.content`), which the transport renders. The run never
 * polls: it waits on its wake signal (the batch's last outcome, a stop, a halt) or the clock
 * deadline of its next control check, on the injected clock.
 */
import type { Logger } from 'pino';
import type { BatchCounts, BroadcastCheckpoint, BroadcastCounters, BroadcastQueue, BroadcastRunStore, DoneStatus, OutcomeFlusher, RunVerdict, ZoneProgress } from '../ports/broadcasts.js';
import { systemClock, type Clock } from '../ports/clock.js';
import type { ClaimStore, EventRecorder, RawUser } from '../ports/index.js';
import { handled, prepareBatch, recheckQuiet, zeroCounts, type BatchContext, type PreparedBatch } from './broadcast-batch.js';
import type { SendWindow } from './send-window.js';
import { ZoneBook } from './zone-book.js';
import type { TemplateSet } from './template-set.js';
import { Signal } from './signal.js';
import type { Delivery } from './types.js';
import type { FieldMap } from './validate-user.js';

export { batchIdOf } from './broadcast-batch.js';

export interface BroadcastRunDeps {
  broadcastId: string;
  /** The broadcast's compiled subject/text/html, carried by every delivery of the run. */
  content: TemplateSet;
  /** The users the segment matches (active, not unsubscribed), in batches: one streamed cursor. */
  recipients: AsyncIterable<RawUser[]>;
  fields: FieldMap;
  claims: Pick<ClaimStore, 'claim' | 'release' | 'complete'>;
  queue: BroadcastQueue;
  recorder: OutcomeFlusher;
  events: EventRecorder;
  isSuppressed(email: string): boolean;
  store: BroadcastRunStore;
  /** The segment's size, counted beside the run (a scan: not awaited before sending). */
  total?: Promise<number | undefined> | undefined;
  /** Time for events, checkpoints, the control checks and the drain; default the system clock. */
  clock?: Clock | undefined;
}

export interface BroadcastRunOptions {
  /** Most of this run's messages in the send queue at once (waiting or in flight). */
  feedAhead: number;
  /** How often, within a batch, operator requests are read and progress is published, ms. */
  controlPollMs: number;
  /** How long an interrupted batch waits for its sends in flight, ms. */
  drainTimeoutMs: number;
  /**
   * Counters published by earlier runs of this broadcast. A resumed run recounts from zero (the
   * ledger makes that fast) and publishes its counters only once they have caught up, so
   * progress never appears to go backwards.
   */
  baseline?: BroadcastCounters | undefined;
  /** The instant the broadcast was due, ms (the `dueAt` of its deliveries). */
  dueAt: number;
  /** Local time and quiet hours: when each recipient may be sent (send-window.ts). */
  window?: SendWindow | undefined;
  /** Zone progress published by earlier runs (shown until this run's catches up). */
  baselineZones?: ZoneProgress[] | undefined;
}

/**
 * How a run ended. `stopped`: the daemon is shutting down; another run continues later.
 * `incomplete`: the stream ended but some users' keys were claimed by another live instance
 * and not finished; a later run must look at them again (never declared done on a guess).
 * `waiting`: the stream ended and everyone is done but recipients held until a later instant
 * (local time, quiet hours); `nextAt` is the earliest, when a run must look again.
 */
export type RunEnd = 'done' | 'incomplete' | 'waiting' | 'paused' | 'cancelled' | 'superseded' | 'stopped';

export interface RunResult {
  end: RunEnd;
  counters: BroadcastCounters;
  checkpoint: BroadcastCheckpoint | undefined;
  /** With `waiting`: the earliest instant a held recipient may be sent, ms. */
  nextAt?: number | undefined;
  /** Per-zone progress (local time, quiet hours). */
  zones?: ZoneProgress[] | undefined;
}

const VERDICT_END: Record<Exclude<RunVerdict, 'continue'>, RunEnd> = { pause: 'paused', cancel: 'cancelled', superseded: 'superseded' };

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
  /** The batch being sent: claimed deliveries, how many were fed, which await an outcome. */
  #unfed: Delivery[] = [];
  #fed = 0;
  readonly #outstanding = new Set<string>();
  #batchCounts: BatchCounts = zeroCounts();
  /** No more feeding (interrupted, or the queue refused a submit). */
  #halted = false;
  #stopRequested = false;
  /** Fired by the batch's last outcome, a stop, a halt: what the send loop and the drain wait on. */
  readonly #wake = new Signal();
  /** When the store was last asked for the operator's request (clock.monotonic()). */
  #lastCheck = 0;
  #published = -1;
  #version = 0;
  /** Keys found claimed by another live instance and unfinished, in this run: held elsewhere. */
  #heldElsewhere = 0;
  /** Recipients held until a later instant (local time, quiet hours), and the earliest instant. */
  #held = 0;
  #nextAt: number | undefined;
  /** Per-zone tallies (undefined: a plain broadcast, no zones read). */
  readonly #zones: ZoneBook | undefined;
  /** The zone of each delivery of the batch in flight, to count its outcome there. */
  #zoneOf: Map<string, string> | undefined;
  /** The batch in flight's finished keys (with a send window), its outcomes added as they come. */
  #batchDone: Map<string, DoneStatus> | undefined;
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
    if (!this.#outstanding.delete(key)) return;
    this.#counters[status]++;
    this.#batchDone?.set(key, status);
    const zone = this.#zoneOf?.get(key);
    if (zone !== undefined) this.#zones?.done(zone, 1);
    this.#batchCounts[status]++;
    this.#version++;
    this.#feed();
    if (this.#outstanding.size === 0) this.#wake.notify();
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
    let end: RunEnd | undefined;
    try {
      pending = prepareNext();
      while (end === undefined) {
        end = await this.#verdict();
        if (end !== undefined) break;
        const batch = await pending;
        pending = undefined;
        if (batch === undefined) {
          end = this.#heldElsewhere > 0 ? 'incomplete' : this.#held > 0 ? 'waiting' : 'done';
          break;
        }
        // The next batch is read and claimed while this one is sent.
        pending = prepareNext();
        end = await this.#send(batch);
      }
    } catch (err) {
      await this.#interrupt('stopped').catch((e: unknown) => this.#log.warn({ err: e }, 'could not hand back the batch in flight'));
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
    this.#log.info({ end, ...this.#counters, processed: this.#checkpoint?.processed ?? 0, held: this.#held, ...(nextAt === undefined ? {} : { nextAt: new Date(nextAt).toISOString() }) }, 'broadcast run ended');
    return { end, counters: { ...this.#counters }, checkpoint: this.#checkpoint, nextAt, zones: this.#zones?.progress(this.#clock.now(), whole) };
  }

  /** Undefined to go on, else how the run ends: a stop, or what the store says. */
  async #verdict(): Promise<RunEnd | undefined> {
    if (this.#stopRequested) return 'stopped';
    this.#lastCheck = this.#clock.monotonic();
    const v = await this.#deps.store.check();
    return v === 'continue' ? undefined : VERDICT_END[v];
  }

  /** Sends one prepared batch; returns how the run ends if it ended during the batch. */
  async #send(batch: PreparedBatch): Promise<RunEnd | undefined> {
    if (batch.known !== undefined) {
      this.#add(batch.known);
      for (const z of batch.known.zones ?? []) this.#zones?.add(z.zone, { users: z.done, done: z.done });
      this.#advance(batch.users, batch.lastUserId);
      await this.#publish(false);
      return undefined;
    }

    await recheckQuiet(batch, this.#opts.window, this.#clock.now(), this.#deps.claims);
    const counts = batch.counts;
    this.#batchCounts = counts;
    this.#add(counts);
    for (const [zone, t] of batch.zones ?? []) this.#zones?.add(zone, t);
    this.#zoneOf = batch.zoneOf;
    this.#batchDone = batch.done;
    this.#held += batch.held;
    if (batch.nextAt !== undefined) this.#nextAt = Math.min(this.#nextAt ?? Infinity, batch.nextAt);
    this.#unfed = batch.deliveries;
    this.#fed = 0;
    this.#halted = false;
    if (this.#stopRequested) return this.#interrupt('stopped');

    this.#feed();
    while (this.#outstanding.size > 0 || this.#fed < this.#unfed.length) {
      if (this.#stopRequested || this.#halted) return this.#interrupt('stopped');
      // Until the batch's last outcome, a stop or a halt, or the deadline of the next control check.
      const nextCheck = this.#lastCheck + this.#opts.controlPollMs;
      await this.#wake.sleep(this.#clock, nextCheck - this.#clock.monotonic());
      if (this.#stopRequested || this.#halted) return this.#interrupt('stopped');
      if (this.#outstanding.size === 0 && this.#fed >= this.#unfed.length) break;
      if (this.#clock.monotonic() >= nextCheck) {
        const end = await this.#verdict();
        if (end !== undefined) return this.#interrupt(end);
        await this.#publish(false);
      }
    }

    // Confirmed only once every outcome of the batch is written (the claims' `#done`); a batch
    // with keys still held elsewhere, or recipients held until later, is not confirmed, so a
    // later run looks at it again.
    await this.#deps.recorder.flush();
    if (batch.heldElsewhere === 0 && batch.held === 0) {
      const zones = batch.zones === undefined ? undefined : [...batch.zones].map(([zone, t]) => ({ zone, done: t.users }));
      await this.#deps.store.confirmBatch(batch.batchId, zones === undefined ? counts : { ...counts, zones });
    } else if (batch.done !== undefined && batch.done.size > (batch.doneBefore ?? 0)) {
      // Outcomes written (flushed above): the next wave counts these keys without claiming them.
      await this.#deps.store.recordPartial(batch.batchId, batch.done);
    }
    this.#batchDone = undefined;
    this.#heldElsewhere += batch.heldElsewhere;
    this.#advance(batch.users, batch.lastUserId);
    await this.#publish(false);
    return undefined;
  }

  /** Keeps up to `feedAhead` of the batch in the send queue. */
  #feed(): void {
    while (!this.#halted && this.#fed < this.#unfed.length && this.#outstanding.size < this.#opts.feedAhead) {
      const d = this.#unfed[this.#fed] as Delivery;
      this.#outstanding.add(d.key);
      try {
        this.#deps.queue.submit(d);
      } catch (err) {
        // The queue is stopping (daemon shutdown): what is left is handed back by #interrupt.
        this.#outstanding.delete(d.key);
        this.#halted = true;
        this.#log.info({ err }, 'send queue refused a broadcast message; stopping the run');
        this.#wake.notify();
        return;
      }
      this.#fed++;
    }
  }

  /**
   * Ends the batch early: takes this run's messages back from the queue, releases their claims
   * and those never fed, and waits (bounded) for the sends in flight, whose outcomes count.
   */
  async #interrupt(end: RunEnd): Promise<RunEnd> {
    this.#halted = true;
    const withdrawn = this.#deps.queue.withdraw((d) => this.#outstanding.has(d.key));
    for (const d of withdrawn) this.#outstanding.delete(d.key);
    const give = [...withdrawn, ...this.#unfed.slice(this.#fed)].map((d) => d.key);
    this.#fed = this.#unfed.length;
    if (give.length > 0) await this.#deps.claims.release(give);
    // The last outcome fires the wake signal; the clock bounds the wait.
    const deadline = this.#clock.monotonic() + this.#opts.drainTimeoutMs;
    while (this.#outstanding.size > 0 && this.#clock.monotonic() < deadline) await this.#wake.sleep(this.#clock, deadline - this.#clock.monotonic());
    if (this.#outstanding.size > 0) {
      // Their outcome is unknown: the claims stay, and a later run takes them over once this
      // process is gone (a possible duplicate, inside the crash bound).
      this.#log.warn({ count: this.#outstanding.size }, 'broadcast sends still in flight after the drain timeout');
      this.#outstanding.clear();
    }
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
   * Writes the counters (only outcomes already written count) unless nothing changed, or this
   * run has not yet caught up with what an earlier run published (`force` with `final` writes
   * them anyway: a finished recount is the truth even if users left the segment).
   */
  async #publish(force: boolean, final = false): Promise<void> {
    if (!force && this.#published === this.#version) return;
    const base = this.#opts.baseline;
    if (!final && base !== undefined && handled(this.#counters) < handled(base)) return;
    this.#published = this.#version;
    await this.#deps.recorder.flush();
    const zones = this.#zones?.progress(this.#clock.now(), final);
    await this.#deps.store.publish({ counters: { ...this.#counters }, checkpoint: this.#checkpoint, ...(zones === undefined ? {} : { zones }) });
  }
}
