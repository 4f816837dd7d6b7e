/**
 * What an instance does with its share of the partitions (docs/ARCHITECTURE.md "Several
 * instances"), against the ClusterMember port whatever engine leases them:
 *
 * - Start: each owned partition is scheduled from its own mark + 1 minute (PartitionMarks), so the
 *   fires that fell due while nobody held it are caught up exactly like fires missed while down.
 * - Gain: one streamed read of the users, filtered to the gained partitions, each scheduled from
 *   its mark; their overdue fires are judged at the takeover instant (CatchUp.takeOver): sent
 *   within the grace period, else recorded `missed`. Anything the old owner did send is deduped by
 *   its claim.
 * - Loss: the lost partitions' mark is written first (the handler runs before the lease is given
 *   back), then their users are dropped from the registry.
 * - Marks: with the checkpoint's timer, the ledger mark is written for the owned partitions when
 *   it moves (one bulk write). A partition gained while the scheduler's processed minute was G
 *   gets marks only once that minute has passed G: its overdue fires have been handed out (begun
 *   in the ledger) by then, so a crash right after a gain never leaves a mark past a fire that
 *   was never handed out.
 *
 * - Second look: a claim left unfinished by an owner that died looks busy until its heartbeat is
 *   older than `send.claimStaleMs`, longer than a lease takes to move, so the gap fires the dead
 *   owner had in flight come back "taken" at the takeover. Once that time has passed, the gained
 *   partitions' gap fires are handed out once more: those sent are skipped by their claims, and
 *   the abandoned ones are taken over and sent (judged at the takeover instant, like the rest).
 *
 * A partition with no mark yet (a database the solo daemon ran on, or a new one) starts from the
 * global checkpoint, or from now on a first start; it is pinned there at once, so a crash of its
 * first owner cannot let the global checkpoint, which other instances keep moving, skip its fires.
 */
import type { Logger } from 'pino';
import type { ClusterMember, PartitionChange, PartitionMarks } from '../ports/cluster.js';
import type { Clock } from '../ports/clock.js';
import { planCatchUp, type CatchUp, type CatchUpPlan, type MinuteLedger } from './catch-up.js';
import { epochMinute, minuteStart } from './time.js';
import type { UserSync } from './user-sync.js';

export interface PartitionSyncDeps {
  member: Pick<ClusterMember, 'partitions' | 'owned'>;
  marks: PartitionMarks;
  sync: UserSync;
  catchUp: CatchUp;
  ledger: MinuteLedger;
  /** The scheduler's last processed minute (or the start's resume point before the first tick). */
  processed: () => number | undefined;
  /** The global scheduler checkpoint, for partitions that have no mark yet. */
  globalCheckpoint: () => Promise<number | undefined>;
  /** Jobs were added to minutes already due: fire them now (MinuteScheduler.wake). */
  wake: () => void;
  /** When to re-fire a takeover's gap (ms after it): past `send.claimStaleMs`. 0 or absent: never. */
  secondLookMs?: number;
  clock: Clock;
}

export class PartitionSync {
  readonly #d: PartitionSyncDeps;
  readonly #log: Logger;
  /** Owned partitions whose mark this instance writes, with the minute it last wrote. */
  readonly #ready = new Map<number, number | undefined>();
  /** Gained partitions waiting for the processed minute to pass the one they were loaded at. */
  readonly #pending = new Map<number, number>();
  readonly #timers = new Set<unknown>();
  #stopped = false;
  readonly stats = { gained: 0, lost: 0, markWrites: 0, markErrors: 0, secondLooks: 0 };

  constructor(deps: PartitionSyncDeps, log: Logger) {
    this.#d = deps;
    this.#log = log;
  }

