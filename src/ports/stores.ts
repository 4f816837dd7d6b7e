/**
 * Ports for the stores that are not on the scheduled path (ports/index.ts) nor the broadcast side
 * (ports/broadcasts.ts): the directory of running instances, the claimed-keys lookup of `plan`,
 * the start-up event check, the start-up count of recent sends, retention and the seeding of
 * test users. `app/stores.ts` opens all of them at once; the CLI and the daemon see only these
 * types, never an adapter.
 */

/** One running process (a daemon or a `run-minute`), as its heartbeat document records it. */
export interface InstanceInfo {
  id: string;
  host: string;
  pid: number;
  startedAt: Date;
  heartbeatAt: Date;
}

/** Which instances are alive: claim takeover, broadcast leases, the CLI's status views. */
export interface InstanceDirectory {
  /** This process's instance id (the owner it writes on claims and leases). */
  readonly id: string;
  /** True when `owner` sent a heartbeat recently enough (and, on this host, its process exists). */
  isAlive(owner: string): Promise<boolean>;
  /** Every instance alive now. */
  live(): Promise<InstanceInfo[]>;
  /** The last heartbeat of `owner`; undefined when it has no heartbeat document (gone). */
  heartbeatOf(owner: string): Promise<Date | undefined>;
}

/** This process's own entry in the directory: registered at start, removed at a graceful stop. */
export interface InstanceRegistration extends InstanceDirectory {
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Which of some delivery keys are claimed already (sent, failed, missed, or being sent). */
export interface ClaimedKeys {
  claimedKeys(keys: readonly string[]): Promise<Set<string>>;
}

/** What a start-up check of lost outcome events did. */
export interface ReconcileReport {
  from: Date;
  to: Date;
  /** Settled deliveries looked at. */
  checked: number;
  /** Events written back. */
  rebuilt: number;
}

/** Rebuilds outcome events a crash lost, from the delivery records. */
export interface EventReconciler {
  reconcile(opts: { now: number; lookbackMs: number; batchSize: number }): Promise<ReconcileReport>;
  /** Records that every delivery settled before `until` has its event (a graceful stop). */
  markChecked(until: Date): Promise<void>;
}

/**
 * The sends mailwheel recorded (every instance's), counted at start so that a restart does not
 * reset the rate windows (core/rate-windows.ts).
 */
export interface SentCounter {
  /**
   * For each of `windowsMs`, the sends recorded in the last `windowsMs[i]` ms up to `now`
   * (recorded at `now - windowsMs[i]` or later). One read, of the longest window.
   */
  countSent(now: number, windowsMs: readonly number[]): Promise<number[]>;
}

/** Deletes events and delivery records past their retention. */
export interface Retention {
  run(nowMs: number): Promise<RetentionReport>;
}

export interface RetentionReport {
  eventsDeleted: number;
  deliveriesDeleted: number;
  /** Message-index entries deleted with the delivery records (only when the index is kept). */
  messagesDeleted?: number;
  eventsBefore: string;
  deliveriesBefore: string;
}

/** The users collection as `seed-users` writes it (test and demo data only). */
export interface UserSeeder {
  /** Documents in the collection; with `notMarked`, those whose `field` is not `value`. */
  count(notMarked?: { field: string; value: unknown }): Promise<number>;
  /** Drops the collection (a missing one is not an error). */
  drop(): Promise<void>;
  /**
   * Inserts unordered: a bad document costs only itself. `ok[i]` tells whether document `i` was
   * inserted; `errors` are the server's messages for those that were not.
   */
  insert(docs: Array<Record<string, unknown>>): Promise<{ ok: boolean[]; errors: string[] }>;
}
