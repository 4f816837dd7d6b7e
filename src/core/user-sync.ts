/**
 * UserSync: reads users from the user source and keeps the job registry in step with them.
 * A full sync streams every active user; an incremental sync reads only users whose `updatedAt`
 * moved since the last one. Each document is validated on its own: an invalid one is skipped with
 * one log line and one `invalid` event, and everybody else is served.
 */
import type { Logger } from 'pino';
import { systemClock, type Clock, type EventRecorder, type RawUser, type UserSource } from '../ports/index.js';
import type { JobRegistry } from './job-registry.js';
import { MINUTE_MS } from './time.js';
import { checkUser, type FieldMap } from './validate-user.js';

export interface SyncReport {
  kind: 'full' | 'incremental';
  read: number;
  valid: number;
  inactive: number;
  invalid: number;
  /** Users dropped from the registry because the sync no longer sees them (full sync only). */
  removed: number;
  jobs: number;
  ms: number;
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
  #running: Promise<SyncReport> | undefined;
  lastReport: SyncReport | undefined;

  constructor(
    deps: { source: UserSource; registry: JobRegistry; events: EventRecorder; clock?: Clock },
    fields: FieldMap,
    log: Logger,
  ) {
    this.#source = deps.source;
    this.#registry = deps.registry;
    this.#events = deps.events;
    this.#clock = deps.clock ?? systemClock;
    this.#fields = fields;
    this.#log = log;
  }

  /**
   * Reads every active user and schedules their next fires at or after `fromMs`.
   * Users in the registry that the sync no longer sees are cancelled.
   */
  full(fromMs: number = this.#clock.now()): Promise<SyncReport> {
    return this.#exclusive(() => this.#full(fromMs));
  }

  /** Reads users changed since the last sync; falls back to a full sync if there was none. */
  incremental(): Promise<SyncReport> {
    return this.#exclusive(() => (this.#lastSyncStart === undefined ? this.#full(this.#clock.now()) : this.#incremental()));
  }

  /** Syncs never overlap: a cron tick during a long full sync waits for it, then runs. */
  async #exclusive(run: () => Promise<SyncReport>): Promise<SyncReport> {
    while (this.#running) await this.#running.catch(() => undefined);
    this.#running = run();
    try {
      const report = await this.#running;
      this.lastReport = report;
      return report;
    } finally {
      this.#running = undefined;
    }
  }

  async #full(fromMs: number): Promise<SyncReport> {
    const started = this.#clock.now();
    const report = newReport('full');
    const seen = new Set<string>();
    const invalidNow = new Set<string>();
    for await (const batch of this.#source.allActive()) {
      await this.#apply(batch, fromMs, report, seen, invalidNow);
    }
    // Forget reported invalid users the full sync no longer sees (deleted or fixed and inactive).
    for (const userId of [...this.#reported.keys()]) if (!invalidNow.has(userId)) this.#reported.delete(userId);
    for (const userId of [...this.#registry.userIds()]) {
      if (!seen.has(userId)) {
        this.#registry.cancelUser(userId);
        report.removed++;
      }
    }
    this.#lastSyncStart = started;
    return this.#finish(report, started);
  }

  async #incremental(): Promise<SyncReport> {
    const started = this.#clock.now();
    const since = new Date((this.#lastSyncStart ?? started) - CLOCK_SKEW_MS);
    const report = newReport('incremental');
    for await (const batch of this.#source.changedSince(since)) {
      await this.#apply(batch, started, report);
    }
    this.#lastSyncStart = started;
    return this.#finish(report, started);
  }

  async #apply(batch: RawUser[], fromMs: number, report: SyncReport, seen?: Set<string>, invalidNow?: Set<string>): Promise<void> {
    for (const doc of batch) {
      report.read++;
      const r = checkUser(doc, this.#fields);
      if (r.kind === 'valid') {
        this.#registry.upsertUser(r.user, fromMs);
        this.#reported.delete(r.user.id);
        seen?.add(r.user.id);
        report.valid++;
      } else if (r.kind === 'inactive') {
        this.#registry.cancelUser(r.id);
        this.#reported.delete(r.id);
        report.inactive++;
      } else {
        this.#registry.cancelUser(r.id);
        invalidNow?.add(r.id);
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

function newReport(kind: SyncReport['kind']): SyncReport {
  return { kind, read: 0, valid: 0, inactive: 0, invalid: 0, removed: 0, jobs: 0, ms: 0 };
}