  /** Partitions whose mark is written, and those gained but not yet eligible (for tests and stats). */
  get marked(): { ready: number[]; pending: number[] } {
    return { ready: [...this.#ready.keys()].sort((a, b) => a - b), pending: [...this.#pending.keys()].sort((a, b) => a - b) };
  }

  /**
   * The start of a partitioned daemon, after the member's first round and before the first full
   * sync: the sync holds only the owned partitions, each from its own catch-up plan.
   * @param checkpoint the global checkpoint, loaded by the start
   * @returns each owned partition's start instant, and the minute before the earliest of them
   */
  async start(nowMs: number, checkpoint: number | undefined): Promise<{ from: Map<number, number>; resumedAfter: number }> {
    const owned = [...this.#d.member.owned()];
    this.#d.sync.partition(this.#d.member.partitions, owned);
    const from = await this.#plan(owned, nowMs, checkpoint);
    // Nothing fires before the full sync is done and the scheduler started, so every partition's
    // fires are handed out in minute order from its start: its marks may be written at once.
    for (const p of owned) this.#ready.set(p, undefined);
    let earliest = minuteStart(nowMs);
    for (const ms of from.values()) earliest = Math.min(earliest, ms);
    return { from, resumedAfter: epochMinute(earliest) - 1 };
  }

  /** Cancels the pending second looks (the daemon is stopping). */
  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers) this.#d.clock.clearTimeout(t);
    this.#timers.clear();
  }

  /** The member's onChange handler: loss first (mark, then drop), then the gain. */
  async handle(change: PartitionChange): Promise<void> {
    if (this.#stopped) return;
    if (change.lost.length > 0) await this.#lose(change.lost);
    if (change.gained.length > 0) await this.#gain(change.gained);
  }

  /** Writes the ledger mark for the owned partitions when it moved (one bulk write). Never throws. */
  async write(): Promise<void> {
    const mark = this.#mark();
    if (mark === undefined) return;
    await this.#save([...this.#ready].filter(([, w]) => w === undefined || w < mark).map(([p]) => p), mark);
  }

  async #lose(lost: readonly number[]): Promise<void> {
    const mark = this.#mark();
    if (mark !== undefined) await this.#save(lost.filter((p) => { const w = this.#ready.get(p); return this.#ready.has(p) && (w === undefined || w < mark); }), mark);
    for (const p of lost) {
      this.#ready.delete(p);
      this.#pending.delete(p);
    }
    this.stats.lost += lost.length;
    await this.#d.sync.drop(lost);
  }

  async #gain(partitions: readonly number[]): Promise<void> {
    const { clock, catchUp, member, sync } = this.#d;
    const started = clock.now();
    // A partition already held (in the start's snapshot of the owned set) is loaded already.
    const gained = partitions.filter((p) => sync.owned?.has(p) !== true);
    if (gained.length === 0) return;
    // Fires due before now fell due while another instance held these partitions, or nobody.
    catchUp.takeOver(gained, member.partitions, started);
    const from = await this.#plan(gained, started, await this.#d.globalCheckpoint());
    const report = await sync.gain(from);
    const g = this.#d.processed() ?? -1;
    for (const p of from.keys()) if (!this.#ready.has(p)) this.#pending.set(p, g);
    this.stats.gained += gained.length;
    this.#d.wake();
    this.#log.info({ gained: gained.length, users: report.valid, jobs: report.jobs, ms: clock.now() - started }, 'users of gained partitions loaded, scheduled from their marks');
    const after = this.#d.secondLookMs ?? 0;
    if (after > 0 && !this.#stopped) {
      const timer = clock.setTimeout(() => {
        this.#timers.delete(timer);
        void this.#secondLook(from).catch((err: unknown) => this.#log.warn({ err }, 'second look at taken-over partitions failed'));
      }, after);
      this.#timers.add(timer);
    }
  }

  async #secondLook(from: ReadonlyMap<number, number>): Promise<void> {
    if (this.#stopped) return;
    const report = await this.#d.sync.gain(from, true);
    if (report.read === 0 && report.valid === 0) return;
    // Fires of minutes already marked may be handed out again: hold the marks until they are.
    const g = this.#d.processed() ?? -1;
    for (const p of from.keys()) {
      if (this.#d.sync.owned?.has(p) !== true) continue;
      this.#ready.delete(p);
      this.#pending.set(p, g);
    }
    this.stats.secondLooks++;
    this.#d.wake();
    this.#log.info({ partitions: from.size, users: report.valid }, 'gap fires of taken-over partitions handed out again (abandoned claims are taken over now)');
  }

  /**
   * Each partition's start instant from its mark (or the fallback), the uncovered ranges recorded
   * once each, and partitions with no mark pinned at the minute before their start.
   */
  async #plan(partitions: readonly number[], nowMs: number, fallback: number | undefined): Promise<Map<number, number>> {
    const marks = await this.#d.marks.load(partitions);
    const plans = new Map<string, { plan: CatchUpPlan; partitions: number[]; pin: number[] }>();
    for (const p of partitions) {
      const mark = marks.get(p);
      const plan = planCatchUp(mark ?? fallback, nowMs, this.#d.catchUp.opts);
      const key = `${plan.fromMs}|${plan.uncovered?.fromMs ?? ''}`;
      let group = plans.get(key);
      if (group === undefined) plans.set(key, (group = { plan, partitions: [], pin: [] }));
      group.partitions.push(p);
      if (mark === undefined) group.pin.push(p);
    }
    const from = new Map<number, number>();
    for (const { plan, partitions: ps, pin } of plans.values()) {
      for (const p of ps) from.set(p, plan.fromMs);
      if (plan.uncovered) await this.#d.catchUp.recordUncovered(plan.uncovered);
      if (plan.minutes > 0) this.#log.info({ partitions: ps.length, since: new Date(plan.fromMs).toISOString(), minutes: plan.minutes }, 'catching up on fires of partitions nobody held');
      await this.#save(pin, epochMinute(plan.fromMs) - 1);
    }
    return from;
  }

  /** The ledger mark, after promoting the gained partitions whose overdue fires are handed out. */
  #mark(): number | undefined {
    const processed = this.#d.processed();
    if (processed === undefined) return undefined;
    for (const [p, g] of this.#pending) {
      if (processed > g) {
        this.#pending.delete(p);
        this.#ready.set(p, undefined);
      }
    }
    return this.#d.ledger.mark(processed);
  }

  async #save(partitions: readonly number[], minute: number): Promise<void> {
    if (partitions.length === 0) return;
    try {
      await this.#d.marks.save(partitions, minute);
      for (const p of partitions) if (this.#ready.has(p)) this.#ready.set(p, minute);
      this.stats.markWrites++;
    } catch (err) {
      this.stats.markErrors++;
      this.#log.warn({ err, partitions: partitions.length, minute }, 'could not save the partition marks; will retry');
    }
  }
}
