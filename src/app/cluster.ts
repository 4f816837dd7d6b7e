/**
 * The cluster parts of one instance, built from `cluster.*`: with no Redis URL, the solo member
 * (this instance holds every partition) and no Redis; with one, the one Redis connection (shared
 * rate windows and partition leases use it) and the partition leases.
 */
import type { Logger } from 'pino';
import { openRedis, type RedisConnection } from '../adapters/redis/connection.js';
import { RedisClusterMember } from '../adapters/redis/partition-leases.js';
import type { Config } from '../config/schema.js';
import { SoloMember } from '../core/solo-member.js';
import type { ClusterMember } from '../ports/cluster.js';
import type { Clock } from '../ports/clock.js';

export interface Cluster {
  /** The Redis connection, when `cluster.redisUrl` is set. */
  readonly redis: RedisConnection | undefined;
  /** This instance's share of the partitions (started by the daemon only, never by run-minute). */
  readonly member: ClusterMember;
  /** Closes the Redis connection (after the member stopped). */
  close(): Promise<void>;
}

export function openCluster(config: Pick<Config, 'cluster'>, self: string, clock: Clock, log: Logger): Cluster {
  const { redisUrl, keyPrefix, partitions, leaseTtlMs } = config.cluster;
  if (redisUrl === null) return { redis: undefined, member: new SoloMember(self, partitions), close: async () => undefined };
  const redis = openRedis(redisUrl, keyPrefix, log.child({ part: 'redis' }));
  const member = new RedisClusterMember({ redis, self, partitions, leaseTtlMs, clock, log: log.child({ part: 'partitions' }) });
  return { redis, member, close: () => redis.close() };
}
