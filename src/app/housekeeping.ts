/**
 * The daemon's own cron jobs (config/schedules.json): incremental user sync, retention, the daily
 * summary, broadcast pickup. node-cron keeps one timer per task, which is right for a handful of
 * housekeeping jobs (and wrong for one per user: that is the job registry's business).
 *
 * A job is added by name; it runs only when schedules.json has an entry of that name (the
 * operator can drop an entry to turn a job off, and start-up says so). Runs of one job never
 * overlap, each run is timed and logged, and a failing run is logged and counted, never thrown:
 * a housekeeping failure must not stop the daemon.
 */
import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from 'pino';
import type { Schedules } from '../config/schema.js';
import { Errors } from '../errors.js';
import { scrubSecrets } from '../log.js';
import { sleepOrWake } from '../core/time.js';
import { systemClock, type Clock } from '../ports/index.js';

export type HousekeepingJob = keyof Schedules;

export interface JobStats {
  runs: number;
  failures: number;
  lastOkAt: string | null;
  lastMs: number | null;
  lastError: string | null;
}

export interface HousekeepingHooks {
  /** After each run (metrics). */
  onRun?(job: string, ok: boolean, atMs: number): void;
  /** Time of the run stats and of the stop's wait. Default: the system clock. */
  clock?: Clock;
}

export class Housekeeping {
  readonly #schedules: Schedules;
  readonly #log: Logger;
  readonly #hooks: HousekeepingHooks;
  readonly #clock: Clock;
  readonly #tasks = new Map<string, ScheduledTask>();
  readonly #jobs = new Map<string, () => Promise<unknown>>();
  readonly #running = new Map<string, Promise<boolean>>();
  readonly #stats = new Map<string, JobStats>();
  #closed: Promise<void> | undefined;

  constructor(schedules: Schedules, log: Logger, hooks: HousekeepingHooks = {}) {
    this.#schedules = schedules;
    this.#log = log;
    this.#hooks = hooks;
    this.#clock = hooks.clock ?? systemClock;
  }

  /**
   * Registers `run` under `name` and schedules it from schedules.json.
   * @returns false when schedules.json has no entry for it (registered, but never run by cron).
   */
  add(name: HousekeepingJob, run: () => Promise<unknown>): boolean {
    if (this.#closed) throw new Errors.INTERNAL('Housekeeping: closed');
    if (this.#jobs.has(name)) throw new Errors.INTERNAL(`Housekeeping: job ${name} added twice`);
    this.#jobs.set(name, run);
    this.#stats.set(name, { runs: 0, failures: 0, lastOkAt: null, lastMs: null, lastError: null });
    const entry = this.#schedules[name];
    if (entry === undefined) {
      this.#log.warn({ job: name }, `housekeeping job ${name} is not scheduled: config/schedules.json has no "${name}" entry`);
      return false;
    }
    const task = cron.schedule(entry.cron, () => this.run(name).then(() => undefined), { timezone: entry.timezone, name: `mailwheel:${name}`, noOverlap: true });
    this.#tasks.set(name, task);
    return true;
  }

  /** Runs a job now (the cron does this; so can a test or an operator command). Never throws. */
  run(name: HousekeepingJob): Promise<boolean> {
    const running = this.#running.get(name);
    if (running) return running;
    const job = this.#jobs.get(name);
    if (job === undefined) return Promise.resolve(false);
    const p = this.#runOnce(name, job).finally(() => this.#running.delete(name));
    this.#running.set(name, p);
    return p;
  }

  async #runOnce(name: string, job: () => Promise<unknown>): Promise<boolean> {
    const stats = this.#stats.get(name) as JobStats;
    const started = this.#clock.now();
    let ok = true;
    try {
      const result = await job();
      stats.lastOkAt = new Date(this.#clock.now()).toISOString();
      stats.lastError = null;
      this.#log.info({ job: name, ms: this.#clock.now() - started, ...(isRecord(result) ? { result } : {}) }, `housekeeping ${name} done`);
    } catch (err) {
      ok = false;
      stats.failures++;
      // Shown on /stats: scrubbed of configured secrets (a driver error may quote the URI).
      stats.lastError = scrubSecrets(err instanceof Error ? err.message : String(err));
      this.#log.error({ err, job: name, ms: this.#clock.now() - started }, `housekeeping ${name} failed`);
    }
    stats.runs++;
    stats.lastMs = this.#clock.now() - started;
    try {
      this.#hooks.onRun?.(name, ok, this.#clock.now());
    } catch {
      // Metrics never break a job.
    }
    return ok;
  }

  /** Per job: runs, failures, last success, last duration (for /stats). */
  stats(): Record<string, JobStats> {
    return Object.fromEntries([...this.#stats].map(([k, v]) => [k, { ...v }]));
  }

  /**
   * Stops every cron timer and waits up to `waitMs` for runs in progress (a retention scan of a
   * large collection must not hold up a stop; its writes are single deletes, safe to cut short).
   * Idempotent.
   */
  close(waitMs = 5_000): Promise<void> {
    this.#closed ??= (async () => {
      await Promise.all([...this.#tasks.values()].map((t) => t.destroy()));
      this.#tasks.clear();
      await sleepOrWake(this.#clock, waitMs, Promise.all([...this.#running.values()]));
    })();
    return this.#closed;
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
