/**
 * Ports of the cluster (docs/ARCHITECTURE.md "Several instances"): the shared rate budget, the
 * partition table and the per-partition catch-up marks. With `cluster.redisUrl` null the daemon
 * uses the solo implementations (core/solo-member.ts: one instance owns every partition; the
 * budget is the local one), so a single instance needs nothing but MongoDB.
 */

/** A rate window's name, as in `rate.*`. */
export type RateWindowName = 'perSecond' | 'perMinute' | 'perHour' | 'perDay';

/** One configured rate window as the budget counts it now. */
export interface WindowUse {
  name: RateWindowName;
  /** Window length, ms. */
  windowMs: number;
  /** The configured limit (messages per window). */
  limit: number;
  /** Sends counted in the window now (all instances when the budget is shared). */
  used: number;
}

/** Where the rate windows are kept: this process only, or Redis for every instance. */
export type BudgetScope = 'local' | 'shared';

/** What `/stats`, `/metrics`, `/readyz` and `cluster status` read of the rate budget. */
export interface BudgetView {
  readonly scope: BudgetScope;
  /** 'down' while the shared store does not answer (sending is paused); a local budget is always 'up'. */
  readonly state: 'up' | 'down';
  /** Each configured window's use now. A shared budget that is down rejects (Errors.REDIS_UNAVAILABLE). */
  use(): Promise<WindowUse[]>;
}

/** One live member of the cluster, as the partition table sees it. */
export interface MemberInfo {
  id: string;
  /** Partitions it holds. */
  partitions: number;
  /** Since its last heartbeat, ms. */
  heartbeatAgeMs: number;
}

/** One partition's lease. */
export interface LeaseInfo {
  partition: number;
  owner: string;
  /** Since it was taken by this owner, ms. */
  ageMs: number;
  /** Until it expires unless renewed, ms. */
  expiresInMs: number;
}

/** The table as one instance sees it (`/stats`, `cluster status`). */
export interface ClusterStatus {
  /** 'solo': no Redis, this instance holds every partition. */
  mode: 'solo' | 'partitioned';
  /** This instance's id (the InstanceDirectory id). */
  self: string;
  partitions: number;
  leaseTtlMs: number;
  members: MemberInfo[];
  /** Every held lease (partitions missing from it are free). */
  leases: LeaseInfo[];
}

/** What partitions moved to or from this instance in one round of leasing. */
export interface PartitionChange {
  gained: number[];
  lost: number[];
}

/**
 * This instance's share of the partitions. The registry holds only the users of `owned()`;
 * `onChange` handlers load the users of gained partitions (with catch-up from their mark) and drop
 * those of lost ones. Leases are an economy (who holds which users in memory), not the delivery
 * guarantee: claims are. A partition held twice for a moment costs work, never a duplicate; a
 * partition held by nobody is taken within the lease TTL and its missed fires are caught up.
 */
export interface ClusterMember {
  readonly mode: ClusterStatus['mode'];
  readonly partitions: number;
  /** Partitions this instance holds now. */
  owned(): ReadonlySet<number>;
  /** Registers the handler of partition moves (one; the app's). Runs after each round that moved any, never two at once. */
  onChange(handler: (change: PartitionChange) => Promise<void>): void;
  /** Joins: takes a fair share of the free partitions; resolves once the first round is done. */
  start(): Promise<void>;
  /** Leaves: releases its leases (others take them at their next round) and stops renewing. */
  stop(): Promise<void>;
  status(): Promise<ClusterStatus>;
}

/**
 * Per partition, the last minute whose fires all have an outcome (in MongoDB, so a Redis restart
 * loses none). A new owner schedules the partition's users from the minute after it: fires that
 * fell due while nobody held it are sent within the grace period or recorded as `missed`.
 */
export interface PartitionMarks {
  /** The mark of each of `partitions` that has one. */
  load(partitions: readonly number[]): Promise<Map<number, number>>;
  /** Moves the mark of each of `partitions` forward to `minute` (never back). */
  save(partitions: readonly number[], minute: number): Promise<void>;
}
