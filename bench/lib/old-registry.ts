/**
 * The OLD design's job store, reimplemented faithfully for the registry suite (docs/ARCHITECTURE.md:
 * "removing a user's jobs scanned every scheduled job (O(users x jobs))").
 *
 * Jobs live in one Map keyed `${userId}:${HH:MM}`; there is no index by user. Replacing or
 * cancelling a user therefore walks every key looking for the prefix `${userId}:` (the scheduler
 * cannot know how many jobs a user has, so it never stops early), deletes the matches, and then
 * adds the new jobs. Fire times are computed with the same `nextFire` as mailwheel's JobRegistry,
 * so a comparison of the two isolates the index structure, not the date math.
 */
import { nextFire } from '../../src/core/fire-time.js';
import type { UserRecord } from '../../src/core/types.js';

export interface OldJob {
  readonly id: string;
  readonly user: UserRecord;
  readonly time: string;
  readonly fireAt: number;
  readonly localDate: string;
}

export class OldRegistry {
  readonly #jobs = new Map<string, OldJob>();
  #visits = 0;

  get size(): number {
    return this.#jobs.size;
  }

  /** Map entries touched so far (each key scanned, each set and delete counts one), like JobRegistry.visits. */
  get visits(): number {
    return this.#visits;
  }

  /**
   * Schedule a user known to have no jobs (the initial load, or re-adding a cancelled user): plain
   * inserts, no scan. Building 1M jobs through upsertUser would itself take O(N^2).
   */
  addUser(user: UserRecord, fromMs: number): number {
    const next = this.#jobsFor(user, fromMs);
    for (const job of next) {
      this.#jobs.set(job.id, job);
      this.#visits++;
    }
    return next.length;
  }

  /** Replace a user's jobs: the prefix scan removes the old ones, then the new ones are added. */
  upsertUser(user: UserRecord, fromMs: number): number {
    // Fire times first, as JobRegistry does, so the two do the same date math per operation.
    const next = this.#jobsFor(user, fromMs);
    this.cancelUser(user.id);
    for (const job of next) {
      this.#jobs.set(job.id, job);
      this.#visits++;
    }
    return next.length;
  }

  /** Remove every job of a user by scanning every key for the user's prefix. */
  cancelUser(userId: string): number {
    const prefix = `${userId}:`;
    let removed = 0;
    // Deleting the current entry while iterating a Map is well defined in JS (the iterator moves on).
    for (const key of this.#jobs.keys()) {
      this.#visits++;
      if (key.startsWith(prefix)) {
        this.#jobs.delete(key);
        this.#visits++;
        removed++;
      }
    }
    return removed;
  }

  /** The user's jobs with their next fires at or after `fromMs`, computed exactly as JobRegistry does. */
  #jobsFor(user: UserRecord, fromMs: number): OldJob[] {
    const next: OldJob[] = [];
    for (const time of new Set(user.times)) {
      const slot = nextFire(user.timezone, time, user.days, fromMs);
      if (slot !== undefined) next.push({ id: `${user.id}:${time}`, user, time, fireAt: slot.at, localDate: slot.localDate });
    }
    return next;
  }
}
