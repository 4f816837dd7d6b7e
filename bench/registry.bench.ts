/**
 * Suite `registry`: replace and cancel operations per second on mailwheel's JobRegistry
 * (typed job and user columns, an index by user id, minute buckets as (row, generation) pairs;
 * core/job-registry.ts) at 10k, 100k and 1M jobs, side by side with
 * the old design's single Map keyed `${userId}:${HH:MM}` whose replace/cancel scan every key for
 * the user's prefix (bench/lib/old-registry.ts). Same users, same seeded sequence of operations,
 * same fire-time math (`nextFire`), same process, same run. In-process and pure: no I/O.
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { JobRegistry } from '../src/core/job-registry.js';
import type { UserRecord } from '../src/core/types.js';
import { mulberry32 } from '../src/seed/generate-users.js';
import { OldRegistry } from './lib/old-registry.js';
import { round, type Row, type Suite } from './lib/suite.js';

/**
 * Every user has two slots, so N jobs are N/2 users: a replace then really swaps several jobs
 * and the old design's prefix scan has more than one match to delete.
 */
const SLOTS_PER_USER = 2;
/** A fixed "now" (Monday 2026-03-02 12:00 UTC) so every run computes the same fire times. */
const FROM_MS = Date.UTC(2026, 2, 2, 12, 0);
const ZONES = ['America/New_York', 'America/Los_Angeles', 'Europe/London', 'Europe/Berlin', 'Asia/Kolkata', 'Asia/Tokyo', 'Australia/Sydney', 'UTC'];
const TIMES = ['06:30', '07:00', '07:30', '08:00', '08:15', '09:00', '09:30', '12:00', '17:30', '18:00', '20:00', '21:00'];
const SEED = 6;

interface Bounds {
  /** A cell runs until it has done at least `minOps` operations AND for at least `minSeconds`... */
  minOps: number;
  minSeconds: number;
  /** ...but never longer than this (the old design at 1M manages only a handful of ops per second). */
  maxSeconds: number;
}

const FULL = { sizes: [10_000, 100_000, 1_000_000], bounds: { minOps: 200, minSeconds: 1, maxSeconds: 5 } };
const QUICK = { sizes: [1_000, 10_000, 100_000], bounds: { minOps: 50, minSeconds: 0.2, maxSeconds: 1 } };

/** What both designs offer; the suite drives them through this and nothing else. */
interface Store {
  readonly size: number;
  readonly visits: number;
  /** Schedule a user who has no jobs yet (initial load, re-adding a cancelled user). */
  add(user: UserRecord): void;
  replace(user: UserRecord): void;
  cancel(userId: string): void;
}

type Design = 'new' | 'old';

function newStore(): Store {
  const r = new JobRegistry();
  return {
    get size() {
      return r.size;
    },
    get visits() {
      return r.visits;
    },
    // JobRegistry has one entry point for both: upsertUser is O(1) whether or not the user exists.
    add: (u) => void r.upsertUser(u, FROM_MS),
    replace: (u) => void r.upsertUser(u, FROM_MS),
    cancel: (id) => void r.cancelUser(id),
  };
}

function oldStore(): Store {
  const r = new OldRegistry();
  return {
    get size() {
      return r.size;
    },
    get visits() {
      return r.visits;
    },
    add: (u) => void r.addUser(u, FROM_MS),
    replace: (u) => void r.upsertUser(u, FROM_MS),
    cancel: (id) => void r.cancelUser(id),
  };
}

/** Two distinct slots drawn from TIMES. */
function pickTimes(rng: () => number): string[] {
  const a = TIMES[Math.floor(rng() * TIMES.length)] as string;
  let b = a;
  while (b === a) b = TIMES[Math.floor(rng() * TIMES.length)] as string;
  return [a, b].sort();
}

/** `count` users with seeded zones and slots; ids are fixed-width so no id is a prefix of another. */
function makeUsers(count: number): UserRecord[] {
  const rng = mulberry32(SEED);
  return Array.from({ length: count }, (_, i) => {
    const id = `u${String(i).padStart(7, '0')}`;
    return { id, email: `${id}@example.test`, name: `User ${i}`, timezone: ZONES[Math.floor(rng() * ZONES.length)] as string, times: pickTimes(rng), days: undefined };
  });
}

interface Measured {
  ops: number;
  /** Seconds spent inside the timed operation (for cancel: the cancel only, not the re-add). */
  seconds: number;
  visits: number;
  /** performance.now() at the start and end of the cell (for the GC pauses that fall inside it). */
  from: number;
  to: number;
}

/**
 * GC pauses of this process, as [start, duration] in performance.now() ms. The registry's heap
 * grows with N, so a major GC costs more at 1M jobs: this shows how much of a cell is GC.
 */
