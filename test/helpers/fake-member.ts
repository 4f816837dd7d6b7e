/**
 * An in-memory ClusterMember (our port, src/ports/cluster.ts) for unit and integration tests of
 * what consumes it: the test moves partitions on command, and each move runs the registered
 * handler the way a real member does after a round (the loser's handler before the lease is given
 * to the gainer). Not a fake of Redis: the Redis leases are tested against a real Redis.
 */
import type { ClusterMember, ClusterStatus, PartitionChange } from '../../src/ports/cluster.js';

export class FakeMember implements ClusterMember {
  readonly mode = 'partitioned' as const;
  readonly partitions: number;
  readonly self: string;
  readonly #owned: Set<number>;
  #handler: ((change: PartitionChange) => Promise<void>) | undefined;
  started = false;
  stopped = false;
  /** Every change handed to the handler, in order. */
  readonly changes: PartitionChange[] = [];

  constructor(partitions: number, owned: Iterable<number>, self = 'fake') {
    this.partitions = partitions;
    this.#owned = new Set(owned);
    this.self = self;
  }

  owned(): ReadonlySet<number> {
    return this.#owned;
  }

  onChange(handler: (change: PartitionChange) => Promise<void>): void {
    this.#handler = handler;
  }

  async start(): Promise<void> {
    this.started = true;
  }

  async stop(): Promise<void> {
    this.stopped = true;
  }

  async status(): Promise<ClusterStatus> {
    return { mode: 'partitioned', self: this.self, partitions: this.partitions, leaseTtlMs: 15_000, members: [{ id: this.self, partitions: this.#owned.size, heartbeatAgeMs: 0 }], leases: [] };
  }

  /** One round that moved partitions: the owned set changes, then the handler runs (awaited). */
  async move(change: { gained?: number[]; lost?: number[] }): Promise<void> {
    const full: PartitionChange = { gained: change.gained ?? [], lost: change.lost ?? [] };
    for (const p of full.lost) this.#owned.delete(p);
    for (const p of full.gained) this.#owned.add(p);
    this.changes.push(full);
    await this.#handler?.(full);
  }
}

/** Partitions `partitions` go from `from` to `to`: the loser's handler first, as with leases. */
export async function transfer(from: FakeMember, to: FakeMember, partitions: number[]): Promise<void> {
  await from.move({ lost: partitions });
  await to.move({ gained: partitions });
}
