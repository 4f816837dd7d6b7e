/**
 * The storage under the {@link JobRegistry} (job-registry.ts has the operations and the design):
 * the typed user and job columns, the user index, the interned zones and dates, the minute buckets
 * as linked lists of job rows, and the helpers that keep them consistent. Split out so each file
 * stays readable; nothing but the registry uses it.
 */
import { epochMinute } from './fire-time.js';
import { PackedRows, heapPush } from './packed-columns.js';

/** What the registry needs of a user: the scheduling fields only. */
export interface Schedule {
  id: string;
  /** IANA zone name. */
  timezone: string;
  /** Local times of day, `HH:MM`. */
  times: readonly string[];
  /** Local weekdays allowed (0 = Sunday); undefined means every day. */
  days: readonly number[] | undefined;
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

interface Bucket {
  head: number;
  size: number;
}

export const n = (v: number | undefined): number => v as number;

export abstract class JobTable {
  protected readonly users = new PackedRows({ zone: 'u16', days: 'u8', first: 'i32', count: 'u8', fromMin: 'i32', mark: 'u8' });
  protected readonly userIndex = new Map<string, number>();
  protected idOf: string[] = [];
  protected readonly jobs = new PackedRows({ user: 'i32', minute: 'u16', fireAt: 'f64', next: 'i32', prev: 'i32', bnext: 'i32', inBucket: 'u8', gen: 'i32' });
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

  /** A fired-job object for `row` as it is now. */
  protected jobAt(row: number): Job {
    const j = this.jobs.cols;
    const u = n(j.user[row]);
    const userId = this.idOf[u] as string;
    const time = HHMM[n(j.minute[row])] as string;
    return { id: jobId(userId, time), userId, time, timezone: this.zones[n(this.users.cols.zone[u])] as string, fireAt: n(j.fireAt[row]), localDate: this.jobDates[row] as string, row, gen: n(j.gen[row]) };
  }

  /**
   * True when recomputing `user` from `fromMs` would give exactly the jobs held: same zone,
   * weekdays and slots, computed from an instant at or before `fromMs`, none due before it, and
   * none taken out of its bucket (a fire in progress).
   */
  protected unchanged(u: number, user: Schedule, fromMs: number): boolean {
    const uc = this.users.cols;
    if (this.zones[n(uc.zone[u])] !== user.timezone || uc.days[u] !== maskOf(user.days)) return false;
    if (n(uc.fromMin[u]) * 60_000 > fromMs) return false;
    const j = this.jobs.cols;
    let held = 0;
    for (let row = n(uc.first[u]); row !== NONE; row = n(j.next[row])) {
      if (j.inBucket[row] !== 1 || n(j.fireAt[row]) < fromMs) return false;
      if (!user.times.includes(HHMM[n(j.minute[row])] as string)) return false;
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
    this.userIndex.delete(id);
    this.idOf[u] = '';
    this.users.release(u);
    this.visitCount++;
  }

  /** Unbuckets and frees every job of user row `u`. @returns how many. */
  protected freeJobs(u: number): number {
    const j = this.jobs.cols;
    let count = 0;
    for (let row = n(this.users.cols.first[u]); row !== NONE; ) {
      const next = n(j.next[row]);
      this.unbucket(row);
      this.releaseJob(row);
      count++;
      row = next;
    }
    this.users.cols.first[u] = NONE;
    this.users.cols.count[u] = 0;
    return count;
  }

  /** Frees one job of user row `u` (no occurrence left); the user goes with their last job. */
  protected removeJob(u: number, row: number): void {
    const j = this.jobs.cols;
    const uc = this.users.cols;
    if (uc.first[u] === row) uc.first[u] = n(j.next[row]);
    else for (let r = n(uc.first[u]); r !== NONE; r = n(j.next[r])) if (j.next[r] === row) j.next[r] = n(j.next[row]);
    this.releaseJob(row);
    uc.count[u] = n(uc.count[u]) - 1;
    if (uc.count[u] === 0) this.dropUser(this.idOf[u] as string, u);
  }

  protected releaseJob(row: number): void {
    const j = this.jobs.cols;
    j.gen[row] = n(j.gen[row]) + 1;
    this.jobDates[row] = '';
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
    const j = this.jobs.cols;
    const minute = epochMinute(n(j.fireAt[row]));
    let b = this.buckets.get(minute);
    if (b === undefined) {
      b = { head: NONE, size: 0 };
      this.buckets.set(minute, b);
      if (!this.inHeap.has(minute)) {
        this.inHeap.add(minute);
        heapPush(this.heap, minute);
      }
    }
    j.prev[row] = NONE;
    j.bnext[row] = b.head;
    if (b.head !== NONE) j.prev[b.head] = row;
    b.head = row;
    b.size++;
    j.inBucket[row] = 1;
    this.visitCount += 2;
  }

  protected unbucket(row: number): void {
    const j = this.jobs.cols;
    if (j.inBucket[row] !== 1) return;
    const minute = epochMinute(n(j.fireAt[row]));
    const b = this.buckets.get(minute);
    this.visitCount++;
    j.inBucket[row] = 0;
    if (b === undefined) return;
    const prev = n(j.prev[row]);
    const next = n(j.bnext[row]);
    if (prev === NONE) b.head = next;
    else j.bnext[prev] = next;
    if (next !== NONE) j.prev[next] = prev;
    this.visitCount++;
    // The heap entry stays; nextFireMinute drops it lazily.
    if (--b.size === 0) this.buckets.delete(minute);
  }
}


export function maskOf(days: readonly number[] | undefined): number {
  if (days === undefined) return ALL_DAYS;
  let mask = 0;
  for (const d of days) mask |= 1 << d;
  return mask;
}
