/**
 * A fresh, uniquely named database per test file (or per test) on the shared server started by
 * the global setup. Names are random rather than derived from the file name, so a re-run never
 * finds leftovers from a crashed earlier run.
 */
import { randomBytes } from 'node:crypto';
import { MongoClient, type Db } from 'mongodb';
import { inject } from 'vitest';
import { withDbName } from '../../scripts/lib/mongo-server.js';

export interface TestDb {
  /** URI including the database name: hand it to a child process as MONGODB_URI. */
  uri: string;
  dbName: string;
  client: MongoClient;
  db: Db;
  /** Drops the database and closes the client. Idempotent. */
  cleanup(): Promise<void>;
}

/** The server URI (no database name) provided by test/helpers/global-setup.ts. */
export function serverUri(): string {
  const uri = inject('mongoUri') ?? process.env['MAILWHEEL_TEST_MONGODB_URI'];
  if (uri === undefined || uri === '') {
    throw new Error('no MongoDB server: run tests through vitest.config.ts (globalSetup test/helpers/global-setup.ts)');
  }
  return uri;
}

/**
 * @param name optional readable part of the name (e.g. 'usersync'); a random suffix is always
 *   added. FerretDB accepts only `[a-zA-Z0-9_-]{1,63}`, so other characters become '_'.
 */
export async function testDb(name?: string): Promise<TestDb> {
  const label = name === undefined ? '' : `${name.replace(/[^a-zA-Z0-9_-]/g, '_').slice(0, 32)}_`;
  const dbName = `mw_test_${label}${randomBytes(6).toString('hex')}`;
  const uri = withDbName(serverUri(), dbName);
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 10_000 });
  await client.connect();
  const db = client.db(dbName);
  let cleaned: Promise<void> | undefined;
  return {
    uri,
    dbName,
    client,
    db,
    cleanup: () => {
      cleaned ??= (async () => {
        try {
          await db.dropDatabase();
        } finally {
          await client.close();
        }
      })();
      return cleaned;
    },
  };
}
