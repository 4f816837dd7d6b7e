/**
 * What the broadcast side needs from the outside (docs/ARCHITECTURE.md, the broadcast section).
 * The supervisor (`core/broadcast-supervisor.ts`) and each run (`core/broadcast-run.ts`) see only
 * these; `adapters/mongo/broadcast-store.ts` and `recipient-source.ts` implement the storage
 * side, the SendQueue the queue side.
 */
import type { SegmentFilter } from '../core/segment.js';
import type { Delivery } from '../core/types.js';
import type { RawUser } from './index.js';

export type BroadcastStatus = 'queued' | 'running' | 'paused' | 'cancelled' | 'done' | 'failed';

/** Statuses a broadcast never leaves. */
export const FINAL_STATUSES: ReadonlySet<BroadcastStatus> = new Set(['cancelled', 'done', 'failed']);

/** An operator's request, written by the CLI, applied by whichever daemon holds the run. */
export type ControlAction = 'pause' | 'resume' | 'cancel';

/** The latest request as stored, with why it was made (an automatic pause names the rate and threshold). */
export interface ControlRequest {
  action: ControlAction;
  /** Undefined for an operator's plain request. */
  reason: string | undefined;
  at: Date;
}

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
  /**
   * Not sent: quiet hours would have held it longer than `quietHours.broadcasts.maxHoldMinutes`
   * (a `missed` event says why). Absent: 0 (documents written before quiet hours).
   */
  missed?: number | undefined;
}

/**
 * Progress of one zone of a broadcast sent at local time or under quiet hours: its recipients
 * share one instant (the rule depends only on the zone), so one entry per zone says what is done,
 * due now (`at` passed) and waiting (`at` ahead).
 */
export interface ZoneProgress {
  zone: string;
  /** From when its recipients may be sent: the wave's instant there, moved by quiet hours. */
  at: Date;
  /** Recipients in the zone the last run saw (valid ones). */
  users: number;
  /** Of them, with an outcome (sent, failed, skipped, suppressed, missed). */
  done: number;
}

/** Where a run stands: every user in the first `processed` of the stream has a recorded outcome. */
export interface BroadcastCheckpoint {
  batches: number;
  processed: number;
  /** The last user of the last confirmed batch (progress information: see broadcast-run.ts). */
  lastUserId: string | null;
  at: Date;
}

/**
 * One batch's share of the counters, kept in the batch ledger; with `zones`, how many of its
 * users each zone holds (a confirmed batch has every user done), so a later run that skips the
 * batch still counts its zones.
 */
export type BatchCounts = Omit<BroadcastCounters, 'total'> & { zones?: Array<{ zone: string; done: number }> | undefined };

/** A final outcome of one broadcast key, as the ledger keeps it. */
export type DoneStatus = 'sent' | 'failed' | 'missed';

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
  /** Records a batch whose every user has a recorded outcome. Idempotent; replaces a partial record. */
  confirmBatch(batchId: string, counts: BatchCounts): Promise<void>;
  /**
   * The keys of a batch that earlier runs finished while others of it were held for a later
   * instant (local time, quiet hours), with their final status; undefined when none was recorded.
   */
  partialBatch(batchId: string): Promise<ReadonlyMap<string, DoneStatus> | undefined>;
  /**
   * Records which keys of a batch not yet confirmed have a written outcome, so the next wave
   * counts them without claiming them again. A batch already confirmed keeps its record.
   */
  recordPartial(batchId: string, done: ReadonlyMap<string, DoneStatus>): Promise<void>;
  /** Publishes progress on the broadcast document (single writer: the lease holder). */
  publish(progress: { counters: BroadcastCounters; checkpoint: BroadcastCheckpoint | undefined; zones?: ZoneProgress[] | undefined }): Promise<void>;
}

/** The send queue as a broadcast run sees it. */
export interface BroadcastQueue {
  submit(delivery: Delivery): void;
  /**
   * Takes back deliveries not yet handed to SMTP (waiting, granted, or waiting out a backoff) that
   * match; sends in flight are left to finish. The caller releases their claims.
   */
  withdraw(match: (d: Delivery) => boolean): Delivery[];
  /**
   * The destination group an address goes to (config `destinations`), so a run gives each group
   * its own room; absent (one queue): every message counts against one room.
   */
  groupOf?(email: string): string;
}

/** Lets a run make sure the outcomes it counted are written before it checkpoints them. */
export interface OutcomeFlusher {
  flush(): Promise<void>;
}

/**
 * A broadcast sent at each recipient's local time (`broadcast send --local-time HH:MM --on DATE`):
 * each recipient gets it when their own clock reads `time` on `date`, by the fire-time rule of
 * scheduled mail (core/fire-time.ts `fireInstant`: a time in a DST gap moves forward, a repeated
 * time is taken at its first occurrence).
 */
export interface LocalTimeWave {
  /** `HH:MM`, 24-hour. */
  time: string;
  /** `YYYY-MM-DD`, the local date in each recipient's zone. */
  date: string;
}

