/**
 * Catch-up after downtime (docs/ARCHITECTURE.md "Delivery contract"): fires missed while the daemon was down
 * are sent on start when they are younger than a grace period, and recorded as `missed` otherwise,
 * never silently dropped.
 *
 * How it knows what was missed: the daemon persists a checkpoint, the last minute M such that
 * every fire at or before M has an outcome (see {@link MinuteLedger}). At start the user sync
 * schedules every slot from M + 1 instead of from now, so the fires in between land in overdue
 * buckets, and the scheduler fires them at once; {@link CatchUp.split} then decides, per fire, send
 * or `missed`. Re-firing a key that did go out is harmless: its claim says so.
 *
 * In a cluster the same rule holds for a partition taken over from another instance (a dead one,
 * or one that left): its users are scheduled from the partition's mark + 1 minute, and the age of
 * each of its overdue fires is taken at the takeover instant ({@link CatchUp.takeOver}).
 *
 * Pure apart from the ports it is given (claims, events, clock); the start instant is passed in.
 */
import type { Logger } from 'pino';
import { systemClock, type ClaimStore, type Clock, type Delivery, type EventRecorder } from '../ports/index.js';
import { partitionOf } from './partition.js';
import { MINUTE_MS, SECOND_MS, minuteStart } from './time.js';

export interface CatchUpOptions {
  /** A missed fire younger than this at start-up is still sent (ms). */
  graceMs: number;
  /**
   * How far back the start-up backfill enumerates fires (ms). Older ones are not enumerated one
   * by one (a month of downtime would be millions of records); the uncovered range is logged and
   * recorded as one `missed` event instead.
   */
  lookbackMs: number;
}

/** Where the start-up sync schedules from, and what it leaves out. */
export interface CatchUpPlan {
  /** Schedule every slot from this instant (ms since the epoch). */
  fromMs: number;
  /** Minutes since the checkpoint that the backfill covers (0 on a first start). */
  minutes: number;
  /** Downtime beyond the lookback: fires in [fromMs, toMs) are not enumerated. */
  uncovered?: { fromMs: number; toMs: number };
}

/**
 * @param lastMinute the persisted checkpoint (epoch minute), or undefined on a first start.
 * @param nowMs the start instant.
 */
export function planCatchUp(lastMinute: number | undefined, nowMs: number, opts: CatchUpOptions): CatchUpPlan {
  const currentStart = minuteStart(nowMs);
  // First start: nothing is known about the past; schedule from the start of this minute so a
  // slot due now is not pushed to tomorrow.
  if (lastMinute === undefined) return { fromMs: currentStart, minutes: 0 };
  const resumeMs = (lastMinute + 1) * MINUTE_MS;
  // A checkpoint at or after this minute (another instance is running, or a restart within the
  // minute) leaves nothing to backfill beyond what the next minutes bring.
  if (resumeMs >= currentStart) return { fromMs: Math.min(resumeMs, currentStart + MINUTE_MS), minutes: 0 };
  const floorMs = minuteStart(nowMs - opts.lookbackMs);
  if (resumeMs >= floorMs) return { fromMs: resumeMs, minutes: (currentStart - resumeMs) / MINUTE_MS };
  return { fromMs: floorMs, minutes: (currentStart - floorMs) / MINUTE_MS, uncovered: { fromMs: resumeMs, toMs: floorMs } };
}

/**
 * Counts, per due minute, the deliveries handed out that have no outcome yet, so the checkpoint
 * never moves past a minute with a send still pending, released at a stop, or lost in a crash.
 */
export class MinuteLedger {
  readonly #open = new Map<number, number>();

  /** `n` deliveries of `minute` were handed out. */
  begin(minute: number, n: number): void {
    if (n <= 0) return;
    this.#open.set(minute, (this.#open.get(minute) ?? 0) + n);
  }

