/**
 * The storage under the {@link JobRegistry} (job-registry.ts has the operations and the design):
 * the typed user and job columns, the user index, the interned zones and dates, the minute buckets
 * as lists of (job row, generation) pairs, and the helpers that keep them consistent. Split out so each file
 * stays readable; nothing but the registry uses it.
 */
import { ContactArena } from './contact-arena.js';
import { Bucket } from './minute-buckets.js';
import { PackedRows, heapPush } from './packed-columns.js';
import { UserIndex } from './user-index.js';

/** What the registry needs of a user: the scheduling fields only. */
export interface Schedule {
  id: string;
  /** IANA zone name. */
  timezone: string;
  /** Local times of day, `HH:MM`. */
  times: readonly string[];
  /** Local weekdays allowed (0 = Sunday); undefined means every day. */
  days: readonly number[] | undefined;
  /** Where and how to address the user (held packed in the registry's ContactArena). */
  email?: string;
  name?: string | undefined;
}

/** One occurrence of one user's slot, as handed to the scheduler. Immutable. */
export interface Job {
  /** `${userId}|${HH:MM}` (see {@link jobId}). */
  readonly id: string;
  readonly userId: string;
  /** The slot, `HH:MM` local time. */
  readonly time: string;
  /** The user's zone (delivery rendering and the delivery record carry it). */
  readonly timezone: string;
  /** Fire instant, ms since the epoch. */
  readonly fireAt: number;
  /** Local date D (`YYYY-MM-DD`) of that occurrence; part of the delivery key. */
  readonly localDate: string;
  /** The user's address and name as the registry held them when this object was made. */
  readonly email: string;
  readonly name: string | undefined;
  /** The job's row and its generation when this object was made (stale once they differ). */
  readonly row: number;
  readonly gen: number;
}

/** The id of a user's slot: `${userId}|${HH:MM}`. */
export function jobId(userId: string, time: string): string {
  return `${userId}|${time}`;
}

/** Interned local dates kept at most (the scheduling horizon spans about 8 days per zone offset). */
const MAX_DATES = 1000;
export const NONE = -1;
const ALL_DAYS = 0x7f;
/** `HH:MM` of every minute of the day, shared by every job that shows its slot. */
export const HHMM: readonly string[] = Array.from({ length: 1440 }, (_, m) => `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`);
/** Weekday arrays per mask, shared (nextFire reads them; undefined for every day). */
export const DAYS_OF: ReadonlyArray<readonly number[] | undefined> = Array.from({ length: 128 }, (_, mask) =>
  mask === ALL_DAYS ? undefined : [0, 1, 2, 3, 4, 5, 6].filter((d) => (mask & (1 << d)) !== 0),
);

export const n = (v: number | undefined): number => v as number;

/** Fields of a user row: zone index, weekday mask, first job row, job count, computed-from minute, sweep mark. */
export const U_zone = 0;
export const U_days = 1;
export const U_first = 2;
export const U_count = 3;
const U_fromMin = 4;
export const U_mark = 5;
/** The instant the user's jobs were computed from, exactly: epoch minute in U_fromMin + ms in this. */
const U_fromRem = 6;
const USER_STRIDE = 7;
/**
 * Fields of a job row: user row, slot (minute of the day), next job of the user, in-a-bucket flag,
 * generation, and the fire instant as epoch minute + ms within it. No bucket links: a bucket lists
 * (row, generation) pairs (minute-buckets.ts), so leaving it touches no other row.
 */
export const J_user = 0;
export const J_minute = 1;
export const J_next = 2;
export const J_inBucket = 3;
export const J_gen = 4;
const J_fireMin = 5;
const J_fireRem = 6;
const JOB_STRIDE = 7;

