/**
 * What a broadcast run needs from the outside (docs/ARCHITECTURE.md "BroadcastRunner"). The run itself
 * (`core/broadcast-run.ts`) sees only these; `adapters/mongo/broadcast-store.ts` implements the
 * storage side, the SendQueue the queue side.
 */
import type { Delivery } from '../core/types.js';

export type BroadcastStatus = 'queued' | 'running' | 'paused' | 'cancelled' | 'done' | 'failed';

/** Statuses a broadcast never leaves. */
export const FINAL_STATUSES: ReadonlySet<BroadcastStatus> = new Set(['cancelled', 'done', 'failed']);

/** An operator's request, written by the CLI, applied by whichever daemon holds the run. */
export type ControlAction = 'pause' | 'resume' | 'cancel';

/** Outcomes per user of one broadcast. Only outcomes that are recorded (claim marked done) count. */
export interface BroadcastCounters {
  /** Users the segment matched when the broadcast first started (an estimate while it runs). */
  total?: number | undefined;
  sent: number;
  /** Failed for good (permanent SMTP error or out of attempts). */
  failed: number;
  /** Not sent: invalid document, no longer active, or claimed elsewhere and not finished. */
  skipped: number;
  /** Not sent: the address is on the suppression list. */
  suppressed: number;
}

/** Where a run stands: every user in the first `processed` of the stream has a recorded outcome. */
export interface BroadcastCheckpoint {
  batches: number;
  processed: number;
  /** The last user of the last confirmed batch (progress information: see broadcast-run.ts). */
  lastUserId: string | null;
  at: Date;
}

/** One batch's share of the counters, kept in the batch ledger. */
export type BatchCounts = Omit<BroadcastCounters, 'total'>;

/** What the run should do next, as the store sees it. */
export type RunVerdict = 'continue' | 'pause' | 'cancel' | 'superseded';

/** The storage a run uses, bound to one broadcast and one lease generation. */
export interface BroadcastRunStore {
  /** The operator's latest request, or `superseded` when another process took the run over. */
  check(): Promise<RunVerdict>;
  /**
   * The counts of a batch confirmed earlier (same broadcast, exactly the same users), so a resumed
   * run skips it without claiming again; undefined when no such batch was confirmed.
   */
  confirmedBatch(batchId: string): Promise<BatchCounts | undefined>;
  /** Records a batch whose every user has a recorded outcome. Idempotent. */
  confirmBatch(batchId: string, counts: BatchCounts): Promise<void>;
  /** Publishes progress on the broadcast document (single writer: the lease holder). */
  publish(progress: { counters: BroadcastCounters; checkpoint: BroadcastCheckpoint | undefined }): Promise<void>;
}

/** The send queue as a broadcast run sees it. */
export interface BroadcastQueue {
  submit(delivery: Delivery): void;
  /**
   * Takes back deliveries not yet handed to SMTP (waiting, granted, or waiting out a backoff) that
   * match; sends in flight are left to finish. The caller releases their claims.
   */
  withdraw(match: (d: Delivery) => boolean): Delivery[];
}

/** Lets a run make sure the outcomes it counted are written before it checkpoints them. */
export interface OutcomeFlusher {
  flush(): Promise<void>;
}