  /** `n` deliveries of `minute` have an outcome (sent, failed, skipped, suppressed, missed). */
  settle(minute: number, n = 1): void {
    const left = (this.#open.get(minute) ?? 0) - n;
    if (left > 0) this.#open.set(minute, left);
    else this.#open.delete(minute);
  }

  /** Deliveries without an outcome. */
  get open(): number {
    let n = 0;
    for (const v of this.#open.values()) n += v;
    return n;
  }

  /**
   * The checkpoint: `processed` (the scheduler's last processed minute) unless a minute at or
   * before it still has deliveries open, then the minute before the earliest of those.
   */
  mark(processed: number | undefined): number | undefined {
    if (processed === undefined) return undefined;
    let earliest = Infinity;
    for (const m of this.#open.keys()) if (m < earliest) earliest = m;
    return earliest <= processed ? earliest - 1 : processed;
  }
}

/** Decides send-or-missed for start-up backfill fires and records the missed ones once. */
export class CatchUp {
  readonly #claims: ClaimStore;
  readonly #events: EventRecorder;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly opts: CatchUpOptions;
  #startMs: number | undefined;
  /** Cluster: the partition count, and when this instance last took each partition over. */
  #partitions = 0;
  readonly #takenAt = new Map<number, number>();
  readonly stats = { missed: 0, lateSent: 0 };

  constructor(deps: { claims: ClaimStore; events: EventRecorder; clock?: Clock }, opts: CatchUpOptions, log: Logger) {
    this.#claims = deps.claims;
    this.#clock = deps.clock ?? systemClock;
    this.#events = deps.events;
    this.opts = opts;
    this.#log = log;
  }

  /**
   * Turns the age check on, measured from `startMs`. Only the daemon does this: `run-minute` is an
   * operator replaying a minute on purpose, and sends whatever its age.
   */
  begin(startMs: number): void {
    this.#startMs = startMs;
  }

  /**
   * Cluster: this instance took `partitions` (of `count`) over at `atMs`. Their fires due before
   * then fell due while another instance held them or nobody did: each is sent when younger than
   * the grace period at `atMs`, else recorded `missed`, exactly like fires missed while down.
   */
  takeOver(partitions: readonly number[], count: number, atMs: number): void {
    this.#partitions = count;
    for (const p of partitions) this.#takenAt.set(p, atMs);
  }

  /** The instant a delivery's age is taken at: the start, or its partition's takeover if later. */
  #reference(d: Delivery): { at: number; takeover: boolean } | undefined {
    const start = this.#startMs;
    if (start === undefined) return undefined;
    if (this.#takenAt.size === 0) return { at: start, takeover: false };
    const taken = this.#takenAt.get(partitionOf(d.userId, this.#partitions));
    return taken !== undefined && taken > start ? { at: taken, takeover: true } : { at: start, takeover: false };
  }

  /**
   * Splits one due minute's deliveries. Only fires due before the start can be missed, and their
   * age is taken at the start instant, so neither a slow backfill nor a long queue after the
   * start (a 09:00 peak that takes 20 minutes to drain) ever turns a fire into `missed`.
   */
  split(deliveries: readonly Delivery[]): { send: Delivery[]; missed: Delivery[] } {
    if (this.#startMs === undefined) return { send: [...deliveries], missed: [] };
    const send: Delivery[] = [];
    const missed: Delivery[] = [];
    for (const d of deliveries) {
      const start = (this.#reference(d) as { at: number }).at;
      if (d.dueAt >= start) send.push(d);
      else if (start - d.dueAt <= this.opts.graceMs) {
        send.push(d);
        this.stats.lateSent++;
      } else missed.push(d);
    }
    return { send, missed };
  }

  /**
   * Records each missed delivery once, across restarts and instances: its key is claimed like a
   * send and completed with status `missed`. A key already claimed was sent (or is owned) by
   * someone: nothing to record.
   * @returns the number of `missed` events recorded.
   */
  async recordMissed(deliveries: readonly Delivery[]): Promise<number> {
    if (deliveries.length === 0) return 0;
    const byKey = new Map(deliveries.map((d) => [d.key, d]));
    const { claimed } = await this.#claims.claim([...byKey.keys()]);
    for (const key of claimed) {
      const d = byKey.get(key);
      if (d === undefined) continue;
      const ref = this.#reference(d) ?? { at: this.#clock.now(), takeover: false };
      const ageS = Math.round((ref.at - d.dueAt) / SECOND_MS);
      const when = ref.takeover ? 'before this instance took its partition over' : 'before the daemon started';
      await this.#events.record({
        type: 'missed',
        at: new Date(this.#clock.now()),
        key,
        kind: d.kind,
        userId: d.userId,
        reason: `due ${new Date(d.dueAt).toISOString()}, ${ageS} s ${when} (grace ${Math.round(this.opts.graceMs / SECOND_MS)} s)`,
      });
    }
    await this.#claims.complete(claimed.map((key) => ({ key, status: 'missed' as const })));
    this.stats.missed += claimed.length;
    if (claimed.length > 0) this.#log.warn({ missed: claimed.length, alreadyClaimed: deliveries.length - claimed.length }, 'fires missed while the daemon was down recorded as missed');
    return claimed.length;
  }

  /** Downtime beyond the lookback: one log line and one `missed` event for the whole range. */
  async recordUncovered(range: { fromMs: number; toMs: number }): Promise<void> {
    const from = new Date(range.fromMs).toISOString();
    const to = new Date(range.toMs).toISOString();
    this.#log.error({ from, to }, 'daemon was down longer than the catch-up lookback: fires in this range are not enumerated');
    await this.#events.record({ type: 'missed', at: new Date(this.#clock.now()), reason: `fires from ${from} to ${to} not enumerated: downtime longer than the catch-up lookback` });
  }
}
