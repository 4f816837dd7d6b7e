/**
 * The in-memory job registry (docs/ARCHITECTURE.md "The parts"): one job per (user, slot), indexed
 * so that schedule / replace / cancel / fire never scan. Packed for a million users in a few
 * hundred MB (issue 17): per user its id, zone, weekdays and slot times in typed columns, and its
 * email and name as UTF-8 bytes in one array (contact-arena.ts, which says why they are held and
 * not read when a minute fires); the scheduled path reads them just before the claim
 * (registry-contacts.ts).
 *
 * - users: an index id -> user row and typed columns per row: zone (an index into one
 *   interned table of zone names), weekdays as a bitmask, the first of its jobs, its job count,
 *   the minute its jobs were computed from, and the full sync's sweep mark;
 * - jobs: typed columns per row: user row, slot as minute of the day, fire instant, the next job
 *   of the same user, a generation and an in-a-bucket flag; the local date as one interned
 *   string per date;
 * - buckets: epoch minute -> (job row, generation) pairs in one `Int32Array` (minute-buckets.ts);
 *   leaving a bucket only bumps the row's generation and a live count, the dead pair is skipped
 *   when the minute is taken, so a cancel touches no other job's row whatever the bucket's size
 *   (a `Set` per bucket rehashes as it grows and shrinks, a million small objects make every
 *   major GC trace them all, and a linked list's neighbour links cost two cache misses per job);
 * - a min-heap of bucket minutes (lazy deletion) so the earliest non-empty bucket is cheap to find.
 *
 * The storage and its helpers live in job-table.ts. No I/O, no timers: the {@link MinuteScheduler} drives it. Fired jobs are handed out as small
 * {@link Job} objects made for the occasion; a generation number per job row tells a stale one.
 */
import { nextFire, parseHHMM } from './fire-time.js';
import { DAYS_OF, J_gen, J_inBucket, J_minute, J_next, J_user, JobTable, NONE, U_count, U_days, U_first, U_mark, U_zone, maskOf, n, type Job, type Schedule } from './job-table.js';
import { heapPop } from './packed-columns.js';

export { jobId, type Job, type Schedule } from './job-table.js';

export class JobRegistry extends JobTable {
  /**
   * The email and name held for a user, or undefined when the registry no longer holds the user
   * (a sync removed them after their minute fired: they are not to be sent).
   */
  contactOf(userId: string): { email: string; name: string | undefined } | undefined {
    const u = this.userIndex.get(userId);
    if (u === undefined || !this.contacts.has(u)) return undefined;
    return { email: this.contacts.email(u), name: this.contacts.name(u) };
  }

  /** Number of jobs (user slots) held. */
  get size(): number {
    return this.jobs.live;
  }

  /** Number of users with at least one job. */
  get userCount(): number {
    return this.userIndex.size;
  }

  /** Number of non-empty minute buckets. */
  get bucketCount(): number {
    return this.buckets.size;
  }

  /**
   * Instrumentation: the number of index entries touched by mutating operations so far (each
   * lookup or change of a user, a job row, a bucket or a bucket's live count counts one, and so
   * does each bucket pair looked at by takeDue or a compaction). Heap bookkeeping is not counted.
   * Lets a test prove that replace/cancel cost depends on one user's jobs only: exactly for one
   * operation that does not compact, amortized (O(1) per removal) when it does.
   */
  get visits(): number {
    return this.visitCount;
  }

  /** Rows allocated in the typed columns (for memory figures in benchmarks). */
  get rows(): { users: number; jobs: number } {
    return { users: this.users.capacity, jobs: this.jobs.capacity };
  }

  /**
   * (row, generation) pairs held by the buckets, live and dead (for memory figures and tests): at
   * most twice {@link size}, since a bucket is compacted once its dead pairs outnumber the live.
   */
  get bucketPairs(): number {
    let pairs = 0;
    for (const b of this.buckets.values()) pairs += b.len;
    return pairs;
  }

