/**
 * Proves the Redis harness (scripts/lib/redis-server.ts) does what the shared-window tests rely on:
 * a private redis-server on loopback, provided to tests and child processes, with no persistence,
 * that a test can crash and bring back on the same port (empty), stopped by its own PID only, and
 * a missing binary reported as one clear error rather than a hang.
 */
import { readdirSync } from 'node:fs';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { ping, REDIS_INSTALL_HINT, RedisServerMissingError, startRedisServer } from '../../scripts/lib/redis-server.js';
import { privateRedis, redisOptions, sharedRedisUrl, type RedisServer } from '../helpers/redis.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('Redis harness', () => {
  const started: RedisServer[] = [];
  afterEach(async () => {
    await Promise.all(started.splice(0).map((r) => r.stop()));
  });

  it('the run has one Redis on loopback, provided to tests and to child processes', async () => {
    const url = sharedRedisUrl();
    expect(url).toMatch(/^redis:\/\/127\.0\.0\.1:\d+$/);
    expect(inject('redisUrl')).toBe(url);
    expect(process.env['MAILWHEEL_TEST_REDIS_URL']).toBe(url);
    expect(await ping(redisOptions(url).port)).toBe('+PONG');
  });

  it('a private Redis goes down (connections refused) and comes back on the same port, empty, with nothing on disk', async () => {
    const redis = await privateRedis();
    started.push(redis);
    const client = new Redis({ ...redisOptions(redis.url), lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    await client.connect();
    await client.set('kept?', 'yes');
    const firstPid = redis.pid;
    expect(firstPid).toBeGreaterThan(0);
    client.disconnect();

    await redis.down({ graceful: true });
    expect(redis.isUp).toBe(false);
    expect(alive(firstPid!)).toBe(false);
    expect(await ping(redis.port)).toBe('ECONNREFUSED');

    await redis.up();
    expect(redis.isUp).toBe(true);
    expect(redis.pid).not.toBe(firstPid);
    const again = new Redis({ ...redisOptions(redis.url), lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    await again.connect();
    try {
      expect(await again.get('kept?')).toBeNull();
      // No persistence: a graceful shutdown wrote no RDB or AOF into the server's folder.
      const dir = String(await again.config('GET', 'dir').then((r) => (r as string[])[1]));
      expect(readdirSync(dir)).toEqual([]);
      expect(await again.config('GET', 'save')).toEqual(['save', '']);
      expect(await again.config('GET', 'appendonly')).toEqual(['appendonly', 'no']);
    } finally {
      again.disconnect();
    }

    // A crash (the default down()) is as good: the same port answers again after up().
    await redis.down();
    expect(await ping(redis.port)).toBe('ECONNREFUSED');
    await redis.up();
    expect(await ping(redis.port)).toBe('+PONG');

    const lastPid = redis.pid!;
    await redis.stop();
    expect(alive(lastPid)).toBe(false);
  });

  it('a missing redis-server is one error naming the apt-get install, at once', async () => {
    const saved = process.env['MAILWHEEL_REDIS_SERVER'];
    process.env['MAILWHEEL_REDIS_SERVER'] = '/nonexistent/redis-server';
    try {
      const err = await startRedisServer().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RedisServerMissingError);
      expect((err as Error).message).toContain(REDIS_INSTALL_HINT);
      expect((err as Error).message).toContain('/nonexistent/redis-server');
    } finally {
      if (saved === undefined) delete process.env['MAILWHEEL_REDIS_SERVER'];
      else process.env['MAILWHEEL_REDIS_SERVER'] = saved;
    }
  });
});
