/**
 * Child process of the `sync` suite, run fresh for every measurement so that its peak RSS
 * (`process.resourceUsage().maxRSS`, VmHWM) belongs to that measurement alone:
 *
 *   node --expose-gc --import tsx bench/workers/sync-worker.ts '<WorkerJob as JSON>'
 *
 * mode `raw`:  one driver cursor over the active users, same filter, projection and batchSize as
 *              MongoUserSource, documents only counted (the physical limit of reading them here);
 * mode `sync`: mailwheel's full UserSync (MongoUserSource -> checkUser -> JobRegistry) wired as
 *              src/app/app.ts wires it; then a few existing users change and 1 % new users arrive,
 *              and an incremental sync picks them up.
 *
 * Progress goes to stderr; the result is one line `RESULT {json}` on stdout.
 */
import { readFileSync } from 'node:fs';
import { MongoClient, ObjectId, type Collection, type Document } from 'mongodb';
import pino from 'pino';
import { MongoUserSource } from '../../src/adapters/mongo/user-source.js';
import { loadConfig } from '../../src/config/load.js';
import { JobRegistry } from '../../src/core/job-registry.js';
import { UserSync } from '../../src/core/user-sync.js';
import type { FieldMap } from '../../src/core/validate-user.js';
import { generateUsers } from '../../src/seed/generate-users.js';
import { systemClock, type EventRecorder, type RawUser, type UserSource } from '../../src/ports/index.js';

export interface WorkerJob {
  mode: 'raw' | 'sync';
  uri: string;
  /** Users expected (for progress lines). */
  users: number;
  /**
   * sync mode: after the full sync, change users and time an incremental sync. Off for the largest
   * size: on FerretDB every _id write and the incremental read each scan the table, which would
   * cost minutes at 1M without telling more than the smaller size does.
   */
  incremental: boolean;
  /** sync mode: existing users (ObjectId hex) changed with updateOne by exact _id before the incremental sync. */
  updateIds?: string[];
  /** The slot times every changed user gets. */
  changedTimes?: string[];
  /** sync mode: new users inserted (insertMany) before the incremental sync, from the seed generator. */
  newUsers?: { count: number; seed: number; firstIndex: number };
  /** Hard bound on the worker's life, so a hung server cannot keep it running. */
  maxSeconds: number;
}

export interface MemoryFigures {
  /** RSS when connected and ready, before the measured work. */
  rssBeforeMiB: number;
  /** `process.resourceUsage().maxRSS` right after the measured work. */
  maxRssMiB: number;
  /** VmHWM from /proc/self/status at the same moment (the kernel's own peak). */
  hwmMiB: number;
}

export interface RawResult extends MemoryFigures {
  mode: 'raw';
  read: number;
  seconds: number;
}

/**
 * What the process holds in V8's heap and in ArrayBuffers (typed arrays' backing stores are not
 * in heapUsed): everything the registry keeps, counted.
 */
