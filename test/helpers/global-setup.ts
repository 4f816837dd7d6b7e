/**
 * vitest globalSetup: one MongoDB-wire server for the whole run (FerretDB unless MONGODB_URI is
 * set; see scripts/lib/mongo-server.ts). Each test file then takes its own database from it via
 * test/helpers/db.ts, so files never see each other's data.
 */
import type { TestProject } from 'vitest/node';
import { startMongoWire } from '../../scripts/lib/mongo-server.js';

declare module 'vitest' {
  interface ProvidedContext {
    /** Server URI without a database name, e.g. `mongodb://127.0.0.1:PORT/`. */
    mongoUri: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const server = await startMongoWire({ log: (line) => console.log(`[global-setup] ${line}`) });
  project.provide('mongoUri', server.uri);
  // For processes that tests spawn (the CLI, the daemon): they cannot call inject(). Test
  // workers are forked after this runs and inherit it as well.
  process.env['MAILWHEEL_TEST_MONGODB_URI'] = server.uri;
  return async () => {
    await server.stop();
  };
}
