/**
 * The interfaces the core needs from the outside world. The core (scheduling, registry, sending
 * policy) talks only to these; adapters in `src/adapters/` implement them with MongoDB and SMTP.
 */
import type { Delivery, OutcomeEvent, UserRecord } from '../core/types.js';
import type { SmtpError } from '../errors.js';

export { systemClock, type Clock } from './clock.js';

/** A raw user document as read from the users collection, before validation. */
export type RawUser = Record<string, unknown>;

/** Reads users in cursor batches: one streamed cursor, never `skip`, never capped. */
export interface UserSource {
  /** Every active user (full sync), streamed in batches. */
  allActive(): AsyncIterable<RawUser[]>;
  /** Users (active or not) whose `updatedAt` is after `since` (incremental sync). */
  changedSince(since: Date): AsyncIterable<RawUser[]>;
  /** One user by id, whatever its state; undefined when absent. */
  byId(id: string): Promise<RawUser | undefined>;
}

/** Result of trying to own a set of deliveries. */
export interface ClaimResult {
  /** Keys this process now owns and must send (or release). */
  claimed: string[];
  /** Keys already owned or completed by another process or an earlier run. */
  taken: string[];
  /**
   * Among `taken`, the keys whose delivery has finished, with its final status, when the store
   * read it anyway (a broadcast resumed after a crash recounts its progress from these; `missed`:
   * a broadcast recipient held by quiet hours beyond the limit, recorded instead of sent).
   */
  finished?: ReadonlyMap<string, 'sent' | 'failed' | 'missed'>;
}

export interface ClaimOptions {
  /**
   * Treat this process's own unfinished claims as abandoned (take them over) instead of as busy.
   * For a caller that knows it has nothing of these keys in flight: a broadcast run retrying
   * after an error, whose earlier claims could not be released.
   */
  adoptOwn?: boolean;
  /**
   * The recipients of the keys (key -> delivery). With them, and a message index configured (any
   * feedback input: VERP, the inbound listener, a webhook), the claim store records each message
   * in the index before claiming, so a bounce that arrives seconds after the send finds it.
   */
  recipients?: ReadonlyMap<string, { email: string; userId: string; broadcastId?: string | undefined }>;
}

/** Idempotency: a delivery key is sent by whoever inserted it first. */
export interface ClaimStore {
  claim(keys: readonly string[], options?: ClaimOptions): Promise<ClaimResult>;
  /** Record final outcomes so a rerun does not resend, and a crash recovery knows what is done. */
  complete(outcomes: ReadonlyArray<{ key: string; status: 'sent' | 'failed' | 'missed' }>): Promise<void>;
  /** Give back claims that were never handed to SMTP (graceful stop), so a rerun sends them. */
  release(keys: readonly string[]): Promise<void>;
}

/** An outcome event with a client-made id, so a retried write can never store it twice. */
export type StoredEvent = OutcomeEvent & { id: string };

/** Where outcome events end up (the events collection). */
export interface EventSink {
  write(events: readonly StoredEvent[]): Promise<void>;
}

/** Sends one personalised message; rejects with an `SmtpError`-classified error on failure. */
export interface MailTransport {
  send(delivery: Delivery): Promise<{ messageId: string; response: string }>;
  close(): Promise<void>;
}

export type { Delivery, OutcomeEvent, UserRecord };

/** The final outcome of one delivery: what the send queue reports and the recorder, metrics and broadcasts consume. */
export interface Outcome {
  delivery: Delivery;
  status: 'sent' | 'failed';
  attempts: number;
  latencyMs: number;
  error?: SmtpError;
}

/** What the send queue calls as deliveries end or are retried. */
export interface OutcomeHooks {
  /** Final outcome of a delivery; awaited, so a slow analytics buffer slows sending (backpressure). */
  onOutcome(outcome: Outcome): Promise<void> | void;
  /** A transient failure that will be retried after `delayMs`. */
  onRetry?(delivery: Delivery, attempt: number, delayMs: number, error: SmtpError): Promise<void> | void;
}

/** Whether the send queue's circuit breaker lets messages through (`closed`) or pauses them (`open`: the server is unreachable). */
export type BreakerState = 'closed' | 'open';

/** The send queue as the core sees it (implemented by `adapters/smtp/send-queue.ts`). */
export interface DeliveryQueue {
  submit(delivery: Delivery): void;
  /** Submitted and not yet handed to SMTP. */
  readonly waiting: number;
  readonly inFlight: number;
  /**
   * Resolves once fewer than `limit` deliveries wait (at once if that already holds), or when the
   * queue stops: an event, so a feeder waits for room without polling `waiting`.
   */
  room(limit: number): Promise<void>;
  /** Resolves when nothing is waiting or in flight and every outcome hook has returned. */
  idle(): Promise<void>;
  /** Stops intake; `released` never reached SMTP, `abandoned` were still in flight at the deadline. */
  stop(drainTimeoutMs: number): Promise<{ released: Delivery[]; abandoned: Delivery[] }>;
}