/** One broadcast as stored: content, status, counters, checkpoint. */
export interface BroadcastDoc {
  /** `YYYYMMDD-HHMMSS-xxxxxx` (UTC creation time, random): readable, sortable, no ':'. */
  _id: string;
  subject: string;
  text: string;
  html?: string | undefined;
  /** The segment as validated JSON text (see core/segment.ts); `{}` for every active user. */
  segment: string;
  status: BroadcastStatus;
  /** Do not start before this instant (`--at`). */
  at?: Date | undefined;
  /** Sent at each recipient's local time instead of to everyone at once. */
  localTime?: LocalTimeWave | undefined;
  /**
   * Every recipient left is held (local time, quiet hours) until at least this instant: no daemon
   * runs the broadcast before it (a restarted one neither). Set when a run ends `waiting`.
   */
  nextAt?: Date | undefined;
  /** Per-zone progress of a local-time or quiet-hours broadcast, by instant (one entry per zone). */
  zones?: ZoneProgress[] | undefined;
  createdAt: Date;
  counters: BroadcastCounters;
  checkpoint?: BroadcastCheckpoint | undefined;
  /** Lease generation and holder that last wrote this document (0 / absent: never run). */
  gen: number;
  owner?: string | undefined;
  startedAt?: Date | undefined;
  finishedAt?: Date | undefined;
  /** Why it failed (status `failed`), or the last run error. */
  error?: string | undefined;
  updatedAt: Date;
}

/** What `broadcast send` writes. */
export interface NewBroadcast {
  subject: string;
  text: string;
  html?: string | undefined;
  segment: string;
  at?: Date | undefined;
  localTime?: LocalTimeWave | undefined;
}

/** Fields the lease holder writes; `nextAt: null` clears the instant (the run is not waiting). */
export type BroadcastUpdate = Partial<Omit<BroadcastDoc, '_id' | 'nextAt'>> & { nextAt?: Date | null | undefined };

/** Tells whether an instance (a lease holder) still sends heartbeats. */
export type IsAlive = (owner: string) => Promise<boolean>;


/**
 * The broadcasts as the daemon and the CLI see them (implemented by
 * adapters/mongo/broadcast-store.ts). The CLI creates broadcasts and records operator requests;
 * after that only the holder of the run lease writes a broadcast's document.
 */
export interface BroadcastStore {
  create(input: NewBroadcast): Promise<BroadcastDoc>;
  get(id: string): Promise<BroadcastDoc | undefined>;
  /** Every broadcast, newest first. */
  list(): Promise<BroadcastDoc[]>;
  /** Broadcasts that may need a daemon: queued, running, paused. */
  open(): Promise<BroadcastDoc[]>;
  /** The operator's latest request for `id`, if any. */
  control(id: string): Promise<ControlAction | undefined>;
  /**
   * Records an operator's (or mailwheel's own) request; `reason` says why, e.g. a pause because
   * the broadcast's complaint rate crossed `feedback.broadcastPause.complaintRate`.
   */
  requestControl(id: string, action: ControlAction, reason?: string): Promise<void>;
  /**
   * The latest request with its reason and time (what `broadcast status` shows). Optional: a
   * store that keeps no reasons (a test double) leaves it out and `control` answers alone.
   */
  controlRequest?(id: string): Promise<ControlRequest | undefined>;
  /** Takes the next lease generation of the run; undefined when another live holder has it. */
  acquire(doc: BroadcastDoc, owner: string, isAlive: IsAlive): Promise<number | undefined>;
  releaseLease(id: string, gen: number): Promise<void>;
  /** Writes fields of the broadcast document (only the lease holder does, after creation). */
  update(id: string, set: BroadcastUpdate): Promise<void>;
  /** Drops the batch ledger of a finished broadcast. */
  dropLedger(id: string): Promise<void>;
  /** The storage of one run: broadcast `id`, lease generation `gen`, holder `owner`. */
  runStore(id: string, gen: number, owner: string): BroadcastRunStore;
}

/** A broadcast's recipients: the users a validated segment filter matches. */
export interface RecipientSource {
  /** Users matching `filter`, in batches of exactly `batchSize` (the last may be shorter): one streamed cursor. */
  stream(filter: SegmentFilter, batchSize: number): AsyncIterable<RawUser[]>;
  /** How many users match (a scan on FerretDB v1; not for the hot path). */
  count(filter: SegmentFilter): Promise<number>;
  /** Runs the filter once so the server can refuse what it does not support, before anything is written. */
  probe(filter: SegmentFilter): Promise<void>;
  /**
   * How many users matching `filter` have each timezone value, from one streamed read projecting
   * only the timezone field (what `broadcast send --dry-run --local-time` and `plan` need to
   * place a local-time broadcast's waves). The values are as stored: judging them is the core's
   * (core/local-time-plan.ts).
   */
  zoneCounts(filter: SegmentFilter, batchSize?: number): Promise<ZoneCounts>;
}

/** Users per stored timezone value (see {@link RecipientSource.zoneCounts}). */
export interface ZoneCounts {
  /** Users per string value of the timezone field, as stored (not yet checked against the tz database). */
  zones: Map<string, number>;
  /** Users whose timezone field is missing or null (scheduled mail reads them as UTC). */
  missing: number;
  /** Users whose timezone field holds something other than a string (a number, an object...). */
  notString: number;
}
