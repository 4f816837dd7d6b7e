/**
 * Partition leases in Redis (docs/ARCHITECTURE.md "Several instances").
 * STUB from the groundwork commit: the helper building the leases replaces this file.
 */
import type { Logger } from 'pino';
import type { ClusterMember, ClusterStatus, PartitionChange } from '../../ports/cluster.js';
import type { Clock } from '../../ports/clock.js';
import { Errors } from '../../errors.js';
import type { RedisConnection } from './connection.js';

export interface PartitionLeaseOptions {
  redis: RedisConnection;
  /** This instance's id (InstanceDirectory id). */
  self: string;
  partitions: number;
  leaseTtlMs: number;
  clock: Clock;
  log: Logger;
}

export class RedisClusterMember implements ClusterMember {
  readonly mode = 'partitioned' as const;
  readonly partitions: number;

  constructor(opts: PartitionLeaseOptions) {
    this.partitions = opts.partitions;
  }

  owned(): ReadonlySet<number> {
    return new Set();
  }

  onChange(_handler: (change: PartitionChange) => Promise<void>): void {}

  start(): Promise<void> {
    return Promise.reject(new Errors.INTERNAL('partition leases are not built yet'));
  }

  async stop(): Promise<void> {}

  status(): Promise<ClusterStatus> {
    return Promise.reject(new Errors.INTERNAL('partition leases are not built yet'));
  }
}
