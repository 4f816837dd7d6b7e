/**
 * UserSync: reads users from the user source and keeps the job registry in step with them.
 * A full sync streams every active user; an incremental sync reads only users whose `updatedAt`
 * moved since the last one. Each document is validated on its own: an invalid one is skipped with
 * one log line and one `invalid` event, and everybody else is served.
 *
 * In a cluster (docs/ARCHITECTURE.md "Several instances") an instance holds only the users of the
 * partitions it owns: every sync skips the others before validating them (no record, no job, no
 * `invalid` event: their owner reports those), and partitions are loaded and dropped here, under
 * the same lock as the syncs, so a full sync never sees the owned set change half-way.
 */
import type { Logger } from 'pino';
import { systemClock, type Clock, type EventRecorder, type RawUser, type UserSource } from '../ports/index.js';
import type { JobRegistry } from './job-registry.js';
import { partitionOf } from './partition.js';
import { MINUTE_MS } from './time.js';
import { checkUser, getField, idToString, type FieldMap } from './validate-user.js';

export interface SyncReport {
  /** `partitions`: the load of partitions this instance gained (cluster). */
  kind: 'full' | 'incremental' | 'partitions';
  read: number;
  valid: number;
  /** Of `valid`, users whose schedule the registry already held: left as they were. */
  unchanged: number;
  inactive: number;
  invalid: number;
  /** Users dropped from the registry because the sync no longer sees them (full sync only). */
  removed: number;
  jobs: number;
  ms: number;
  /** Incremental only: not run, because the last one's time would exceed the share (see UserSync). */
  deferred?: boolean;
}

/**
 * The incremental window overlaps the previous one by this much, because `updatedAt` is written
 * by application servers whose clocks may be a little behind ours. Re-reading a user is harmless.
 */
const CLOCK_SKEW_MS = MINUTE_MS;

export class UserSync {
  readonly #source: UserSource;
  readonly #registry: JobRegistry;
  readonly #events: EventRecorder;
  readonly #fields: FieldMap;
  readonly #clock: Clock;
  readonly #log: Logger;
  #lastSyncStart: number | undefined;
  /**
   * Invalid users already reported, with the reason. Incremental windows overlap and a full sync
   * rereads everyone, so without this an invalid user would be reported again at every sync;
   * it is reported once, and again only when its reason changes. Holds invalid users only.
   */
  readonly #reported = new Map<string, string>();
  #running: Promise<unknown> | undefined;
  lastReport: SyncReport | undefined;
  /** Cluster mode: the partition count and the partitions whose users are held. Undefined: everyone. */
  #share: { count: number; owned: Set<number> } | undefined;
  /** Share of wall time incremental syncs may take; the last one's start and duration. */
  readonly #maxShare: number;
  #lastIncremental: { start: number; ms: number } | undefined;

  constructor(
    deps: { source: UserSource; registry: JobRegistry; events: EventRecorder; clock?: Clock },
    fields: FieldMap,
    log: Logger,
    opts: { incrementalMaxShare?: number } = {},
  ) {
    this.#maxShare = opts.incrementalMaxShare ?? 1;
    this.#source = deps.source;
    this.#registry = deps.registry;
    this.#events = deps.events;
    this.#clock = deps.clock ?? systemClock;
    this.#fields = fields;
    this.#log = log;
  }

  /**
   * Cluster mode: from now on only users of the `owned` partitions (of `count`) are held. Called
   * once, before the first full sync; later moves go through {@link gain} and {@link drop}.
   */
  partition(count: number, owned: Iterable<number>): void {
    this.#share = { count, owned: new Set(owned) };
  }

  /** The partitions whose users are held (cluster mode), or undefined: every user. */
  get owned(): ReadonlySet<number> | undefined {
    return this.#share?.owned;
  }

  /**
   * Reads every active user and schedules their next fires at or after `fromMs` (or, in cluster
   * mode, at or after `perPartition`'s instant for the user's partition, when it has one).
   * Users in the registry that the sync no longer sees are cancelled.
   */
  full(fromMs: number = this.#clock.now(), perPartition?: ReadonlyMap<number, number>): Promise<SyncReport> {
    return this.#exclusive(() => this.#full(fromMs, perPartition), true);
  }

