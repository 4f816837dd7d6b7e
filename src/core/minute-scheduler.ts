/**
 * The one timer of the daemon's scheduled mail (docs/ARCHITECTURE.md "The parts"): aligned to the minute, it
 * fires the due buckets of the {@link JobRegistry} and moves each fired job to its next occurrence.
 * No per-user timers, no scans. Time comes from an injected {@link Clock}.
 */
import { systemClock, type Clock } from '../ports/index.js';
import { Errors } from '../errors.js';
import type { Job, JobRegistry } from './job-registry.js';
import { MINUTE_MS, epochMinute } from './time.js';

/** Dependencies and callbacks of a {@link MinuteScheduler}. */
export interface MinuteSchedulerOptions {
  registry: JobRegistry;
  /** Default: the system clock. */
  clock?: Clock;
  /**
   * Called once per non-empty due minute, in minute order, never concurrently with itself. The jobs
   * are already rescheduled to their next occurrence when this runs; `job.fireAt` / `job.localDate`
   * of the passed objects still describe the occurrence being fired. A late call (catch-up) can be
   * recognised by `minute` being in the past: applying the missed-fire grace period is the
   * callee's job.
   */
  onDue: (jobs: Job[], minute: number) => void | Promise<void>;
  /** Called when `onDue` throws or rejects (the scheduler carries on). Default: count only. */
  onError?: (err: unknown, minute: number) => void;
}

/**
 * Drives a {@link JobRegistry} with one timer armed for the next minute boundary.
 *
 * On each tick it processes every non-empty bucket whose minute is at or before the current minute,
 * earliest first. That covers "every minute from the last processed one to now" when the event
 * loop was late, without visiting empty minutes, and it also picks up a job that was upserted into
 * a minute already processed (it fires on the next tick rather than being stranded). Ticks never
 * overlap: the timer is re-armed only after the backlog, including any `onDue` still running, is
 * done, and the backlog is re-read from the clock after each `onDue`.
 */
export class MinuteScheduler {
  #registry: JobRegistry;
  #clock: Clock;
  #onDue: MinuteSchedulerOptions['onDue'];
  #onError: MinuteSchedulerOptions['onError'];
  #timer: unknown = undefined;
  #started = false;
  #stopped = false;
  #stopPromise: Promise<void> | undefined;
  /** Serialises ticks and runMinute calls; always resolves. */
  #tail: Promise<void> = Promise.resolve();
  #busy = false;
  #lastProcessed: number | undefined;
  #errorCount = 0;
  #firedJobs = 0;

  constructor(options: MinuteSchedulerOptions) {
    this.#registry = options.registry;
    this.#clock = options.clock ?? systemClock;
    this.#onDue = options.onDue;
    this.#onError = options.onError;
  }

  /** The last minute processed (epoch minute), once a tick has run. */
  get lastProcessedMinute(): number | undefined {
    return this.#lastProcessed;
  }

  /** True while a tick or runMinute is delivering. */
  get busy(): boolean {
    return this.#busy;
  }

  /** Number of `onDue` calls that threw or rejected. */
  get errorCount(): number {
    return this.#errorCount;
  }

  /** Number of jobs handed to `onDue` so far. */
  get firedJobs(): number {
    return this.#firedJobs;
  }

  /**
   * Arm the timer: for the next minute boundary, or immediately when a bucket is already due
   * (jobs scheduled in the past, e.g. a start-up backfill). A second call is a no-op.
   * @throws Error after {@link stop}: a stopped scheduler is not restarted.
   */
  start(): void {
    if (this.#stopped) throw new Errors.INTERNAL('MinuteScheduler: cannot start after stop()');
    if (this.#started) return;
    this.#started = true;
    this.#arm();
  }

  /**
   * Clear the timer, process no further minutes, and resolve once any running `onDue` has
   * completed. Idempotent: every call returns the same promise.
   */
  stop(): Promise<void> {
    this.#stopPromise ??= (async () => {
      this.#stopped = true;
      if (this.#timer !== undefined) {
        this.#clock.clearTimeout(this.#timer);
        this.#timer = undefined;
      }
      await this.#tail;
    })();
    return this.#stopPromise;
  }

  /**
   * Re-arm now: jobs were just added to minutes already due (a partition taken over in a
   * cluster), so they go out at once instead of at the next minute boundary. Ticks still never
   * overlap (each one waits for the one before). No-op before {@link start} and after {@link stop}.
   */
  wake(): void {
    if (this.#started && !this.#stopped) this.#arm();
  }

  /**
   * Take the jobs due in `minute` (only that minute), reschedule them, and call `onDue` once, even
   * with an empty list. Used by `mailwheel run-minute`; waits for a running tick first. Unlike a
   * tick, an `onDue` failure is returned to the caller.
   * @returns the number of jobs delivered.
   */
  runMinute(minute: number): Promise<number> {
    const run = this.#tail.then(async () => {
      const jobs: Job[] = [];
      // Loop: a rescheduled job may land in the same minute again (only with a gap of 24 h or more).
      for (let batch = this.#takeAndReschedule(minute); batch.length > 0; batch = this.#takeAndReschedule(minute)) {
        jobs.push(...batch);
      }
      this.#busy = true;
      try {
        this.#firedJobs += jobs.length;
        await this.#onDue(jobs, minute);
      } finally {
        this.#busy = false;
      }
      return jobs.length;
    });
    this.#tail = run.then(noop, noop);
    return run;
  }

  #arm(): void {
    if (this.#stopped) return;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    const now = this.#clock.now();
    const current = epochMinute(now);
    const next = this.#registry.nextFireMinute();
    const delay = next !== undefined && next <= current ? 0 : (current + 1) * MINUTE_MS - now;
    this.#timer = this.#clock.setTimeout(() => this.#tick(), delay);
  }

  #tick(): void {
    this.#timer = undefined;
    const run = this.#tail.then(() => this.#drain());
    this.#tail = run.then(noop, noop);
    void this.#tail.then(() => this.#arm());
  }

  /** Process due buckets, earliest first, until none is due or the scheduler is stopped. */
  async #drain(): Promise<void> {
    for (;;) {
      if (this.#stopped) return;
      const current = epochMinute(this.#clock.now());
      const minute = this.#registry.nextFireMinute();
      if (minute === undefined || minute > current) {
        this.#lastProcessed = current;
        return;
      }
      const jobs = this.#takeAndReschedule(minute);
      this.#lastProcessed = minute;
      if (jobs.length === 0) continue;
      this.#busy = true;
      try {
        this.#firedJobs += jobs.length;
        await this.#onDue(jobs, minute);
      } catch (err) {
        this.#errorCount++;
        try {
          this.#onError?.(err, minute);
        } catch {
          // An error reporter that throws must not stop the scheduler.
        }
      } finally {
        this.#busy = false;
      }
    }
  }

  /**
   * Rescheduling happens before delivery, from the fired instant, so a slow or failing `onDue`
   * never makes a job fire twice for the same local date nor lose its next occurrence.
   */
  #takeAndReschedule(minute: number): Job[] {
    const jobs = this.#registry.takeDue(minute);
    for (const job of jobs) this.#registry.reschedule(job, job.fireAt);
    return jobs;
  }
}

function noop(): void {}
