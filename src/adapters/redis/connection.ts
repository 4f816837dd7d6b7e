/**
 * The one Redis connection of an instance (`cluster.redisUrl`), shared by the rate windows and
 * the partition leases. Commands fail at once while Redis is down (no offline queue): a caller
 * pauses and retries rather than letting commands pile up, and nothing is ever granted on a
 * guess. ioredis reconnects by itself with a capped backoff; `up` says whether it is connected.
 * The URL's credentials are never logged (errors are logged with the host and port only).
 */
import { Redis } from 'ioredis';
import type { Logger } from 'pino';

export interface RedisConnection {
  readonly client: Redis;
  /** Prefix of every key (`cluster.keyPrefix`), with its trailing ':' added. */
  readonly prefix: string;
  /** True while connected and ready. */
  readonly up: boolean;
  close(): Promise<void>;
}

/** Longest wait between reconnect attempts (ms): a restarted Redis is found within it. */
const RECONNECT_MAX_MS = 1000;

export function openRedis(url: string, keyPrefix: string, log: Logger): RedisConnection {
  const where = hostPort(url);
  const client = new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 5000,
    // A Redis that accepts the connection but does not answer (frozen, swapping) must fail a
    // command too, or sending and /readyz would wait on it for ever.
    commandTimeout: 2000,
    lazyConnect: false,
    retryStrategy: (times) => Math.min(times * 100, RECONNECT_MAX_MS),
  });
  let lastError = '';
  client.on('error', (err: Error) => {
    // One line per distinct failure, not one per reconnect attempt.
    if (err.message === lastError) return;
    lastError = err.message;
    log.warn({ redis: where, err: { message: err.message } }, 'redis unavailable; sending waits for it');
  });
  client.on('ready', () => {
    if (lastError !== '') log.info({ redis: where }, 'redis reachable again');
    lastError = '';
  });
  return {
    client,
    prefix: keyPrefix.endsWith(':') ? keyPrefix : `${keyPrefix}:`,
    get up() {
      return client.status === 'ready';
    },
    async close() {
      try {
        await client.quit();
      } catch {
        client.disconnect();
      }
    },
  };
}

/** `host:port` of a Redis URL, for log lines (never the credentials). */
function hostPort(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '6379'}`;
  } catch {
    return '(unparsable url)';
  }
}