class GcLog {
  readonly #pauses: Array<[number, number]> = [];
  readonly #observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) this.#pauses.push([e.startTime, e.duration]);
  });

  constructor() {
    this.#observer.observe({ entryTypes: ['gc'] });
  }

  /** Milliseconds of GC that started within [from, to]. Entries arrive asynchronously: await flush() first. */
  msBetween(from: number, to: number): number {
    let ms = 0;
    for (const [start, duration] of this.#pauses) if (start >= from && start <= to) ms += duration;
    return ms;
  }

  /** GC entries are delivered from a later turn of the event loop (a setImmediate is not enough). */
  flush(): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, 20));
  }

  stop(): void {
    this.#observer.disconnect();
  }
}

/** Runs `step` until the bounds say stop; `step` returns the seconds it wants counted. */
function timed(bounds: Bounds, store: Store, step: () => number): Measured {
  const visits0 = store.visits;
  const t0 = performance.now();
  let ops = 0;
  let seconds = 0;
  for (;;) {
    const elapsed = (performance.now() - t0) / 1000;
    if ((ops >= bounds.minOps && elapsed >= bounds.minSeconds) || elapsed >= bounds.maxSeconds) break;
    seconds += step();
    ops++;
  }
  return { ops, seconds, visits: store.visits - visits0, from: t0, to: performance.now() };
}

/** Replace: a random user gets new slot times (both designs compute the new fire times). */
function measureReplace(store: Store, users: UserRecord[], bounds: Bounds, seed: number): Measured {
  const rng = mulberry32(seed);
  return timed(bounds, store, () => {
    const i = Math.floor(rng() * users.length);
    const user = { ...(users[i] as UserRecord), times: pickTimes(rng) };
    users[i] = user;
    const t = performance.now();
    store.replace(user);
    return (performance.now() - t) / 1000;
  });
}

/** Cancel: a random user is removed (timed), then added back untimed so the size stays N. */
function measureCancel(store: Store, users: UserRecord[], bounds: Bounds, seed: number): Measured {
  const rng = mulberry32(seed);
  return timed(bounds, store, () => {
    const user = users[Math.floor(rng() * users.length)] as UserRecord;
    const t = performance.now();
    store.cancel(user.id);
    const s = (performance.now() - t) / 1000;
    store.add(user);
    return s;
  });
}

function row(jobs: number, users: number, design: Design, op: string, m: Measured, gc: GcLog): Row {
  return {
    jobs,
    users,
    design: design === 'new' ? 'mailwheel JobRegistry' : 'old: one Map, prefix scan',
    op,
    ops: m.ops,
    seconds: round(m.seconds, 3),
    opsPerS: Math.round(m.ops / m.seconds),
    usPerOp: round((m.seconds * 1e6) / m.ops, 2),
    visitsPerOp: round(m.visits / m.ops, 1),
    cellWallS: round((m.to - m.from) / 1000, 2),
    gcMsInCell: Math.round(gc.msBetween(m.from, m.to)),
  };
}

/** Builds one design's store with every user, then measures replace and cancel on it. */
async function measureDesign(design: Design, jobs: number, usersTemplate: readonly UserRecord[], bounds: Bounds, gc: GcLog, log: (l: string) => void): Promise<{ build: Row; replace: Measured; cancel: Measured; rows: Row[] }> {
  // A copy per design: replace rewrites users' slots, and both designs must start from the same data.
  const users = [...usersTemplate];
  const store = design === 'new' ? newStore() : oldStore();
  const t0 = performance.now();
  for (const u of users) store.add(u);
  const buildS = (performance.now() - t0) / 1000;
  if (store.size !== jobs) throw new Error(`${design} design holds ${store.size} jobs, expected ${jobs}`);
  log(`  ${design}: built ${jobs.toLocaleString('en')} jobs in ${round(buildS, 2)} s; replace...`);
  const replace = measureReplace(store, users, bounds, SEED + jobs);
  log(`  ${design}: ${replace.ops} replaces in ${round(replace.seconds, 2)} s; cancel...`);
  const cancel = measureCancel(store, users, bounds, SEED + 2 * jobs);
  log(`  ${design}: ${cancel.ops} cancels in ${round(cancel.seconds, 2)} s`);
  if (store.size !== jobs) throw new Error(`${design} design ends with ${store.size} jobs, expected ${jobs}`);
  await gc.flush();
  const build: Row = { jobs, users: users.length, design: design === 'new' ? 'mailwheel JobRegistry' : 'old: one Map, prefix scan', op: 'build (add every user)', ops: users.length, seconds: round(buildS, 3), opsPerS: Math.round(users.length / buildS), usPerOp: round((buildS * 1e6) / users.length, 2), visitsPerOp: null, cellWallS: round(buildS, 2), gcMsInCell: Math.round(gc.msBetween(t0, t0 + buildS * 1000)) };
  return { build, replace, cancel, rows: [row(jobs, users.length, design, 'replace', replace, gc), row(jobs, users.length, design, 'cancel', cancel, gc)] };
}

const rate = (m: Measured): number => m.ops / m.seconds;