export abstract class JobTable {
  protected readonly users = new PackedRows(USER_STRIDE);
  protected readonly idOf: string[] = [];
  protected readonly userIndex = new UserIndex(this.idOf);
  /** Email and name per user row (contact-arena.ts: why held and not read when a minute fires). */
  protected readonly contacts = new ContactArena();
  protected readonly jobs = new PackedRows(JOB_STRIDE);
  protected jobDates: string[] = [];
  protected readonly zones: string[] = [];
  protected readonly zoneIndex = new Map<string, number>();
  protected readonly buckets = new Map<number, Bucket>();
  /** Min-heap of minutes that had a bucket when pushed; entries whose bucket is gone are dropped lazily. */
  protected heap: number[] = [];
  /** Minutes currently present in `heap` (so a minute is never pushed twice). */
  protected readonly inHeap = new Set<number>();
  protected visitCount = 0;
  protected readonly dates = new Map<string, string>();

  /** The instant user row `u`'s jobs were computed from (ms since the epoch, exact). */
  protected computedFrom(u: number): number {
    return this.users.getInstant(u, U_fromMin, U_fromRem);
  }

  protected setComputedFrom(u: number, ms: number): void {
    this.users.setInstant(u, U_fromMin, U_fromRem, ms);
  }

  /** Fire instant of job `row`, ms since the epoch. */
  protected fireAt(row: number): number {
    return this.jobs.getInstant(row, J_fireMin, J_fireRem);
  }

  protected setFireAt(row: number, ms: number): void {
    this.jobs.setInstant(row, J_fireMin, J_fireRem, ms);
  }

  /** A fired-job object for `row` as it is now. */
  protected jobAt(row: number): Job {
    const u = this.jobs.get(row, J_user);
    const userId = this.idOf[u] as string;
    const time = HHMM[this.jobs.get(row, J_minute)] as string;
    const timezone = this.zones[this.users.get(u, U_zone)] as string;
    // The contact is decoded here, when the minute fires: the job object carries it to the
    // claim and the send, as the user record did before the registry was packed.
    return { id: jobId(userId, time), userId, time, timezone, fireAt: this.fireAt(row), localDate: this.jobDates[row] as string, email: this.contacts.email(u), name: this.contacts.name(u), row, gen: this.jobs.get(row, J_gen) };
  }

  /**
   * True when recomputing `user` from `fromMs` would give exactly the jobs held: same zone,
   * weekdays and slots, computed from an instant at or before `fromMs`, none due before it, and
   * none taken out of its bucket (a fire in progress).
   */
  protected unchanged(u: number, user: Schedule, fromMs: number): boolean {
    if (this.zones[this.users.get(u, U_zone)] !== user.timezone || this.users.get(u, U_days) !== maskOf(user.days)) return false;
    if (this.computedFrom(u) > fromMs) return false;
    let held = 0;
    for (let row = this.users.get(u, U_first); row !== NONE; row = this.jobs.get(row, J_next)) {
      if (this.jobs.get(row, J_inBucket) !== 1 || this.fireAt(row) < fromMs) return false;
      if (!user.times.includes(HHMM[this.jobs.get(row, J_minute)] as string)) return false;
      held++;
    }
    // As many jobs as distinct times (user.times may repeat one; the registry never does).
    let distinct = 0;
    user.times.forEach((t, i) => {
      if (user.times.indexOf(t) === i) distinct++;
    });
    return held === distinct;
  }

  protected addUser(id: string): number {
    const u = this.users.alloc();
    this.idOf[u] = id;
    this.userIndex.set(id, u);
    this.visitCount++;
    return u;
  }

  protected dropUser(id: string, u: number): void {
    this.userIndex.delete(id); // before idOf is cleared: the index compares against it
    this.contacts.clear(u);
    this.idOf[u] = '';
    this.users.release(u);
    this.visitCount++;
  }

  /** Unbuckets and frees every job of user row `u`. @returns how many. */
  protected freeJobs(u: number): number {
    let count = 0;
    for (let row = this.users.get(u, U_first); row !== NONE; ) {
      const next = this.jobs.get(row, J_next);
      this.unbucket(row);
      this.releaseJob(row);
      count++;
      row = next;
    }
    this.users.set(u, U_first, NONE);
    this.users.set(u, U_count, 0);
    return count;
  }

