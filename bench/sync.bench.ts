/**
 * Suite `sync`: mailwheel's full UserSync of 100,000 and 1,000,000 users from the MongoDB-wire
 * server (FerretDB here), each in a fresh child process (bench/workers/sync-worker.ts) so its peak
 * RSS is the sync's alone: seconds, users/s, peak RSS, registry heap and bytes per job; then 1 % of
 * users change or sign up and an incremental sync reads them. Measured in the same run, against:
 *
 * - the old design's read, `find({active: true}).to_list(1000)`: fast, and it serves 1,000 of N;
 * - a raw driver cursor over the same users (same filter, projection, batchSize) in its own fresh
 *   child: the physical limit of reading users from this server, so the reader can see how much
 *   of a sync is the server and how much is mailwheel's validation and registry work.
 *
 * Users come from mailwheel's own seed generator (src/seed/generate-users.ts): ~28 IANA zones
 * weighted like a global consumer app, 1-3 slots clustered on morning hours, some weekday-only.
 * Each size has its own database, seeded from scratch and dropped after it.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Db } from 'mongodb';
import { loadConfig } from '../src/config/load.js';
import { generateUsers, type SeedUser } from '../src/seed/generate-users.js';
import { withDbName } from '../scripts/lib/mongo-server.js';
import { insertMany, startBenchDb } from './lib/db.js';
import { DAEMON_ENV, repoRoot, spawnWatched } from './lib/proc.js';
import { round, type Row, type Suite } from './lib/suite.js';
import { summarizeCpuProfile } from './workers/sync-profile.js';
import type { ChangeResult, RawResult, SyncResult, WorkerJob, WorkerResult } from './workers/sync-worker.js';

const FULL_SIZES = [100_000, 1_000_000];
const QUICK_SIZES = [10_000, 50_000];
/** New users (share of N) inserted before the incremental sync. */
const NEW_SHARE = 0.01;
/**
 * Existing users changed by updateOne before the incremental sync. Few, because on FerretDB
 * v1.24.2 every update/replace/delete by exact _id scans the whole table (measured: ~40 ms at
 * 5k users, ~150 ms at 40k, linear in N); 1 % of 1M as updates would take hours here.
 */
const UPDATED_EXISTING = 3;
/** What the changed users' slots become (a visible change the registry must pick up). */
const CHANGED_TIMES = ['10:15', '19:45'];
/** The old design's cap: `find({active: true}).to_list(1000)`. */
const OLD_CAP = 1000;
const SEED = 20_260_601;
const WORKER = join(repoRoot, 'bench', 'workers', 'sync-worker.ts');
/** A worker (one full read of the users, or a full + incremental sync) gives up after this long. */
const WORKER_MAX_SECONDS = 900;

/** `count` seeded users, updatedAt two days back (so an incremental sync sees only what the run changes). */
function seededUsers(count: number): Generator<SeedUser> {
  const { config } = loadConfig({ env: {} });
  return generateUsers({ count, seed: SEED, inactiveRatio: 0, invalidRatio: 0, nowMs: Date.now() - 2 * 86_400_000, fields: config.users.fields });
}

/** Seeds `count` users into `db`.users; returns the seconds taken and the _ids of the first `keep`. */
async function seed(db: Db, count: number, keep: number, log: (l: string) => void): Promise<{ seconds: number; firstIds: string[] }> {
  const gen = seededUsers(count);
  const firstIds: string[] = [];
  const seconds = await insertMany(db, 'users', count, () => {
    const r = gen.next();
    if (r.done === true) throw new Error('seed generator exhausted');
    if (firstIds.length < keep) firstIds.push(idHex(r.value.doc['_id']));
    return r.value.doc;
  }, log);
  return { seconds, firstIds };
}

function idHex(id: unknown): string {
  if (typeof id === 'object' && id !== null && 'toHexString' in id && typeof id.toHexString === 'function') return String(id.toHexString());
  throw new Error(`expected an ObjectId, got ${String(id)}`);
}

