/**
 * vitest globalSetup: one MongoDB-wire server for the whole run (FerretDB unless MONGODB_URI is
 * set; see scripts/lib/mongo-server.ts). Each test file then takes its own database from it via
 * test/helpers/db.ts, so files never see each other's data.
 *
 * Also one private Redis (scripts/lib/redis-server.ts) when `redis-server` is installed: a few
 * milliseconds and a few MB, so it is not worth starting on demand. Without the binary the run
 * goes on, and only the tests that need Redis fail, each with the one error naming
 * `apt-get install redis-server` (test/helpers/redis.ts). Files share it by key prefix; a test
 * that takes Redis down starts its own (privateRedis()).
 */
import type { TestProject } from 'vitest/node';
import { startMongoWire } from '../../scripts/lib/mongo-server.js';
import { REDIS_INSTALL_HINT, redisServerAvailable, redisServerBinary, startRedisServer, type RedisServer } from '../../scripts/lib/redis-server.js';

declare module 'vitest' {
  interface ProvidedContext {
    /** Server URI without a database name, e.g. `mongodb://127.0.0.1:PORT/`. */
    mongoUri: string;
    /** `redis://127.0.0.1:PORT`, or '' when redis-server is not installed. */
    redisUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const log = (line: string): void => console.log(`[global-setup] ${line}`);
  const server = await startMongoWire({ log });
  project.provide('mongoUri', server.uri);
  // For processes that tests spawn (the CLI, the daemon): they cannot call inject(). Test
  // workers are forked after this runs and inherit it as well.
  process.env['MAILWHEEL_TEST_MONGODB_URI'] = server.uri;

  let redis: RedisServer | undefined;
  if (redisServerAvailable()) {
    try {
      redis = await startRedisServer({ log });
    } catch (err) {
      await server.stop();
      throw err;
    }
  } else {
    log(`redis: ${redisServerBinary()} missing; tests that need Redis will fail (install: ${REDIS_INSTALL_HINT})`);
  }
  project.provide('redisUrl', redis?.url ?? '');
  process.env['MAILWHEEL_TEST_REDIS_URL'] = redis?.url ?? '';

  return async () => {
    await redis?.stop();
    await server.stop();
  };
}
