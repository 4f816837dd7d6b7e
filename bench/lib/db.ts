/**
 * The MongoDB-wire server for the suites that read users or write claims: `MONGODB_URI` when set,
 * otherwise a private FerretDB (SQLite) on a free loopback port with a temp data folder, started
 * and stopped by the suite (scripts/lib/mongo-server.ts, the same start-up as the tests). Users
 * are inserted in batches with one insert in flight while the next batch is generated.
 */
import { MongoClient, type Db, type Document } from 'mongodb';
import { startMongoWire, withDbName, type MongoWire } from '../../scripts/lib/mongo-server.js';

export interface BenchDb {
  /** URI with the database name, for a mailwheel config or `MONGODB_URI`. */
  uri: string;
  kind: MongoWire['kind'];
  client: MongoClient;
  db: Db;
  /** The server process we started (FerretDB), to sample its CPU; undefined otherwise. */
  pid?: number | undefined;
  /** Drops the database when the server is external, stops the server we started. */
  stop(): Promise<void>;
}

export async function startBenchDb(dbName: string, log: (line: string) => void): Promise<BenchDb> {
  const wire = await startMongoWire({ log });
  const uri = withDbName(wire.uri, dbName);
  const client = await MongoClient.connect(uri);
  const db = client.db();
  if (wire.kind === 'external') await db.dropDatabase();
  return {
    uri,
    kind: wire.kind,
    pid: 'pid' in wire && typeof wire.pid === 'number' ? wire.pid : undefined,
    client,
    db,
    async stop() {
      try {
        if (wire.kind === 'external') await db.dropDatabase();
      } finally {
        await client.close();
        await wire.stop();
      }
    },
  };
}

export interface UserDocOptions {
  /** `_id` prefix; ids are `${prefix}${i padded to 7}`. */
  prefix?: string;
  /** IANA zone of every user (default UTC). */
  timezone?: string;
  /** The single slot `HH:MM` of every user (default 09:00). */
  time?: string;
  updatedAt?: Date;
}

/** An active user with one slot, in the default field mapping (config/default.json). */
export function userDoc(i: number, opts: UserDocOptions = {}): Document {
  const id = `${opts.prefix ?? 'u'}${String(i).padStart(7, '0')}`;
  return {
    _id: id,
    email: `${id}@example.test`,
    name: `User ${i}`,
    active: true,
    timezone: opts.timezone ?? 'UTC',
    emailTimes: [opts.time ?? '09:00'],
    updatedAt: opts.updatedAt ?? new Date(),
  };
}

/**
 * Inserts `count` documents made by `make(i)` into `collection`, in unordered batches of `batch`,
 * keeping one insert in flight. Returns the seconds taken. Progress is logged every 10 %.
 */
export async function insertMany(
  db: Db,
  collection: string,
  count: number,
  make: (i: number) => Document,
  log: (line: string) => void,
  batch = 1000,
): Promise<number> {
  const coll = db.collection(collection);
  const t0 = performance.now();
  let inFlight: Promise<unknown> = Promise.resolve();
  let nextReport = count / 10;
  for (let start = 0; start < count; start += batch) {
    const docs: Document[] = [];
    for (let i = start; i < Math.min(count, start + batch); i++) docs.push(make(i));
    await inFlight;
    inFlight = coll.insertMany(docs, { ordered: false });
    if (start + batch >= nextReport) {
      log(`  inserted ${Math.min(count, start + batch).toLocaleString('en')} / ${count.toLocaleString('en')} into ${collection} (${Math.round(performance.now() - t0) / 1000} s)`);
      nextReport += count / 10;
    }
  }
  await inFlight;
  return (performance.now() - t0) / 1000;
}
