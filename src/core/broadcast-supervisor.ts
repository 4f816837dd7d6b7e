/**
 * BroadcastSupervisor: the daemon's side of broadcasts. It does not send: it decides which
 * broadcast needs a run, takes the lease and starts one `BroadcastRun` (`broadcast-run.ts`: one
 * run of one broadcast, batch by batch) per broadcast, and writes how the run ended. Every
 * `pollMs` (a timer on the injected clock, re-armed after each tick) it looks at the open
 * broadcasts (queued, running, paused) and, for each one that needs a daemon, takes the run lease
 * (see adapters/mongo/broadcast-store.ts) and then either runs it (`core/broadcast-run.ts`) or
 * applies the operator's request (pause, cancel) that nobody is running to apply. What needs a
 * daemon:
 * - queued and due (`at` passed), or queued with a pause/cancel request;
 * - paused with a resume or cancel request;
 * - running with a holder that is gone (crash, lost heartbeat) or that released it (stopped).
 * None of these before the broadcast's `nextAt`: a run of a local-time or quiet-hours broadcast
 * that found every recipient left held until later ends `waiting`, and the instant is persisted
 * on the document, so this daemon, a restarted one or another instance takes it up at that
 * instant (at the first poll after it) and not before; that run re-streams the segment, and the
 * claims and the ledger skip what is done (the resume path of any broadcast).
 * Several daemons poll the same collection: the lease lets exactly one of them run it, and
 * the claims would keep a message from going out twice even if two ran.
 *
 * It talks only to ports (BroadcastStore, RecipientSource, ClaimStore, the queue, the recorder),
 * so it lives in core; the composition root hands it the MongoDB adapters. The broadcast's
 * compiled content goes to its run, whose deliveries carry it to the transport.
 */
import type { Logger } from 'pino';
import {
  FINAL_STATUSES,
  type BroadcastCounters,
  type BroadcastDoc,
  type BroadcastQueue,
  type BroadcastStore,
  type ControlAction,
  type IsAlive,
  type OutcomeFlusher,
  type RecipientSource,
} from '../ports/broadcasts.js';
import { systemClock, type Clock } from '../ports/clock.js';
import type { ClaimStore, EventRecorder, Outcome } from '../ports/index.js';
import { backoffDelay, type BackoffPolicy } from './backoff.js';
import { BroadcastRun, type RunResult } from './broadcast-run.js';
import { parseSegment, recipientFilter } from './segment.js';
import { SendWindow, type QuietHours } from './send-window.js';
import { compileTemplates, type TemplateSet } from './templates.js';
import type { FieldMap } from './validate-user.js';

export interface BroadcastSupervisorDeps {
  store: BroadcastStore;
  recipients: RecipientSource;
  /** This daemon's instance id and the heartbeat check of others (InstanceRegistry). */
  instance: { id: string; isAlive: IsAlive };
  claims: Pick<ClaimStore, 'claim' | 'release' | 'complete'>;
  queue: BroadcastQueue;
  recorder: OutcomeFlusher;
  events: EventRecorder;
  isSuppressed(email: string): boolean;
  fields: FieldMap;
  /** The poll timer, due instants, retry times and timestamps; default the system clock. */
  clock?: Clock | undefined;
}

export interface BroadcastSupervisorOptions {
  /** Users per batch: one cursor batch, one bulk claim, one checkpoint; bounds crash duplicates. */
  batchSize: number;
  /** How often open broadcasts are looked at, ms. */
  pollMs: number;
  /** How often a running batch re-reads pause/cancel requests and publishes progress, ms. */
  controlPollMs: number;
  /** Broadcasts this daemon runs at once. */
  maxConcurrent: number;
  /** Most messages of one broadcast in the send queue at once. */
  feedAhead: number;
  /** How long an interrupted batch waits for its sends in flight, ms. */
  drainTimeoutMs: number;
  /** Quiet hours for broadcast mail (config `quietHours.broadcasts`); start/end null: none. */
  quietHours?: { start: string | null; end: string | null; maxHoldMinutes: number } | undefined;
}