/** Where outcome events go (implemented by `analytics/buffer.ts`); awaiting it is backpressure. */
export interface EventRecorder {
  record(event: OutcomeEvent): Promise<void>;
}

/** Why an address is on the suppression list. */
export type SuppressionReason = 'unsubscribe' | 'hard-bounce' | 'soft-bounce' | 'complaint' | 'manual';

/** Every {@link SuppressionReason}, for code that checks a reason given as text (CLI, import, decoding). */
export const SUPPRESSION_REASONS = ['unsubscribe', 'hard-bounce', 'soft-bounce', 'complaint', 'manual'] as const satisfies readonly SuppressionReason[];

/**
 * What a suppression stops: `all` mail (the default: unsubscribes, bounces), or only `marketing`
 * (broadcasts), e.g. a complaint with `feedback.complaintStopsScheduled` false: the user's own
 * scheduled mail still goes.
 */
export type SuppressionScope = 'all' | 'marketing';

/** A suppressed address as the sending path loads it. */
export interface SuppressedAddress {
  /** Lower-cased. */
  email: string;
  scope: SuppressionScope;
}

/** One suppression to write. */
export interface SuppressionEntry {
  email: string;
  userId?: string;
  reason: SuppressionReason;
  /**
   * Who reported it: `smtp` (refused in the session), `unsubscribe`, a feedback source (`ses`,
   * `sendgrid`, `mailgun`, `postmark`, `dsn`, `arf`), `operator` or `import`.
   */
  source?: string;
  /** Default `all`. A later `all` widens a `marketing` suppression; a later `marketing` never narrows an `all` one. */
  scope?: SuppressionScope;
  detail?: string;
}

/** The suppression collection: addresses that must not be mailed again (lower-cased). */
export interface SuppressionStore {
  /** Suppress an address (idempotent). */
  suppress(entry: SuppressionEntry): Promise<void>;
  /** Count a hard bounce; returns the new count (the caller decides when to suppress). */
  recordHardBounce(email: string, detail: string): Promise<number>;
  /** Every suppressed address, streamed in batches. */
  allSuppressed(): AsyncIterable<SuppressedAddress[]>;
}

/** One suppressed address as an operator sees it (`mailwheel suppression list | export`). */
export interface SuppressionRecord {
  /** Lower-cased. */
  email: string;
  reason: SuppressionReason;
  /** Absent on documents written before sources were recorded. */
  source?: string;
  scope: SuppressionScope;
  detail?: string;
  /** When it was last suppressed (for an import: the time the file gave). */
  updatedAt: Date;
}

export interface SuppressionQuery {
  /** Only this reason. */
  reason?: SuppressionReason;
  /** At most this many records (default: all). */
  limit?: number;
}

/** One validated row of an import (the caller checks address syntax and reason). */
export interface SuppressionImport {
  email: string;
  reason: SuppressionReason;
  source: string;
  scope: SuppressionScope;
  /** Stored as the record's `updatedAt`. */
  at: Date;
  detail?: string;
}

export interface SuppressionImportResult {
  /** Addresses not suppressed before (new, or known only for their bounce count, or removed). */
  added: number;
  /** Suppressed for marketing only before, for all mail now. */
  widened: number;
  /** Suppressed at least as widely already: left as they were. */
  alreadySuppressed: number;
}

/**
 * The suppression collection as an operator tool (the CLI): look up, list, lift and bulk-import.
 * Apart from {@link SuppressionStore} so the sending path and its fakes need none of it.
 */
export interface SuppressionAdmin {
  /** The address's suppression, or undefined when it is not suppressed. */
  find(email: string): Promise<SuppressionRecord | undefined>;
  /** Suppressed addresses, one streamed cursor read in batches (no order promised). */
  list(query?: SuppressionQuery): AsyncIterable<SuppressionRecord[]>;
  /** Lifts a suppression; returns what it was, or undefined when the address was not suppressed. */
  remove(email: string): Promise<SuppressionRecord | undefined>;
  /** Suppresses many addresses at once; an address already suppressed keeps its record. */
  importMany(entries: readonly SuppressionImport[]): Promise<SuppressionImportResult>;
}

/**
 * The scheduler's checkpoint: the last minute (epoch minute) whose fires all have an outcome,
 * shared by every instance, so a start knows which fires it missed while down.
 */
export interface CheckpointStore {
  load(): Promise<number | undefined>;
  /** Moves the checkpoint forward to `minute` (never back: another instance may be ahead). */
  save(minute: number): Promise<void>;
}