function heldBytes(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

export interface SyncResult extends MemoryFigures {
  mode: 'sync';
  full: { read: number; valid: number; invalid: number; jobs: number; users: number; seconds: number; reportMs: number };
  /**
   * heapUsed + arrayBuffers after gc() following the full sync, minus the same before it: the
   * registry's typed columns and packed contacts live in ArrayBuffers, outside V8's heap.
   */
  heapDeltaBytes: number;
  /** RSS after the full sync and gc(): what the process holds with every user scheduled (steady). */
  steadyRssMiB: number;
  /** The registry's typed columns: rows allocated for users and jobs (growth spare included). */
  rows: { users: number; jobs: number };
  /** A second full sync right after the first, nobody changed: what a periodic full sync costs. */
  resync: { seconds: number; read: number; unchanged: number; jobs: number; peakRssMiB: number; heapDeltaBytes: number };
  bytesPerJob: number;
  /** The changes and the incremental sync, when the job asked for them. */
  change?: ChangeResult;
}

export interface ChangeResult {
  /** updateOne by exact _id of `updateIds`, one after another. */
  update: { modified: number; seconds: number };
  /** insertMany of `newUsers`. */
  insert: { inserted: number; seconds: number };
  incremental: { read: number; valid: number; seconds: number; reportMs: number; jobs: number; users: number };
  /** Each changed user's slots in the registry after the incremental sync (each should be changedTimes). */
  changedUserTimes: string[][];
}

export type WorkerResult = RawResult | SyncResult;

const MIB = 1024 * 1024;

function progress(line: string): void {
  process.stderr.write(`${line}\n`);
}

function hwmMiB(): number {
  const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return m === null ? Number.NaN : Number(m[1]) / 1024;
}

function memoryAfter(rssBefore: number): MemoryFigures {
  // maxRSS is in kilobytes on Linux.
  return { rssBeforeMiB: rssBefore / MIB, maxRssMiB: process.resourceUsage().maxRSS / 1024, hwmMiB: hwmMiB() };
}

/** `global.gc` exists only with --expose-gc; without it the heap figures would be meaningless. */
function collect(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run the worker with node --expose-gc');
  gc();
  gc();
}

/** Logs every 10 % of `total` as `count` grows. */
function progressEvery(label: string, total: number): (count: number) => void {
  const t0 = performance.now();
  let next = total / 10;
  return (count) => {
    if (count < next) return;
    progress(`  ${label}: ${count.toLocaleString('en')} / ${total.toLocaleString('en')} users (${Math.round(performance.now() - t0) / 1000} s)`);
    while (next <= count) next += total / 10;
  };
}

/** Passes the source's batches through, logging progress; costs one counter per batch. */
function withProgress(source: UserSource, total: number): UserSource {
  return {
    allActive: () => counted(source.allActive(), progressEvery('full sync read', total)),
    changedSince: (since) => source.changedSince(since),
    byId: (id) => source.byId(id),
  };
}

async function* counted(batches: AsyncIterable<RawUser[]>, report: (count: number) => void): AsyncGenerator<RawUser[]> {
  let n = 0;
  for await (const batch of batches) {
    n += batch.length;
    report(n);
    yield batch;
  }
}

async function runRaw(job: WorkerJob, client: MongoClient): Promise<RawResult> {
  const { config } = loadConfig({ env: { MONGODB_URI: job.uri } });
  const f = config.users.fields;
  // The same filter, projection and batchSize as MongoUserSource.allActive().
  const projection = Object.fromEntries(Object.values(f).map((field) => [field, 1]));
  const rssBefore = process.memoryUsage().rss;
  const report = progressEvery('raw cursor read', job.users);
  const t0 = performance.now();
  let read = 0;
  const cursor = client.db().collection(config.users.collection).find({ [f.active]: true }, { projection, batchSize: config.mongodb.batchSize });
  for await (const _doc of cursor) {
    read++;
    if (read % config.mongodb.batchSize === 0) report(read);
  }
  const seconds = (performance.now() - t0) / 1000;
  return { mode: 'raw', read, seconds, ...memoryAfter(rssBefore) };
}

async function runSync(job: WorkerJob, client: MongoClient): Promise<SyncResult> {
  const { config } = loadConfig({ env: { MONGODB_URI: job.uri } });
  const users = client.db().collection<Document>(config.users.collection);
  const log = pino({ level: 'silent' });
  // No invalid users are seeded, so nothing is recorded; the recorder is only there to satisfy UserSync.
  const events: EventRecorder = { record: () => Promise.resolve() };

  collect();
  const heapBefore = heldBytes();
  const rssBefore = process.memoryUsage().rss;
  const registry = new JobRegistry();
  const source = withProgress(new MongoUserSource(users, config), job.users);
  const sync = new UserSync({ source, registry, events, clock: systemClock }, config.users.fields, log.child({ part: 'sync' }));

  const t0 = performance.now();
  const full = await sync.full();
  const fullSeconds = (performance.now() - t0) / 1000;
  const memory = memoryAfter(rssBefore);
  collect();
  const heapDeltaBytes = heldBytes() - heapBefore;
  const steadyRssMiB = process.memoryUsage().rss / MIB;
  progress(`  full sync: ${full.read.toLocaleString('en')} users, ${registry.size.toLocaleString('en')} jobs in ${Math.round(fullSeconds * 10) / 10} s; heap +${Math.round(heapDeltaBytes / MIB)} MiB; RSS after gc ${Math.round(steadyRssMiB)} MiB`);
  const resync = await fullAgain(sync);
  progress(`  second full sync (nobody changed): ${resync.unchanged.toLocaleString('en')} of ${resync.read.toLocaleString('en')} kept in ${Math.round(resync.seconds * 10) / 10} s, peak RSS ${Math.round(resync.peakRssMiB)} MiB`);

  return {
    mode: 'sync',
    full: { read: full.read, valid: full.valid, invalid: full.invalid, jobs: registry.size, users: registry.userCount, seconds: fullSeconds, reportMs: full.ms },
    heapDeltaBytes,
    steadyRssMiB,
    rows: registry.rows,
    resync,
    bytesPerJob: heapDeltaBytes / Math.max(1, full.jobs),
    ...(job.incremental ? { change: await changeAndResync(job, users, sync, registry, config.users.fields) } : {}),
    ...memory,
  };
}

/**
 * A second full sync of the same users: each is compared with what the registry holds and kept.
 * Its peak RSS is sampled in-process every 50 ms (VmHWM still holds the first sync's peak).
 */
async function fullAgain(sync: UserSync): Promise<SyncResult['resync']> {
  collect();
  const heapBefore = heldBytes();
  let peak = process.memoryUsage().rss;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 50);
  const t0 = performance.now();
  const r = await sync.full();
  const seconds = (performance.now() - t0) / 1000;
  clearInterval(sampler);
  peak = Math.max(peak, process.memoryUsage().rss);
  collect();
  return { seconds, read: r.read, unchanged: r.unchanged, jobs: r.jobs, peakRssMiB: peak / MIB, heapDeltaBytes: heldBytes() - heapBefore };
}