/** What a daemon should do with an open broadcast, given its status and the latest request. */
export type Decision = 'run' | 'paused' | 'cancelled' | undefined;

export function decide(doc: Pick<BroadcastDoc, 'status' | 'at' | 'nextAt'>, action: ControlAction | undefined, now: number): Decision {
  if (action === 'cancel') return 'cancelled';
  // A broadcast scheduled with --at never starts early, even when resumed before its instant;
  // nor one whose every recipient left is held until `nextAt` (local time, quiet hours).
  const due = (doc.at === undefined || doc.at.getTime() <= now) && (doc.nextAt === undefined || doc.nextAt.getTime() <= now);
  switch (doc.status) {
    case 'queued':
      if (action === 'pause') return 'paused';
      return due ? 'run' : undefined;
    case 'paused':
      return action === 'resume' && due ? 'run' : undefined;
    case 'running':
      return action === 'pause' ? 'paused' : due ? 'run' : undefined;
    default:
      return undefined;
  }
}

interface Active {
  run: BroadcastRun;
  gen: number;
  done: Promise<void>;
}

/**
 * Backoff before a broadcast is taken up again after its run failed on an error (MongoDB
 * unreachable, cursor lost): 2 s doubling to 60 s. After an `incomplete` run, the same, but never
 * sooner than the next poll.
 */
export const RUN_RETRY: BackoffPolicy = { baseMs: 2_000, maxMs: 60_000, jitter: 'none' };

export class BroadcastSupervisor {
  readonly #deps: BroadcastSupervisorDeps;
  readonly #opts: BroadcastSupervisorOptions;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #active = new Map<string, Active>();
  /** Per broadcast: not before `at` (clock.now()), after `failures` failed or incomplete runs. */
  readonly #retry = new Map<string, { at: number; failures: number }>();
  #started = false;
  #timer: unknown;
  #polling: Promise<void> | undefined;
  #stopping = false;
  #stopped: Promise<void> | undefined;
  readonly stats = { started: 0, done: 0, incomplete: 0, waiting: 0, paused: 0, cancelled: 0, superseded: 0, stopped: 0, errors: 0 };

  constructor(deps: BroadcastSupervisorDeps, opts: BroadcastSupervisorOptions, log: Logger) {
    this.#deps = deps;
    this.#opts = opts;
    this.#log = log;
    this.#clock = deps.clock ?? systemClock;
  }

  /** The broadcasts this supervisor serves. */
  get store(): BroadcastStore {
    return this.#deps.store;
  }

  start(): void {
    if (this.#started || this.#stopping) return;
    this.#started = true;
    this.#arm();
    void this.poll();
  }

  /** The poll timer: one tick every `pollMs`, re-armed after each (an interval on the clock). */
  #arm(): void {
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      if (this.#stopping) return;
      void this.poll();
      this.#arm();
    }, this.#opts.pollMs);
  }

