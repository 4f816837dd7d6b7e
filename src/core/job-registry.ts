/**
 * The in-memory job registry (docs/ARCHITECTURE.md "The parts"): one job per (user, slot), indexed three
 * ways so that schedule / replace / cancel / fire never scan:
 *
 * - `#jobs`:    jobId -> Job
 * - `#byUser`:  userId -> jobIds (an array: a user has a handful of slots, and a Set per user
 *                costs several times the memory of a short array)
 * - `#buckets`: epoch minute of the job's fire instant -> Set<jobId>
 *
 * plus a min-heap of bucket minutes (lazy deletion) so the earliest non-empty bucket is cheap to
 * find and a late timer can catch up over many minutes without visiting the empty ones.
 * No I/O, no timers: the {@link MinuteScheduler} drives it.
 */
import { epochMinute, nextFire } from './fire-time.js';
import type { UserRecord } from './types.js';

/** One scheduled slot of one user, with its next occurrence. Immutable: changes create a new Job. */
export interface Job {
  /** `${userId}|${HH:MM}` (see {@link jobId}). */
  readonly id: string;
  readonly user: UserRecord;
  /** The slot, `HH:MM` local time. */
  readonly time: string;
  /** Next fire instant, ms since the epoch. */
  readonly fireAt: number;
  /** Local date D (`YYYY-MM-DD`) of that occurrence; part of the delivery key. */
  readonly localDate: string;
}

/** The id of a user's slot: `${userId}|${HH:MM}`. */
export function jobId(userId: string, time: string): string {
  return `${userId}|${time}`;
}

/**
 * Holds every scheduled job. All mutating operations cost O(jobs of the affected user) Map/Set
 * operations, plus O(log B) heap work where B is the number of distinct bucket minutes (bounded by
 * the scheduling horizon, about 8 days x 1440 minutes, whatever the number of users).
 */
/** Interned local dates kept at most (the scheduling horizon spans about 8 days per zone offset). */
const MAX_DATES = 1000;

export class JobRegistry {
  #jobs = new Map<string, Job>();
  #byUser = new Map<string, readonly string[]>();
  #buckets = new Map<number, Set<string>>();
  /** Min-heap of minutes that had a bucket when pushed; entries whose bucket is gone are dropped lazily. */
  #heap: number[] = [];
  /** Minutes currently present in `#heap` (so a minute is never pushed twice). */
  #inHeap = new Set<number>();
  #visits = 0;
  readonly #dates = new Map<string, string>();

  /** Number of jobs (user slots) held. */
  get size(): number {
    return this.#jobs.size;
  }

  /** Number of users with at least one job. */
  get userCount(): number {
    return this.#byUser.size;
  }

  /** Number of non-empty minute buckets. */
  get bucketCount(): number {
    return this.#buckets.size;
  }

  /**
   * Instrumentation: the number of Map/Set entries touched by mutating operations so far (each
   * get/set/add/delete of a job, user-index or bucket entry counts one). Heap bookkeeping is not
   * counted. Lets a test prove that replace/cancel cost depends on one user's jobs only.
   */
  get visits(): number {
    return this.#visits;
  }

  /** Ids of the users with at least one job (a full sync uses it to drop users it no longer sees). */
  userIds(): IterableIterator<string> {
    return this.#byUser.keys();
  }

  /** The job with this id, if scheduled. */
  get(id: string): Job | undefined {
    return this.#jobs.get(id);
  }

  /** The jobs of one user, in slot order. */
  jobsOf(userId: string): Job[] {
    const ids = this.#byUser.get(userId);
    if (ids === undefined) return [];
    const out: Job[] = [];
    for (const id of ids) {
      const job = this.#jobs.get(id);
      if (job !== undefined) out.push(job);
    }
    return out.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
  }