  /**
   * Reads users changed since the last sync; falls back to a full sync if there was none. Skipped
   * (a `deferred` report, nothing read) while the last incremental sync's duration would make
   * them take more than `incrementalMaxShare` of the time: the next one reads from the last
   * sync's start, so the window only grows.
   */
  incremental(): Promise<SyncReport> {
    return this.#exclusive(() => {
      if (this.#lastSyncStart === undefined) return this.#full(this.#clock.now());
      const last = this.#lastIncremental;
      const now = this.#clock.now();
      if (last !== undefined && now < last.start + last.ms / this.#maxShare) {
        const report = { ...newReport('incremental'), jobs: this.#registry.size, deferred: true };
        this.#log.info({ ...report, lastMs: last.ms, until: new Date(last.start + last.ms / this.#maxShare).toISOString() }, 'incremental user sync deferred');
        return Promise.resolve(report);
      }
      return this.#incremental();
    }, true);
  }

  /**
   * Cluster: takes on the users of newly owned partitions, each scheduled at or after its
   * partition's instant in `fromByPartition` (the catch-up plan from its mark), in one streamed
   * read of the active users. Partitions already held are left as they are, unless `again`:
   * then only partitions still held are read, and their users scheduled from those instants once
   * more (the second look after a takeover, core/partition-sync.ts).
   */
  gain(fromByPartition: ReadonlyMap<number, number>, again = false): Promise<SyncReport> {
    return this.#exclusive(async () => {
      const started = this.#clock.now();
      const report = newReport('partitions');
      const share = this.#share;
      const fresh = new Map([...fromByPartition].filter(([p]) => share !== undefined && share.owned.has(p) === again));
      if (share === undefined || fresh.size === 0) return this.#finish(report, started);
      for (const p of fresh.keys()) share.owned.add(p);
      for await (const batch of this.#source.allActive()) {
        await this.#apply(batch, started, report, { only: fresh });
      }
      return this.#finish(report, started);
    }, false);
  }

  /**
   * Cluster: lets go of partitions no longer owned: their users' jobs are cancelled (one pass
   * over the registry's users) and no later sync takes them on again.
   * @returns the users dropped.
   */
  drop(partitions: readonly number[]): Promise<number> {
    return this.#exclusive(async () => {
      const share = this.#share;
      if (share === undefined) return 0;
      const lost = new Set(partitions.filter((p) => share.owned.delete(p)));
      if (lost.size === 0) return 0;
      const inLost = (userId: string) => lost.has(partitionOf(userId, share.count));
      for (const userId of this.#reported.keys()) if (inLost(userId)) this.#reported.delete(userId);
      const { users, jobs } = this.#registry.cancelUsersWhere(inLost);
      this.#log.info({ partitions: lost.size, users, jobs }, 'users of partitions no longer owned dropped');
      return users;
    }, false);
  }

  /**
   * Syncs and partition moves never overlap: a cron tick during a long full sync waits for it,
   * then runs; a partition move waits too, so a full sync never sees the owned set change.
   */
  async #exclusive<T>(run: () => Promise<T>, isSync: boolean): Promise<T> {
    while (this.#running) await this.#running.catch(() => undefined);
    const running = run();
    this.#running = running;
    try {
      const result = await running;
      // A deferred incremental sync read nothing: the last report stays the last sync's.
      if (isSync && (result as SyncReport).deferred !== true) this.lastReport = result as SyncReport;
      return result;
    } finally {
      this.#running = undefined;
    }
  }

  async #full(fromMs: number, perPartition?: ReadonlyMap<number, number>): Promise<SyncReport> {
    const started = this.#clock.now();
    const report = newReport('full');
    const invalidNow = new Set<string>();
    // Each valid user read marks their row in the registry; whoever is left unmarked at the end
    // is gone (one byte per user rather than a set of every id for the length of the sync).
    this.#registry.beginSweep();
    for await (const batch of this.#source.allActive()) {
      await this.#apply(batch, fromMs, report, { invalidNow, keepUnchanged: true, ...(perPartition === undefined ? {} : { from: perPartition }) });
    }
    // Forget reported invalid users the full sync no longer sees (deleted or fixed and inactive).
    for (const userId of [...this.#reported.keys()]) if (!invalidNow.has(userId)) this.#reported.delete(userId);
    // Only held users are in the registry and only they are read (and marked), so a user of a
    // partition this instance does not own is never "gone" here.
    report.removed = this.#registry.endSweep();
    this.#lastSyncStart = started;
    return this.#finish(report, started);
  }

  async #incremental(): Promise<SyncReport> {
    const started = this.#clock.now();
    const since = new Date((this.#lastSyncStart ?? started) - CLOCK_SKEW_MS);
    const report = newReport('incremental');
    for await (const batch of this.#source.changedSince(since)) {
      await this.#apply(batch, started, report, { keepUnchanged: true });
    }
    this.#lastSyncStart = started;
    this.#lastIncremental = { start: started, ms: this.#clock.now() - started };
    return this.#finish(report, started);
  }

  /**
   * The partition of a raw document, or -1 in solo mode. Hashes the id as the registry keys it
   * (an id-less document hashes `(none)`), so exactly one instance reports an invalid one.
   */
  #partitionOf(doc: RawUser): number {
    const share = this.#share;
    if (share === undefined) return -1;
    return partitionOf(idToString(getField(doc, this.#fields.id)) ?? '(none)', share.count);
  }

  async #apply(batch: RawUser[], fromMs: number, report: SyncReport, opts: ApplyOptions = {}): Promise<void> {
    const share = this.#share;
    for (const doc of batch) {
      let from = fromMs;
      if (share !== undefined) {
        // Another instance's user: skipped before anything is built for it.
        const p = this.#partitionOf(doc);
        if (opts.only !== undefined) {
          const f = opts.only.get(p);
          if (f === undefined) continue;
          from = f;
        } else {
          if (!share.owned.has(p)) continue;
          from = opts.from?.get(p) ?? fromMs;
        }
      }
      report.read++;
      const r = checkUser(doc, this.#fields);
      if (r.kind === 'valid') {
        // A user whose schedule did not change keeps their jobs as they are: no allocation.
        if (opts.keepUnchanged === true && this.#registry.keepIfUnchanged(r.user, from)) report.unchanged++;
        else this.#registry.upsertUser(r.user, from);
        if (this.#reported.size > 0) this.#reported.delete(r.user.id);
        report.valid++;
      } else if (r.kind === 'inactive') {
        this.#registry.cancelUser(r.id);
        this.#reported.delete(r.id);
        report.inactive++;
      } else {
        this.#registry.cancelUser(r.id);
        opts.invalidNow?.add(r.id);
        report.invalid++;
        if (this.#reported.get(r.id) === r.reason) continue;
        this.#reported.set(r.id, r.reason);
        this.#log.warn({ userId: r.id, reason: r.reason }, 'invalid user skipped');
        await this.#events.record({ type: 'invalid', at: new Date(this.#clock.now()), userId: r.id, reason: r.reason });
      }
    }
  }

  #finish(report: SyncReport, started: number): SyncReport {
    report.jobs = this.#registry.size;
    report.ms = this.#clock.now() - started;
    this.#log.info(report, `${report.kind} user sync done`);
    return report;
  }
}

interface ApplyOptions {
  /**
   * Full and incremental syncs: users whose schedule the registry holds unchanged are left as
   * they are. A partition load (and its second look, which re-fires a gap) always recomputes.
   */
  keepUnchanged?: boolean;
  /** Full sync: the invalid users read. */
  invalidNow?: Set<string>;
  /** Cluster: each partition's start instant, where it differs from the sync's. */
  from?: ReadonlyMap<number, number>;
  /** Partition load: only these partitions, each from its instant. */
  only?: ReadonlyMap<number, number>;
}

function newReport(kind: SyncReport['kind']): SyncReport {
  return { kind, read: 0, valid: 0, unchanged: 0, inactive: 0, invalid: 0, removed: 0, jobs: 0, ms: 0 };
}