  /** Ids of the users with at least one job. */
  userIds(): IterableIterator<string> {
    return this.heldIds();
  }

  /** The job with this id, if scheduled. */
  get(id: string): Job | undefined {
    const bar = id.lastIndexOf('|');
    const u = this.userIndex.get(id.slice(0, bar));
    const hm = parseHHMM(id.slice(bar + 1));
    if (u === undefined || hm === undefined) return undefined;
    const minute = hm.h * 60 + hm.m;
    for (let row = this.users.get(u, U_first); row !== NONE; row = this.jobs.get(row, J_next)) if (this.jobs.get(row, J_minute) === minute) return this.jobAt(row);
    return undefined;
  }

  /** The jobs of one user, in slot order. */
  jobsOf(userId: string): Job[] {
    const u = this.userIndex.get(userId);
    if (u === undefined) return [];
    const out: Job[] = [];
    for (let row = this.users.get(u, U_first); row !== NONE; row = this.jobs.get(row, J_next)) out.push(this.jobAt(row));
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
  upsertUser(user: Schedule, fromMs: number): number {
    const old = this.userIndex.get(user.id);
    this.visitCount++;
    const minutes: number[] = [];
    const fires: number[] = [];
    const dates: string[] = [];
    for (const time of new Set(user.times)) {
      const slot = nextFire(user.timezone, time, user.days, fromMs);
      if (slot === undefined) continue;
      const hm = parseHHMM(time) as { h: number; m: number };
      minutes.push(hm.h * 60 + hm.m);
      fires.push(slot.at);
      dates.push(this.internDate(slot.localDate));
    }
    if (old !== undefined) this.freeJobs(old);
    if (minutes.length === 0) {
      if (old !== undefined) this.dropUser(user.id, old);
      return 0;
    }
    const u = old ?? this.addUser(user.id);
    this.contacts.set(u, user.email ?? '', user.name);
    this.users.set(u, U_zone, this.zoneOf(user.timezone));
    this.users.set(u, U_days, maskOf(user.days));
    this.setComputedFrom(u, Math.ceil(fromMs));
    this.users.set(u, U_mark, 1);
    this.users.set(u, U_count, minutes.length);
    let first = NONE;
    for (let i = minutes.length - 1; i >= 0; i--) {
      const row = this.jobs.alloc();
        this.jobs.set(row, J_user, u);
      this.jobs.set(row, J_minute, n(minutes[i]));
      this.setFireAt(row, n(fires[i]));
      this.jobs.set(row, J_next, first);
      this.jobDates[row] = dates[i] as string;
      first = row;
      this.visitCount++;
      this.bucket(row);
    }
    this.users.set(u, U_first, first);
    return minutes.length;
  }

  /**
   * Leaves a user whose zone, weekdays and slots are what the registry holds as they are (no
   * allocation, no date math) when their jobs were computed from an instant at or before
   * `fromMs` and none is due before it: recomputing from `fromMs` would give the same fires.
   * Marks the user for the sweep, as an upsert does. Syncs call it before {@link upsertUser}; a
   * partition takeover's second look, which re-fires a gap on purpose, does not.
   * @returns true when the user was kept (nothing else to do).
   */
  keepIfUnchanged(user: Schedule, fromMs: number): boolean {
    const u = this.userIndex.get(user.id);
    this.visitCount++;
    if (u === undefined || !this.unchanged(u, user, fromMs)) return false;
    this.users.set(u, U_mark, 1);
    // The schedule is kept; an address or name change is still taken (no bytes when equal).
    this.contacts.set(u, user.email ?? '', user.name);
    return true;
  }

  /**
   * Remove every job of a user (deactivated, unsubscribed, deleted, invalid).
   * @returns the number of jobs removed.
   */
  cancelUser(userId: string): number {
    const u = this.userIndex.get(userId);
    this.visitCount++;
    if (u === undefined) return 0;
    const count = this.freeJobs(u);
    this.dropUser(userId, u);
    return count;
  }

  /**
   * Remove every job of the users `drop` selects (a cluster instance letting go of partitions):
   * one pass over the user index, O(users) `drop` calls plus the cancelled users' jobs.
   * @returns the number of users and jobs removed.
   */
  cancelUsersWhere(drop: (userId: string) => boolean): { users: number; jobs: number } {
    let users = 0;
    let jobs = 0;
    for (const userId of this.heldIds()) {
      if (!drop(userId)) continue;
      jobs += this.cancelUser(userId);
      users++;
    }
    return { users, jobs };
  }

  /**
   * A full sync's sweep: {@link beginSweep} clears every user's mark, each upsert sets it, and
   * {@link endSweep} cancels the users left unmarked (the sync no longer sees them). One byte per
   * user instead of a set of a million ids for the length of the sync.
   */
  beginSweep(): void {
    for (let u = 0; u < this.users.top; u++) this.users.set(u, U_mark, 0);
  }

  /** @returns the users cancelled because no upsert marked them since {@link beginSweep}. */
  endSweep(): number {
    return this.cancelUsersWhere((id) => this.users.get(n(this.userIndex.get(id)), U_mark) === 0).users;
  }

  /**
   * Remove and return the jobs in one minute's bucket. The jobs stay registered (in no bucket) until
   * the caller {@link reschedule}s them; the scheduler does that immediately, before delivering.
   */
  takeDue(minute: number): Job[] {
    const bucket = this.buckets.get(minute);
    this.visitCount++;
    if (bucket === undefined) return [];
    this.buckets.delete(minute);
    const out: Job[] = [];
    const pairs = bucket.pairs;
    for (let i = 0; i < bucket.len; i++) {
      const row = pairs[i * 2] as number;
      this.visitCount++;
      if (!this.inBucketAs(row, pairs[i * 2 + 1] as number)) continue; // cancelled or moved since
      this.jobs.set(row, J_inBucket, 0);
      out.push(this.jobAt(row));
    }
    return out;
  }

  /**
   * Move a job to its next occurrence: the first one on a local date after `job.localDate` that
   * fires at or after `fromMs` (the scheduler passes `job.fireAt`; the date condition alone stops a
   * slot from firing twice for one date). Does nothing if `job` is stale (the user was replaced or
   * cancelled since it was taken, or it was moved already).
   *
   * @returns the rescheduled job, or undefined when stale or when no occurrence remains.
   */
  reschedule(job: Job, fromMs: number): Job | undefined {
    this.visitCount++;
    if (job.row >= this.jobs.capacity || this.jobs.get(job.row, J_gen) !== job.gen) return undefined;
    const row = job.row;
    this.unbucket(row); // no-op when it was taken with takeDue
    const u = this.jobs.get(row, J_user);
    const slot = nextFire(this.zones[this.users.get(u, U_zone)] as string, job.time, DAYS_OF[this.users.get(u, U_days)], fromMs, job.localDate);
    if (slot === undefined) {
      this.removeJob(u, row);
      return undefined;
    }
    this.jobs.set(row, J_gen, this.jobs.get(row, J_gen) + 1);
    this.setFireAt(row, slot.at);
    this.jobDates[row] = this.internDate(slot.localDate);
    this.visitCount++;
    this.bucket(row);
    return this.jobAt(row);
  }

  /** The earliest minute with a non-empty bucket, or undefined when nothing is scheduled. */
  nextFireMinute(): number | undefined {
    const heap = this.heap;
    while (heap.length > 0) {
      const top = heap[0] as number;
      if (this.buckets.has(top)) return top;
      this.inHeap.delete(top);
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
    for (const [minute, b] of this.buckets) out.push([minute, b.live]);
    return out.sort((a, b) => a[0] - b[0]);
  }

}
