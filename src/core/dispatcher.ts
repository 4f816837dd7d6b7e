/**
 * Dispatcher: turns due deliveries into sends. It claims delivery keys in bulk (so a rerun, a
 * restart or a second instance never sends a key twice), then feeds the claimed deliveries into
 * the send queue while keeping only a bounded number queued there (Bottleneck's per-job cost and
 * memory grow with its queue). On stop, every claim that never reached SMTP is released so that
 * a rerun of the minute sends it.
 *
 * Nothing here polls: it waits for room on the queue's `room()` promise, paces a spread on the
 * injected clock (woken early by a stop), and `idle()`/`stop()` wait on a signal raised as each
 * dispatch finishes.
 */
import type { Logger } from 'pino';
import { systemClock, type ClaimStore, type Clock, type Delivery, type DeliveryQueue, type EventRecorder } from '../ports/index.js';
import type { OutcomeRecorder } from './outcome-recorder.js';
import { Signal } from './signal.js';

export interface DispatcherOptions {
  /** Keys per bulk claim. */
  claimBatch: number;
  /** Most deliveries waiting inside the send queue at once. */
  maxQueued: number;
  /** How long a graceful stop lets in-flight sends finish. */
  drainTimeoutMs: number;
  /**
   * Spread one dispatch's deliveries evenly over this many ms instead of queueing them at once,
   * so a peak minute does not reach the provider as one burst (0: off).
   */
  spreadMs?: number;
}

export interface DispatchResult {
  claimed: number;
  skipped: number;
  /** Not sent (nor claimed): the address is on the suppression list. */
  suppressed: number;
}

export class Dispatcher {
  readonly #claims: ClaimStore;
  readonly #queue: DeliveryQueue;
  readonly #recorder: OutcomeRecorder;
  readonly #events: EventRecorder;
  readonly #isSuppressed: (email: string) => boolean;
  readonly #opts: DispatcherOptions;
  readonly #log: Logger;
  readonly #clock: Clock;
  /** Claimed here and not yet handed to the queue; released on stop. */
  readonly #unfed = new Set<Delivery>();
  #stopping = false;
  #stopped: Promise<void> | undefined;
  /** Notified when a stop begins: wakes a spread's wait. */
  readonly #stopBegun = new Signal();
  /** Dispatches running. */
  #active = 0;
  /** Notified when a dispatch finishes or a stop empties #unfed. */
  readonly #settled = new Signal();
  /**
   * Counters since construction. For benchmarks: `claimMs` is the time bulk claims took (the
   * claim store's speed), `claimWaitMs` the part of it the feed had to wait for.
   */
  readonly stats = { claimed: 0, skipped: 0, suppressed: 0, released: 0, claimMs: 0, claimWaitMs: 0 };

  constructor(
    deps: {
      claims: ClaimStore;
      queue: DeliveryQueue;
      recorder: OutcomeRecorder;
      events: EventRecorder;
      /** Addresses never to send to (unsubscribed, bounced). Default: none. */
      isSuppressed?: (email: string) => boolean;
      /** Time for the spread, the `at` of events and the claim timings. Default: the system clock. */
      clock?: Clock;
    },
    opts: DispatcherOptions,
    log: Logger,
  ) {
    this.#claims = deps.claims;
    this.#queue = deps.queue;
    this.#recorder = deps.recorder;
    this.#events = deps.events;
    this.#isSuppressed = deps.isSuppressed ?? (() => false);
    this.#opts = opts;
    this.#log = log;
    this.#clock = deps.clock ?? systemClock;
  }

  /** Deliveries claimed but not yet in the send queue. */
  get backlog(): number {
    return this.#unfed.size;
  }