  /**
   * Ids of the users held, by row (a held user has at least one job; a free row has none).
   * Safe to cancel the user just visited while iterating.
   */
  protected *heldIds(): IterableIterator<string> {
    for (let u = 0; u < this.users.top; u++) if (this.users.get(u, U_count) > 0) yield this.idOf[u] as string;
  }

  /** Frees one job of user row `u` (no occurrence left); the user goes with their last job. */
  protected removeJob(u: number, row: number): void {
    if (this.users.get(u, U_first) === row) this.users.set(u, U_first, this.jobs.get(row, J_next));
    else for (let r = this.users.get(u, U_first); r !== NONE; r = this.jobs.get(r, J_next)) if (this.jobs.get(r, J_next) === row) this.jobs.set(r, J_next, this.jobs.get(row, J_next));
    this.releaseJob(row);
    this.users.set(u, U_count, this.users.get(u, U_count) - 1);
    if (this.users.get(u, U_count) === 0) this.dropUser(this.idOf[u] as string, u);
  }

  protected releaseJob(row: number): void {
    this.jobs.set(row, J_gen, this.jobs.get(row, J_gen) + 1);
    // The row's date string stays until the row is reused: dates are interned, a few dozen strings.
    this.jobs.release(row);
    this.visitCount++;
  }

  protected zoneOf(zone: string): number {
    let z = this.zoneIndex.get(zone);
    if (z === undefined) {
      z = this.zones.length;
      this.zones.push(zone);
      this.zoneIndex.set(zone, z);
    }
    return z;
  }

  /**
   * One shared string per local date: every job holds one, and the dates in use are a few days'
   * worth, so a million jobs would otherwise keep a million copies of a handful of strings.
   */
  protected internDate(localDate: string): string {
    const known = this.dates.get(localDate);
    if (known !== undefined) return known;
    if (this.dates.size >= MAX_DATES) this.dates.clear();
    this.dates.set(localDate, localDate);
    return localDate;
  }

  protected bucket(row: number): void {
    const minute = this.jobs.get(row, J_fireMin);
    let b = this.buckets.get(minute);
    if (b === undefined) {
      b = new Bucket();
      this.buckets.set(minute, b);
      if (!this.inHeap.has(minute)) {
        this.inHeap.add(minute);
        heapPush(this.heap, minute);
      }
    }
    b.append(row, this.jobs.get(row, J_gen));
    this.jobs.set(row, J_inBucket, 1);
    this.visitCount += 2;
  }

  /**
   * Takes job `row` out of its bucket. The caller bumps the row's generation next (a freed or moved
   * row always gets a new one), which is what makes the pair left in the bucket dead.
   */
  protected unbucket(row: number): void {
    if (this.jobs.get(row, J_inBucket) !== 1) return;
    const minute = this.jobs.get(row, J_fireMin);
    const b = this.buckets.get(minute);
    this.visitCount++;
    this.jobs.set(row, J_inBucket, 0);
    if (b === undefined) return;
    this.visitCount++;
    // The heap entry stays; nextFireMinute drops it lazily. So do the bucket's dead pairs, until
    // the last live one goes (the bucket goes with them) or they outnumber the live ones.
    if (--b.live === 0) this.buckets.delete(minute);
    else if (b.wantsCompaction) this.visitCount += b.compact(this.inBucketAs);
  }

  /** True when job `row` is in a bucket under generation `gen` (a bucket's pair is live). */
  protected readonly inBucketAs = (row: number, gen: number): boolean => this.jobs.get(row, J_inBucket) === 1 && this.jobs.get(row, J_gen) === gen;

}


export function maskOf(days: readonly number[] | undefined): number {
  if (days === undefined) return ALL_DAYS;
  let mask = 0;
  for (const d of days) mask |= 1 << d;
  return mask;
}
