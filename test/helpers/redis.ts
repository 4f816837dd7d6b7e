/**
 * Redis for tests: the run's shared server (started by test/helpers/global-setup.ts) or a private
 * one a test may take down and bring back. Both fail with one clear error naming
 * `apt-get install redis-server` when the binary is missing (scripts/lib/redis-server.ts).
 */
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { redisServerBinary, RedisServerMissingError, startRedisServer, type RedisServer } from '../../scripts/lib/redis-server.js';

export type { RedisServer };

/** `redis://127.0.0.1:PORT` of the run's shared Redis. Use {@link redisKeyPrefix} to keep files apart. */
export function sharedRedisUrl(): string {
  const url = inject('redisUrl') ?? process.env['MAILWHEEL_TEST_REDIS_URL'];
  if (url === undefined || url === '') throw new RedisServerMissingError(redisServerBinary());
  return url;
}

/** A Redis of the test's own, for outage tests (`down()` / `up()`); the caller stops it. */
export function privateRedis(): Promise<RedisServer> {
  return startRedisServer();
}

/** A unique key prefix (or Bottleneck limiter id), so tests on the shared server never collide. */
export function redisKeyPrefix(label: string): string {
  return `mwtest_${label}_${randomBytes(4).toString('hex')}`;
}

/** Host and port of a `redis://host:port` URL, as ioredis options. */
export function redisOptions(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port) };
}