  /**
   * Claims and queues `deliveries`. Resolves when all of them are in the send queue (not sent:
   * use `idle()` for that), or when a stop interrupts.
   */
  async dispatch(deliveries: readonly Delivery[]): Promise<DispatchResult> {
    const result: DispatchResult = { claimed: 0, skipped: 0, suppressed: 0 };
    const spreadMs = this.#opts.spreadMs ?? 0;
    const startedAt = this.#clock.now();
    const step = this.#opts.claimBatch;
    let position = 0;
    this.#active++;
    // The next chunk is claimed while this one is fed: a bulk claim is a database round trip
    // (about 145 ms for 1,000 keys on FerretDB) that the send queue would otherwise wait for
    // between chunks. Claimed keys wait in #unfed, so a stop releases them like any other.
    const claimAt = (i: number): Promise<Delivery[]> | undefined => {
      if (i >= deliveries.length || this.#stopping) return undefined;
      const p = this.#claimChunk(deliveries.slice(i, i + step), result);
      p.catch(() => undefined); // handled where it is awaited
      return p;
    };
    let next = claimAt(0);
    try {
      for (let i = 0; next !== undefined; i += step) {
        const waitStart = this.#clock.monotonic();
        const mine = await next;
        this.stats.claimWaitMs += this.#clock.monotonic() - waitStart;
        next = claimAt(i + step);
        for (const d of mine) {
          if (spreadMs > 0) await this.#until(startedAt + Math.floor((position++ * spreadMs) / deliveries.length));
          await this.#room();
          if (this.#stopping) break;
          this.#unfed.delete(d);
          this.#queue.submit(d);
        }
      }
    } finally {
      // A claim still in flight lands its keys in #unfed before the stop (waiting for #active)
      // releases them.
      await next?.catch(() => undefined);
      this.#active--;
      this.#settled.notify();
    }
    return result;
  }

  /** Filters out suppressed addresses, claims the rest in bulk; what this instance won waits in #unfed. */
  async #claimChunk(chunk: readonly Delivery[], result: DispatchResult): Promise<Delivery[]> {
    const wanted: Delivery[] = [];
    for (const d of chunk) {
      if (!this.#isSuppressed(d.email)) wanted.push(d);
      else {
        result.suppressed++;
        this.stats.suppressed++;
        await this.#events.record({ type: 'suppressed', at: new Date(this.#clock.now()), key: d.key, kind: d.kind, userId: d.userId, reason: 'address is on the suppression list' });
      }
    }
    const byKey = new Map(wanted.map((d) => [d.key, d]));
    const claimStart = this.#clock.monotonic();
    const { claimed, taken } = await this.#claims.claim([...byKey.keys()], { recipients: byKey });
    this.stats.claimMs += this.#clock.monotonic() - claimStart;
    result.claimed += claimed.length;
    result.skipped += taken.length;
    // Counted per chunk, not at the end of the dispatch: run-minute's progress lines and /metrics
    // read them while a long dispatch is still feeding the queue.
    this.stats.claimed += claimed.length;
    this.stats.skipped += taken.length;
    for (const key of taken) {
      const d = byKey.get(key);
      if (d) await this.#events.record({ type: 'skipped', at: new Date(this.#clock.now()), key, kind: d.kind, userId: d.userId, reason: 'already claimed' });
    }
    const mine = claimed.flatMap((k) => byKey.get(k) ?? []);
    for (const d of mine) this.#unfed.add(d);
    return mine;
  }

  /** Resolves when everything dispatched so far has an outcome. */
  async idle(): Promise<void> {
    while (this.#active > 0 || this.#unfed.size > 0) await this.#settled.wait();
    await this.#queue.idle();
    await this.#recorder.flush();
  }

  /**
   * Graceful stop: no new sends, in-flight sends get `drainTimeoutMs`, unsent claims go back.
   * Idempotent.
   */
  stop(): Promise<void> {
    this.#stopped ??= this.#stop();
    return this.#stopped;
  }

  async #stop(): Promise<void> {
    this.#stopping = true;
    this.#stopBegun.notify();
    const { released, abandoned } = await this.#queue.stop(this.#opts.drainTimeoutMs);
    // A dispatch may still be waiting on a claim round trip; its keys land in #unfed when it
    // returns, and must be released with the rest.
    while (this.#active > 0) await this.#settled.wait();
    const give = [...released, ...this.#unfed].map((d) => d.key);
    this.#unfed.clear();
    this.#settled.notify();
    await this.#recorder.flush();
    if (give.length > 0) {
      await this.#claims.release(give);
      this.stats.released += give.length;
    }
    if (abandoned.length > 0) {
      // Outcome unknown: their claims stay, and crash recovery decides once this instance is gone.
      this.#log.warn({ count: abandoned.length }, 'sends still in flight at the drain deadline; their outcome is unknown');
    }
    this.#log.info({ released: give.length, abandoned: abandoned.length }, 'dispatcher stopped');
  }

  /** Waits until `at` (epoch ms on the clock), or until a stop. */
  async #until(at: number): Promise<void> {
    const wait = at - this.#clock.now();
    if (!this.#stopping && wait > 0) await this.#stopBegun.sleep(this.#clock, wait);
  }

  /**
   * Waits while the send queue holds `maxQueued` or more: the queue resolves `room()` as sends
   * start, and when it stops (a stop here stops the queue first).
   */
  async #room(): Promise<void> {
    if (!this.#stopping) await this.#queue.room(this.#opts.maxQueued);
  }
}
