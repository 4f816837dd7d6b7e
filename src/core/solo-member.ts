/**
 * The cluster of one (no `cluster.redisUrl`): this instance holds every partition, for good.
 * Nothing moves, so the registry keeps every user, exactly as before partitions existed.
 */
import type { ClusterMember, ClusterStatus, PartitionChange } from '../ports/cluster.js';

export class SoloMember implements ClusterMember {
  readonly mode = 'solo' as const;
  readonly partitions: number;
  readonly #self: string;
  readonly #owned: ReadonlySet<number>;

  constructor(self: string, partitions: number) {
    this.#self = self;
    this.partitions = partitions;
    this.#owned = new Set(Array.from({ length: partitions }, (_, i) => i));
  }

  owned(): ReadonlySet<number> {
    return this.#owned;
  }

  onChange(_handler: (change: PartitionChange) => Promise<void>): void {
    // Nothing ever moves.
  }

  async start(): Promise<void> {}

  async stop(): Promise<void> {}

  async status(): Promise<ClusterStatus> {
    return { mode: 'solo', self: this.#self, partitions: this.partitions, leaseTtlMs: 0, members: [{ id: this.#self, partitions: this.partitions, heartbeatAgeMs: 0 }], leases: [] };
  }
}