  /** One look at the open broadcasts (also called by tests). Never overlaps itself; never throws. */
  poll(): Promise<void> {
    this.#polling ??= this.#poll()
      .catch((err: unknown) => this.#log.error({ err }, 'broadcast poll failed'))
      .finally(() => (this.#polling = undefined));
    return this.#polling;
  }

  /** Routes a send outcome to the run of its broadcast. */
  onOutcome(outcome: Pick<Outcome, 'delivery' | 'status'>): void {
    const id = outcome.delivery.broadcastId;
    if (outcome.delivery.kind !== 'broadcast' || id === undefined) return;
    this.#active.get(id)?.run.onOutcome(outcome.delivery.key, outcome.status);
  }

  /** Running broadcasts and their progress, for `/stats`. */
  running(): Array<{ id: string; gen: number; processed: number } & BroadcastCounters> {
    return [...this.#active].map(([id, a]) => ({ id, gen: a.gen, processed: a.run.checkpoint?.processed ?? 0, ...a.run.counters }));
  }

  /**
   * Stops polling; running broadcasts hand back what is queued and wait for their sends in
   * flight, publish their counters and release their lease (status stays `running`, so the next
   * daemon to start takes them over at once). Idempotent.
   */
  stop(): Promise<void> {
    this.#stopped ??= (async () => {
      this.#stopping = true;
      if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
      this.#timer = undefined;
      await this.#polling;
      const active = [...this.#active.values()];
      await Promise.all(active.map((a) => a.run.stop()));
      await Promise.all(active.map((a) => a.done));
    })();
    return this.#stopped;
  }

  async #poll(): Promise<void> {
    const docs = await this.#deps.store.open();
    for (const doc of docs) {
      if (this.#stopping) return;
      if (this.#active.has(doc._id)) continue;
      const retry = this.#retry.get(doc._id);
      if (retry !== undefined && this.#clock.now() < retry.at) continue;
      try {
        await this.#consider(doc);
      } catch (err) {
        this.#log.error({ err, broadcast: doc._id }, 'could not take up broadcast');
      }
    }
  }

  async #consider(doc: BroadcastDoc): Promise<void> {
    const { store, instance } = this.#deps;
    const first = decide(doc, await store.control(doc._id), this.#clock.now());
    if (first === undefined || (first === 'run' && this.#active.size >= this.#opts.maxConcurrent)) return;
    const gen = await store.acquire(doc, instance.id, instance.isAlive);
    if (gen === undefined) return;
    // Decide again under the lease: the previous holder may have moved it on just before.
    const fresh = await store.get(doc._id);
    const decision = fresh === undefined || FINAL_STATUSES.has(fresh.status) ? undefined : decide(fresh, await store.control(doc._id), this.#clock.now());
    if (fresh === undefined || decision === undefined || this.#stopping || (decision === 'run' && this.#active.size >= this.#opts.maxConcurrent)) {
      await store.releaseLease(doc._id, gen);
      return;
    }
    if (decision === 'run') {
      await this.#start(fresh, gen);
      return;
    }
    await store.update(doc._id, { status: decision, owner: instance.id, gen, ...(decision === 'cancelled' ? { finishedAt: new Date(this.#clock.now()) } : {}) });
    if (decision === 'cancelled') await store.dropLedger(doc._id);
    await store.releaseLease(doc._id, gen);
    this.#log.info({ broadcast: doc._id, status: decision }, 'broadcast request applied');
  }

  async #start(doc: BroadcastDoc, gen: number): Promise<void> {
    const { store, instance, recipients, fields } = this.#deps;
    const id = doc._id;
    let content: TemplateSet;
    let filter: ReturnType<typeof recipientFilter>;
    try {
      content = compileTemplates({ subject: doc.subject, text: doc.text, html: doc.html }, 'broadcast');
      filter = recipientFilter(parseSegment(doc.segment).filter, fields);
    } catch (err) {
      // Checked by the CLI before it was written; a document edited by hand can still be wrong.
      const error = (err as Error).message;
      this.#log.error({ broadcast: id, error }, 'broadcast cannot run');
      await store.update(id, { status: 'failed', error, owner: instance.id, gen, finishedAt: new Date(this.#clock.now()) });
      await store.releaseLease(id, gen);
      return;
    }
    await store.update(id, { status: 'running', owner: instance.id, gen, startedAt: doc.startedAt ?? new Date(this.#clock.now()) });
    const log = this.#log.child({ broadcast: id, gen });
    const run = new BroadcastRun(
      {
        broadcastId: id,
        content,
        recipients: recipients.stream(filter, this.#opts.batchSize),
        fields,
        claims: this.#deps.claims,
        queue: this.#deps.queue,
        recorder: this.#deps.recorder,
        events: this.#deps.events,
        isSuppressed: this.#deps.isSuppressed,
        store: store.runStore(id, gen, instance.id),
        total: doc.counters.total === undefined ? recipients.count(filter) : undefined,
        clock: this.#clock,
      },
      {
        feedAhead: this.#opts.feedAhead,
        controlPollMs: this.#opts.controlPollMs,
        drainTimeoutMs: this.#opts.drainTimeoutMs,
        baseline: doc.counters,
        dueAt: (doc.at ?? doc.createdAt).getTime(),
        window: this.#windowOf(doc),
        baselineZones: doc.zones,
      },
      log,
    );
    this.stats.started++;
    log.info({ resumed: gen > 1 }, 'broadcast run started');
    const done = run.run().then(
      (result) => this.#finish(id, gen, result),
      (err: unknown) => this.#failed(id, gen, err),
    );
    this.#active.set(id, {
      run,
      gen,
      done: done
        .catch((err: unknown) => log.error({ err }, 'broadcast run bookkeeping failed'))
        .finally(() => {
          this.#active.delete(id);
          // Let the next queued broadcast start now rather than at the next tick.
          if (!this.#stopping) void this.poll();
        }),
    });
  }

  /** When each recipient may be sent: a local-time wave and/or quiet hours; undefined: everyone now. */
  #windowOf(doc: BroadcastDoc): SendWindow | undefined {
    const q = this.#opts.quietHours;
    const quiet: QuietHours | undefined = q === undefined || q.start === null || q.end === null ? undefined : { start: q.start, end: q.end, maxHoldMinutes: q.maxHoldMinutes };
    if (doc.localTime === undefined && quiet === undefined) return undefined;
    return new SendWindow({ wave: doc.localTime, quiet, dueAt: (doc.at ?? doc.createdAt).getTime() });
  }

  async #finish(id: string, gen: number, result: RunResult): Promise<void> {
    const { store, instance } = this.#deps;
    this.stats[result.end]++;
    if (result.end !== 'incomplete') this.#retry.delete(id);
    if (result.end === 'superseded') return; // another daemon holds it now: not ours to write
    const base = { owner: instance.id, gen };
    switch (result.end) {
      case 'done':
      case 'cancelled':
        await store.update(id, { ...base, status: result.end, finishedAt: new Date(this.#clock.now()), ...(result.zones === undefined ? {} : { nextAt: null }) });
        await store.dropLedger(id);
        break;
      case 'waiting': {
        // Persisted, so no daemon (this one, a restarted one, another) rescans before it.
        const nextAt = new Date(result.nextAt ?? this.#clock.now() + this.#opts.pollMs);
        await store.update(id, { ...base, nextAt });
        this.#log.info({ broadcast: id, nextAt: nextAt.toISOString(), ...result.counters }, 'broadcast waits for recipients held until later (local time, quiet hours)');
        break;
      }
      case 'paused':
        await store.update(id, { ...base, status: 'paused' });
        break;
      case 'incomplete': {
        // Some keys are held by another live instance: look again once it has had time to
        // finish them or to be declared dead (its claims are then taken over), backing off
        // while it stays so (each look re-reads the segment).
        const failures = (this.#retry.get(id)?.failures ?? 0) + 1;
        const delay = Math.min(RUN_RETRY.maxMs, Math.max(this.#opts.pollMs, backoffDelay(RUN_RETRY, failures)));
        this.#retry.set(id, { at: this.#clock.now() + delay, failures });
        this.#log.warn({ broadcast: id, skipped: result.counters.skipped, retryInMs: delay }, 'broadcast reached the end with users claimed by another live instance; it will look again');
        break;
      }
      case 'stopped':
        break; // stays `running`: whoever starts next takes it over
    }
    await store.releaseLease(id, gen);
  }

  async #failed(id: string, gen: number, err: unknown): Promise<void> {
    this.stats.errors++;
    const failures = (this.#retry.get(id)?.failures ?? 0) + 1;
    const delay = backoffDelay(RUN_RETRY, failures);
    this.#retry.set(id, { at: this.#clock.now() + delay, failures });
    this.#log.error({ err, broadcast: id, retryInMs: delay }, 'broadcast run failed; it will be taken up again');
    // Best effort: the store may be what failed. The lease then lapses with this process.
    try {
      await this.#deps.store.update(id, { error: String((err as Error).message ?? err) });
      await this.#deps.store.releaseLease(id, gen);
    } catch (e) {
      this.#log.warn({ err: e, broadcast: id }, 'could not release the broadcast lease');
    }
  }
}