interface WorkerRun<R> {
  result: R;
  /** Highest VmHWM the parent sampled over the worker's whole life (incremental sync included). */
  sampledPeakMiB: number;
  wallSeconds: number;
}

/** Runs the worker in a fresh `node --expose-gc --import tsx` process and relays its progress. */
async function runWorker<R extends WorkerResult>(job: WorkerJob, log: (l: string) => void, profileDir?: string): Promise<WorkerRun<R>> {
  const nodeArgs = ['--expose-gc', '--import', 'tsx', ...(profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${profileDir}`])];
  const w = spawnWatched(process.execPath, [...nodeArgs, WORKER, JSON.stringify(job)], { ...DAEMON_ENV });
  let partial = '';
  w.child.stderr?.on('data', (b: Buffer) => {
    const lines = (partial + b.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) if (l.trim() !== '') log(`  [worker ${w.pid}] ${l.trim()}`);
  });
  // The worker bounds itself; this is the backstop if it cannot (stopped by its own pid only).
  const backstop = setTimeout(() => w.kill('SIGKILL'), (job.maxSeconds + 30) * 1000);
  const done = await w.done.finally(() => clearTimeout(backstop));
  const line = done.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (done.code !== 0 || line === undefined) throw new Error(`sync worker (${job.mode}) exited ${String(done.code ?? done.signal)}; stderr tail:\n${done.stderr.slice(-2000)}`);
  return { result: JSON.parse(line.slice('RESULT '.length)) as R, sampledPeakMiB: done.peakRssMiB, wallSeconds: done.seconds };
}

/** The old design's read: the first 1,000 active users, whole documents, and nobody after them. */
async function oldDesignRead(db: Db): Promise<{ served: number; seconds: number }> {
  const t0 = performance.now();
  const docs = await db.collection('users').find({ active: true }).limit(OLD_CAP).toArray();
  return { served: docs.length, seconds: (performance.now() - t0) / 1000 };
}

const mib = (n: number): number => round(n, 1);

interface SizeFigures {
  users: number;
  seedSeconds: number;
  old: { served: number; seconds: number };
  raw: WorkerRun<RawResult>;
  sync: WorkerRun<SyncResult>;
}

function rowsFor(f: SizeFigures): Row[] {
  const { users, raw, sync } = f;
  const s = sync.result;
  return [
    { users, step: 'seed (insertMany, 1,000 per batch, 1 in flight)', read: users, seconds: round(f.seedSeconds, 1), usersPerS: Math.round(users / f.seedSeconds), jobs: null, peakRssMiB: null, rssBeforeMiB: null, heapDeltaMiB: null, bytesPerJob: null },
    { users, step: `old design: find({active:true}).to_list(${OLD_CAP})`, read: f.old.served, seconds: round(f.old.seconds, 2), usersPerS: Math.round(f.old.served / f.old.seconds), jobs: null, peakRssMiB: null, rssBeforeMiB: null, heapDeltaMiB: null, bytesPerJob: null },
    { users, step: 'raw driver cursor (physical limit)', read: raw.result.read, seconds: round(raw.result.seconds, 1), usersPerS: Math.round(raw.result.read / raw.result.seconds), jobs: null, peakRssMiB: mib(raw.result.maxRssMiB), rssBeforeMiB: mib(raw.result.rssBeforeMiB), heapDeltaMiB: null, bytesPerJob: null },
    { users, step: 'mailwheel full UserSync', read: s.full.read, seconds: round(s.full.seconds, 1), usersPerS: Math.round(s.full.read / s.full.seconds), jobs: s.full.jobs, peakRssMiB: mib(s.maxRssMiB), rssBeforeMiB: mib(s.rssBeforeMiB), heapDeltaMiB: mib(s.heapDeltaBytes / 2 ** 20), bytesPerJob: Math.round(s.bytesPerJob) },
    { users, step: 'second full UserSync, nobody changed (kept as held)', read: s.resync.read, seconds: round(s.resync.seconds, 1), usersPerS: Math.round(s.resync.read / s.resync.seconds), jobs: s.resync.jobs, peakRssMiB: mib(s.resync.peakRssMiB), rssBeforeMiB: mib(s.steadyRssMiB), heapDeltaMiB: mib(s.resync.heapDeltaBytes / 2 ** 20), bytesPerJob: null },
    ...changeRows(users, s.change, sync.sampledPeakMiB),
  ];
}

function changeRows(users: number, c: ChangeResult | undefined, sampledPeakMiB: number): Row[] {
  if (c === undefined) return [];
  return [
    { users, step: `change ${UPDATED_EXISTING} existing users (updateOne by _id, sequential)`, read: c.update.modified, seconds: round(c.update.seconds, 2), usersPerS: round(c.update.modified / c.update.seconds, 1), jobs: null, peakRssMiB: null, rssBeforeMiB: null, heapDeltaMiB: null, bytesPerJob: null },
    { users, step: `add ${NEW_SHARE * 100} % new users (insertMany)`, read: c.insert.inserted, seconds: round(c.insert.seconds, 2), usersPerS: Math.round(c.insert.inserted / c.insert.seconds), jobs: null, peakRssMiB: null, rssBeforeMiB: null, heapDeltaMiB: null, bytesPerJob: null },
    { users, step: 'mailwheel incremental UserSync', read: c.incremental.read, seconds: round(c.incremental.seconds, 2), usersPerS: Math.round(c.incremental.read / c.incremental.seconds), jobs: c.incremental.jobs, peakRssMiB: mib(sampledPeakMiB), rssBeforeMiB: null, heapDeltaMiB: null, bytesPerJob: null },
  ];
}

/** What a correct run must show; anything else becomes a note (a benchmark reports, it does not fail). */
function checkSync(users: number, newUsers: number, s: SyncResult, notes: string[]): void {
  if (s.full.read !== users || s.full.valid !== users) notes.push(`${users}: the full sync read ${s.full.read} users (${s.full.valid} valid), expected ${users}`);
  const c = s.change;
  if (c === undefined) return;
  const expectedInc = newUsers + UPDATED_EXISTING;
  if (c.incremental.read !== expectedInc) notes.push(`${users}: the incremental sync read ${c.incremental.read} users, expected ${expectedInc}`);
  if (c.incremental.users !== users + newUsers) notes.push(`${users}: after the incremental sync the registry has ${c.incremental.users} users, expected ${users + newUsers}`);
  const wrong = c.changedUserTimes.filter((t) => t.join(',') !== CHANGED_TIMES.join(','));
  if (wrong.length > 0) notes.push(`${users}: after the incremental sync ${wrong.length} changed users have other slots than [${CHANGED_TIMES.join(', ')}]: ${JSON.stringify(wrong)}`);
}

function comparisonFor(f: SizeFigures): Row {
  const s = f.sync.result;
  const r = f.raw.result;
  return {
    users: f.users,
    'full sync s': round(s.full.seconds, 1),
    'raw read s': round(r.seconds, 1),
    'raw read / sync time': round(r.seconds / s.full.seconds, 2),
    'sync users/s': Math.round(s.full.read / s.full.seconds),
    'raw users/s': Math.round(r.read / r.seconds),
    'sync peak RSS MiB': mib(s.maxRssMiB),
    'raw peak RSS MiB': mib(r.maxRssMiB),
    'bytes/job': Math.round(s.bytesPerJob),
    'RSS after sync + gc MiB': mib(s.steadyRssMiB),
    'second sync kept': `${s.resync.unchanged.toLocaleString('en')} / ${s.resync.read.toLocaleString('en')}`,
    'second sync s': round(s.resync.seconds, 1),
    'second sync peak RSS MiB': mib(s.resync.peakRssMiB),
    'old design served': f.old.served,
    'old design share of users': `${round((100 * f.old.served) / f.users, 1)} %`,
    'incremental s': s.change === undefined ? null : round(s.change.incremental.seconds, 2),
    'incremental / full time': s.change === undefined ? null : round(s.change.incremental.seconds / s.full.seconds, 2),
  };
}

/** Profiles one more sync worker and turns the top of the profile into notes. */
async function profileNotes(job: WorkerJob, log: (l: string) => void): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'mailwheel-bench-prof-'));
  try {
    log(`profiling a sync of ${job.users.toLocaleString('en')} users (--cpu-prof)...`);
    await runWorker<SyncResult>(job, log, dir);
    const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
    if (file === undefined) return ['profile: no .cpuprofile written'];
    const p = summarizeCpuProfile(join(dir, file), 10);
    return [
      `profile (--cpu-prof) of one more sync worker at ${job.users.toLocaleString('en')} users (the same database, now holding the measured run's ${NEW_SHARE * 100} % new users too), whole process life (start-up, full and incremental sync): ${p.totalMs} ms, of which idle (waiting for the server) ${p.idleMs} ms and busy ${p.busyMs} ms`,
      `profile, busy time by origin: ${p.byOrigin.map((l) => `${l.name} ${l.share} %`).join('; ')}`,
      `profile, busy time, top functions (self): ${p.byFunction.map((l) => `${l.name} ${l.share} %`).join('; ')}`,
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const suite: Suite = {
  description:
    'Full UserSync of 100k and 1M users from FerretDB (fresh child per run: seconds, users/s, peak RSS, bytes/job) and incremental sync of 1 % changed, vs the old design find().to_list(1000) and a raw driver cursor read (physical limit)',
  async run({ log, quick }) {
    const sizes = quick ? QUICK_SIZES : FULL_SIZES;
    const largest = sizes[sizes.length - 1] as number;
    const profile = process.env['BENCH_SYNC_PROFILE'] === '1';
    const server = await startBenchDb('mailwheel_bench_sync', log);
    const serverKind = server.kind;
    log(`MongoDB-wire server: ${serverKind}`);
    const rows: Row[] = [];
    const comparisons: Row[] = [];
    const notes: string[] = [];
    try {
      for (const users of sizes) {
        // A database per size (its own SQLite file on FerretDB), dropped afterwards: the larger
        // size must not see the smaller one's changed and new users.
        const dbName = `mailwheel_bench_sync_${users}`;
        const db = server.client.db(dbName);
        try {
          log(`${users.toLocaleString('en')} users: seeding...`);
          const seeded = await seed(db, users, UPDATED_EXISTING, log);
          log(`  seeded ${users.toLocaleString('en')} users in ${round(seeded.seconds, 1)} s (${Math.round(users / seeded.seconds)} users/s)`);

          const old = await oldDesignRead(db);
          log(`  old design read: ${old.served} users in ${round(old.seconds, 2)} s`);

          // The incremental sync runs at the smallest size only (see WorkerJob.incremental).
          const incremental = users === sizes[0];
          const base = { uri: withDbName(server.uri, dbName), users, maxSeconds: WORKER_MAX_SECONDS, incremental };
          log('  raw driver cursor read (fresh child)...');
          const raw = await runWorker<RawResult>({ ...base, mode: 'raw' }, log);
          log(`  raw read: ${raw.result.read.toLocaleString('en')} users in ${round(raw.result.seconds, 1)} s`);

          const newUsers = incremental ? users * NEW_SHARE : 0;
          const syncJob: WorkerJob = { ...base, mode: 'sync', updateIds: seeded.firstIds, changedTimes: CHANGED_TIMES, newUsers: { count: newUsers, seed: SEED + 1, firstIndex: users } };
          log(`  mailwheel full${incremental ? ' + incremental' : ''} sync (fresh child)...`);
          const sync = await runWorker<SyncResult>(syncJob, log);
          const s = sync.result;
          log(`  full sync: ${s.full.read.toLocaleString('en')} users in ${round(s.full.seconds, 1)} s, peak RSS ${mib(s.maxRssMiB)} MiB${s.change === undefined ? '' : `; incremental: ${s.change.incremental.read} users in ${round(s.change.incremental.seconds, 2)} s`}`);
          checkSync(users, newUsers, s, notes);

          const figures: SizeFigures = { users, seedSeconds: seeded.seconds, old, raw, sync };
          rows.push(...rowsFor(figures));
          comparisons.push(comparisonFor(figures));
          if (profile && users === largest) notes.push(...(await profileNotes(syncJob, log)));
        } finally {
          await db.dropDatabase();
        }
      }
    } finally {
      await server.stop();
      log('database server stopped');
    }
    notes.push(
      `users from src/seed/generate-users.ts (seed ${SEED}): all active and valid, ~28 weighted IANA zones, 1-3 slots (60/30/10 %), ~28 % with weekday restrictions; each size in its own database, seeded from scratch`,
      'every full sync, raw read and incremental sync runs in a fresh `node --expose-gc --import tsx` child; peakRssMiB = process.resourceUsage().maxRSS right after the full sync (raw: after the read); the incremental row shows the VmHWM the parent sampled over the worker\'s whole life',
      'heapDeltaMiB = (heapUsed + arrayBuffers) after gc() following the full sync minus the same after gc() before it (typed arrays\' memory is outside V8\'s heap, so heapUsed alone would miss the registry\'s columns); bytes/job = that delta / jobs in the registry: everything the scheduler keeps once the sync is done (user ids and their index, the registry\'s typed job and user columns with their growth spare, buckets, interned dates, every user\'s email and name packed as UTF-8 (core/contact-arena.ts), UserSync\'s state, and the fire-time memo cache of up to 100,000 entries)',
      'RSS after sync + gc = process RSS after the full sync and two gc() calls: the steady footprint with every user scheduled; second full sync = UserSync.full() again at once, nobody changed: each user is compared with what the registry holds and kept (no allocation, no date math), its peak RSS sampled in-process every 50 ms',
      'raw driver cursor = find({active: true}) with the same projection and batchSize (config mongodb.batchSize) as MongoUserSource, documents only counted: what reading alone costs here; "raw read / sync time" is the share of the sync that reading from the server accounts for',
      `old design = find({active: true}).limit(${OLD_CAP}).toArray() (to_list(${OLD_CAP})): it is fast because it stops at ${OLD_CAP} users, and everyone after them is never scheduled`,
      `incremental: after the full sync ${UPDATED_EXISTING} existing users get updatedAt = now and new slots [${CHANGED_TIMES.join(', ')}] (updateOne by exact _id) and ${NEW_SHARE * 100} % of N new users are inserted (insertMany, updatedAt = now); then UserSync.incremental() reads updatedAt > last sync start - 60 s. The 1 % are new users rather than updates because every write by _id on FerretDB v1.24.2 scans the whole table (see the updateOne row: seconds per update grow with N), and updateMany with a range filter costs one scan per matched document; both paths end in the same JobRegistry.upsertUser`,
      'on FerretDB v1 the incremental find (updatedAt > since) is a full table scan (only exact {_id} filters are pushed down to SQLite), so an incremental sync here costs a scan of every user; on MongoDB with an index on updatedAt it would read only the changed users',
      `the incremental sync is measured at ${sizes[0]?.toLocaleString('en')} users only: at the larger size the _id updates and the incremental read are each a scan of the whole table on FerretDB (79 s for the incremental read at 1M in an earlier run), minutes that say nothing the smaller size does not`,
      'FerretDB v1.24.2 (SQLite backend) on 127.0.0.1, on the same 2 cores as the worker: the server\'s CPU competes with the sync\'s',
    );
    if (!profile) notes.push('run with BENCH_SYNC_PROFILE=1 to add a --cpu-prof summary of one more sync worker at the largest size');
    return {
      config: { sizes, newShare: NEW_SHARE, updatedExisting: UPDATED_EXISTING, changedTimes: CHANGED_TIMES, oldCap: OLD_CAP, seed: SEED, batchSize: loadConfig({ env: {} }).config.mongodb.batchSize, server: serverKind, daemonEnv: DAEMON_ENV },
      rows,
      comparisons,
      notes,
    };
  },
};

export default suite;