  /**
   * Schedule a user, replacing whatever was scheduled for them: slots that are gone are cancelled,
   * new ones added, and every slot's next fire (at or after `fromMs`) recomputed, since the zone or
   * the weekdays may have changed. A user whose `days` allow no weekday ends up with no jobs.
   * All fire times are computed before anything is changed, so a throw leaves the registry as it was.
   *
   * @returns the number of jobs the user now has.
   * @throws RangeError for an unknown zone or a malformed time (UserSync validates before this).
   */
  upsertUser(user: UserRecord, fromMs: number): number {
    const next: Job[] = [];
    for (const time of new Set(user.times)) {
      const slot = nextFire(user.timezone, time, user.days, fromMs);
      if (slot !== undefined) {
        next.push({ id: jobId(user.id, time), user, time, fireAt: slot.at, localDate: this.#date(slot.localDate) });
      }
    }

    const wanted = next.map((job) => job.id);

    const old = this.#byUser.get(user.id);
    this.#visits++;
    if (old !== undefined) {
      for (const id of old) {
        this.#visits++;
        const job = this.#jobs.get(id);
        this.#visits++;
        if (job !== undefined) this.#unbucket(job);
        if (!wanted.includes(id)) {
          this.#jobs.delete(id);
          this.#visits++;
        }
      }
    }

    if (next.length === 0) {
      if (old !== undefined) {
        this.#byUser.delete(user.id);
        this.#visits++;
      }
      return 0;
    }
    for (const job of next) {
      this.#jobs.set(job.id, job);
      this.#visits++;
      this.#bucket(job);
    }
    // A fresh list rather than editing the old one: same cost, and no stale ids can survive.
    this.#byUser.set(user.id, wanted);
    this.#visits += 1 + wanted.length;
    return next.length;
  }

  /**
   * Remove every job of a user (deactivated, unsubscribed, deleted, invalid).
   * @returns the number of jobs removed.
   */
  cancelUser(userId: string): number {
    const ids = this.#byUser.get(userId);
    this.#visits++;
    if (ids === undefined) return 0;
    for (const id of ids) {
      this.#visits++;
      const job = this.#jobs.get(id);
      this.#visits++;
      if (job !== undefined) {
        this.#unbucket(job);
        this.#jobs.delete(id);
        this.#visits++;
      }
    }
    this.#byUser.delete(userId);
    this.#visits++;
    return ids.length;
  }

  /**
   * Remove every job of the users `drop` selects (a cluster instance letting go of partitions):
   * one pass over the user index, O(users) `drop` calls plus the cancelled users' jobs.
   * @returns the number of users and jobs removed.
   */
  cancelUsersWhere(drop: (userId: string) => boolean): { users: number; jobs: number } {
    let users = 0;
    let jobs = 0;
    // Deleting the entry being visited is safe while iterating a Map.
    for (const userId of this.#byUser.keys()) {
      if (!drop(userId)) continue;
      jobs += this.cancelUser(userId);
      users++;
    }
    return { users, jobs };
  }

  /**
   * Remove and return the jobs in one minute's bucket. The jobs stay registered (in no bucket) until
   * the caller {@link reschedule}s them; the scheduler does that immediately, before delivering.
   */
  takeDue(minute: number): Job[] {
    const ids = this.#buckets.get(minute);
    this.#visits++;
    if (ids === undefined) return [];
    this.#buckets.delete(minute);
    const out: Job[] = [];
    for (const id of ids) {
      this.#visits++;
      const job = this.#jobs.get(id);
      this.#visits++;
      if (job !== undefined) out.push(job);
    }
    return out;
  }

  /**
   * Move a job to its next occurrence: the first one on a local date after `job.localDate` that
   * fires at or after `fromMs` (the scheduler passes `job.fireAt`; the date condition alone stops a
   * slot from firing twice for one date). Does nothing if `job` is stale (the user was replaced or
   * cancelled since it was taken).
   *
   * @returns the rescheduled job, or undefined when stale or when no occurrence remains.
   */
  reschedule(job: Job, fromMs: number): Job | undefined {
    const current = this.#jobs.get(job.id);
    this.#visits++;
    if (current !== job) return undefined;
    this.#unbucket(job); // no-op when it was taken with takeDue
    const { user, time } = job;
    const slot = nextFire(user.timezone, time, user.days, fromMs, job.localDate);
    if (slot === undefined) {
      this.#jobs.delete(job.id);
      this.#visits++;
      return undefined;
    }
    const moved: Job = { id: job.id, user, time, fireAt: slot.at, localDate: this.#date(slot.localDate) };
    this.#jobs.set(job.id, moved);
    this.#visits++;
    this.#bucket(moved);
    return moved;
  }

  /** The earliest minute with a non-empty bucket, or undefined when nothing is scheduled. */
  nextFireMinute(): number | undefined {
    const heap = this.#heap;
    while (heap.length > 0) {
      const top = heap[0] as number;
      if (this.#buckets.has(top)) return top;
      this.#inHeap.delete(top);
      heapPop(heap);
    }
    return undefined;
  }

  /**
   * Job counts per non-empty minute bucket, sorted by minute (O(buckets), for `mailwheel plan`
   * and `/stats`, not for a hot path).
   */
  bucketSizes(): Array<[minute: number, jobs: number]> {
    const out: Array<[number, number]> = [];
    for (const [minute, ids] of this.#buckets) out.push([minute, ids.size]);
    return out.sort((a, b) => a[0] - b[0]);
  }

  /**
   * One shared string per local date: every job holds one, and the dates in use are a few days'
   * worth, so a million jobs would otherwise keep a million copies of a handful of strings.
   */
  #date(localDate: string): string {
    const known = this.#dates.get(localDate);
    if (known !== undefined) return known;
    if (this.#dates.size >= MAX_DATES) this.#dates.clear();
    this.#dates.set(localDate, localDate);
    return localDate;
  }

  #bucket(job: Job): void {
    const minute = epochMinute(job.fireAt);
    let ids = this.#buckets.get(minute);
    if (ids === undefined) {
      ids = new Set();
      this.#buckets.set(minute, ids);
      if (!this.#inHeap.has(minute)) {
        this.#inHeap.add(minute);
        heapPush(this.#heap, minute);
      }
    }
    ids.add(job.id);
    this.#visits += 2;
  }

  #unbucket(job: Job): void {
    const minute = epochMinute(job.fireAt);
    const ids = this.#buckets.get(minute);
    this.#visits++;
    if (ids === undefined) return;
    if (ids.delete(job.id)) this.#visits++;
    // The heap entry stays; nextFireMinute drops it lazily.
    if (ids.size === 0) this.#buckets.delete(minute);
  }
}

function heapPush(heap: number[], value: number): void {
  heap.push(value);
  let i = heap.length - 1;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    const p = heap[parent] as number;
    if (p <= value) break;
    heap[i] = p;
    i = parent;
  }
  heap[i] = value;
}

function heapPop(heap: number[]): void {
  const last = heap.pop();
  if (last === undefined || heap.length === 0) return;
  let i = 0;
  const n = heap.length;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= n) break;
    const r = l + 1;
    let c = l;
    if (r < n && (heap[r] as number) < (heap[l] as number)) c = r;
    const cv = heap[c] as number;
    if (cv >= last) break;
    heap[i] = cv;
    i = c;
  }
  heap[i] = last;
}