const suite: Suite = {
  description:
    'JobRegistry replace/cancel ops/s at 10k, 100k and 1M jobs vs the old design (one Map keyed userId:time, replace/cancel = prefix scan over every key), same users, same seeded operations, same fire-time math',
  async run({ log, quick }) {
    const { sizes, bounds } = quick ? QUICK : FULL;
    const rows: Row[] = [];
    const comparisons: Row[] = [];
    const gc = new GcLog();
    /** µs per op of the new design at the smallest size: the flatness ratio's denominator. */
    let base: { replace: number; cancel: number } | undefined;
    try {
      for (const jobs of sizes) {
        const userCount = jobs / SLOTS_PER_USER;
        log(`${jobs.toLocaleString('en')} jobs (${userCount.toLocaleString('en')} users x ${SLOTS_PER_USER} slots)`);
        const users = makeUsers(userCount);
        // One design at a time, so the other's million jobs are garbage while this one is measured.
        const n = await measureDesign('new', jobs, users, bounds, gc, log);
        const o = await measureDesign('old', jobs, users, bounds, gc, log);
        rows.push(n.build, ...n.rows, o.build, ...o.rows);
        const us = { replace: (n.replace.seconds * 1e6) / n.replace.ops, cancel: (n.cancel.seconds * 1e6) / n.cancel.ops };
        base ??= us;
        comparisons.push({
          jobs,
          'replace new µs/op': round(us.replace, 2),
          'replace µs/op vs smallest': round(us.replace / base.replace, 2),
          'cancel new µs/op': round(us.cancel, 2),
          'cancel µs/op vs smallest': round(us.cancel / base.cancel, 2),
          'replace new ops/s': Math.round(rate(n.replace)),
          'replace old ops/s': Math.round(rate(o.replace)),
          'replace new/old': round(rate(n.replace) / rate(o.replace), 1),
          'cancel new ops/s': Math.round(rate(n.cancel)),
          'cancel old ops/s': Math.round(rate(o.cancel)),
          'cancel new/old': round(rate(n.cancel) / rate(o.cancel), 1),
          'visits/op new (replace)': round(n.replace.visits / n.replace.ops, 1),
          'visits/op old (replace)': round(o.replace.visits / o.replace.ops, 1),
        });
      }
    } finally {
      gc.stop();
    }
    return {
      config: { sizes, slotsPerUser: SLOTS_PER_USER, bounds, fromMs: new Date(FROM_MS).toISOString(), zones: ZONES, times: TIMES, seed: SEED },
      rows,
      comparisons,
      notes: [
        `N jobs = N/${SLOTS_PER_USER} users x ${SLOTS_PER_USER} slots; zones and slots from a seeded PRNG (mulberry32, seed ${SEED}); both designs hold the same users and run the same seeded sequence of random users`,
        'replace = a random user gets two new slot times: new design upsertUser (O(jobs of that user)), old design scans every key for `${userId}:`, deletes the matches, adds the new jobs',
        'cancel = a random user is removed (timed) and then re-added untimed so the size stays N; the old design re-adds with plain inserts (no scan)',
        'fire-time math (nextFire from src/core/fire-time.ts, luxon offsets, memoised) is done by both designs for every replace, so the comparison isolates the index structure; cancel does no date math in either',
        'the new design also maintains its minute buckets and user index on every operation; the old design has neither (and so could not fire a minute without another scan)',
        'the new design since issue 17: jobs and users are rows of typed columns (no object per job, no Set per bucket: a bucket is an array of (row, generation) pairs, removal lazy), the user index is open addressing over rows (user-index.ts); the flatness goal is replace/cancel µs per op at 1M <= 1.5x at 10k',
        `each cell runs at least ${bounds.minOps} operations and ${bounds.minSeconds} s, capped at ${bounds.maxSeconds} s (the old design at the largest size completes only a few hundred operations)`,
        'visitsPerOp counts Map/Set entries touched per operation (JobRegistry.visits; for the old design, keys scanned + sets + deletes): constant for the new design, ~N for the old one',
        'why cancel grows with size while replace stays flat (profiled on 2026-12-03 with per-operation timing, the fastest 90 % of operations, churn between them): a cancel does no date math, so what it costs is a chain of dependent memory reads (id hash -> index slot -> user row -> the user\'s job rows), each a likely cache miss at 1M jobs and none at 10k where the registry sits in the CPU caches; lazy bucket removal took the neighbour-link writes out (they were not on the critical path), the open-addressing index one read (lookup + user row at 1M 0.99-1.12 -> 0.82-0.87 µs); replace is dominated by its date math and stays flat',
        'single process, pure CPU, one core; timings include GC pauses that fall inside an operation; gcMsInCell = GC pause time (perf_hooks gc entries) that started during the cell, cellWallS = the cell\'s wall time (for cancel it includes the untimed re-adds)',
      ],
    };
  },
};

export default suite;