/**
 * Users change the way an application changes them: some existing users get new times (and
 * updatedAt), new users sign up; then an incremental sync picks them up. On FerretDB v1 every
 * write by _id costs a scan of the table, so only a handful of existing users are updated; the
 * bulk of the change is new users.
 */
async function changeAndResync(job: WorkerJob, users: Collection<Document>, sync: UserSync, registry: JobRegistry, f: FieldMap): Promise<ChangeResult> {
  const times = job.changedTimes ?? ['10:15'];
  const tu = performance.now();
  let modified = 0;
  for (const id of job.updateIds ?? []) {
    const r = await users.updateOne({ _id: ObjectId.createFromHexString(id) }, { $set: { [f.updatedAt]: new Date(), [f.emailTimes]: times } });
    modified += r.modifiedCount;
  }
  const updateSeconds = (performance.now() - tu) / 1000;
  progress(`  updated ${modified} existing users by _id in ${Math.round(updateSeconds * 10) / 10} s`);

  const ins = await insertNewUsers(users, job.newUsers, f);
  progress(`  inserted ${ins.inserted.toLocaleString('en')} new users in ${Math.round(ins.seconds * 10) / 10} s; incremental sync...`);

  const ti = performance.now();
  const inc = await sync.incremental();
  const incSeconds = (performance.now() - ti) / 1000;
  return {
    update: { modified, seconds: updateSeconds },
    insert: ins,
    incremental: { read: inc.read, valid: inc.valid, seconds: incSeconds, reportMs: inc.ms, jobs: inc.jobs, users: registry.userCount },
    changedUserTimes: (job.updateIds ?? []).map((id) => registry.jobsOf(id).map((j) => j.time)),
  };
}

async function insertNewUsers(users: Collection<Document>, spec: WorkerJob['newUsers'], fields: FieldMap): Promise<{ inserted: number; seconds: number }> {
  if (spec === undefined || spec.count === 0) return { inserted: 0, seconds: 0 };
  const t0 = performance.now();
  let inserted = 0;
  let batch: Document[] = [];
  const flush = async () => {
    inserted += (await users.insertMany(batch, { ordered: false })).insertedCount;
    batch = [];
  };
  for (const u of generateUsers({ ...spec, inactiveRatio: 0, invalidRatio: 0, nowMs: Date.now(), fields })) {
    batch.push(u.doc);
    if (batch.length >= 1000) await flush();
  }
  if (batch.length > 0) await flush();
  return { inserted, seconds: (performance.now() - t0) / 1000 };
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2] ?? '{}') as WorkerJob;
  // Bounded life: a hung server must not leave this process behind.
  setTimeout(() => {
    progress(`sync-worker: gave up after ${job.maxSeconds} s`);
    process.exit(2);
  }, job.maxSeconds * 1000).unref();
  const client = await MongoClient.connect(job.uri);
  try {
    const result: WorkerResult = job.mode === 'raw' ? await runRaw(job, client) : await runSync(job, client);
    process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
  } finally {
    await client.close();
  }
}

main().catch((err: unknown) => {
  progress(`sync-worker failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(1);
});
