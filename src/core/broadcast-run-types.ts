/**
 * What a broadcast run is given and what it returns (split out of `broadcast-run.ts`, which
 * re-exports them).
 */
import type { BroadcastCheckpoint, BroadcastCounters, BroadcastQueue, BroadcastRunStore, OutcomeFlusher, ZoneProgress } from '../ports/broadcasts.js';
import type { Clock } from '../ports/clock.js';
import type { ClaimStore, EventRecorder, RawUser } from '../ports/index.js';
import type { SendWindow } from './send-window.js';
import type { TemplateSet } from './template-set.js';
import type { FieldMap } from './validate-user.js';

export interface BroadcastRunDeps {
  broadcastId: string;
  /** The broadcast's compiled subject/text/html, carried by every delivery of the run. */
  content: TemplateSet;
  /** The users the segment matches (active, not unsubscribed), in batches: one streamed cursor. */
  recipients: AsyncIterable<RawUser[]>;
  fields: FieldMap;
  claims: Pick<ClaimStore, 'claim' | 'release' | 'complete'>;
  queue: BroadcastQueue;
  recorder: OutcomeFlusher;
  events: EventRecorder;
  isSuppressed(email: string): boolean;
  store: BroadcastRunStore;
  /** The segment's size, counted beside the run (a scan: not awaited before sending). */
  total?: Promise<number | undefined> | undefined;
  /** Time for events, checkpoints, the control checks and the drain; default the system clock. */
  clock?: Clock | undefined;
}

export interface BroadcastRunOptions {
  /** Most of this run's messages in the send queue at once (waiting or in flight). */
  feedAhead: number;
  /** How often, within a batch, operator requests are read and progress is published, ms. */
  controlPollMs: number;
  /** How long an interrupted batch waits for its sends in flight, ms. */
  drainTimeoutMs: number;
  /**
   * Counters published by earlier runs of this broadcast. A resumed run recounts from zero (the
   * ledger makes that fast) and publishes its counters only once they have caught up, so
   * progress never appears to go backwards.
   */
  baseline?: BroadcastCounters | undefined;
  /** The instant the broadcast was due, ms (the `dueAt` of its deliveries). */
  dueAt: number;
  /** Local time and quiet hours: when each recipient may be sent (send-window.ts). */
  window?: SendWindow | undefined;
  /** Zone progress published by earlier runs (shown until this run's catches up). */
  baselineZones?: ZoneProgress[] | undefined;
}

/**
 * How a run ended. `stopped`: the daemon is shutting down; another run continues later.
 * `incomplete`: the stream ended but some users' keys were claimed by another live instance
 * and not finished; a later run must look at them again (never declared done on a guess).
 * `waiting`: the stream ended and everyone is done but recipients held until a later instant
 * (local time, quiet hours); `nextAt` is the earliest, when a run must look again.
 */
export type RunEnd = 'done' | 'incomplete' | 'waiting' | 'paused' | 'cancelled' | 'superseded' | 'stopped';

export interface RunResult {
  end: RunEnd;
  counters: BroadcastCounters;
  checkpoint: BroadcastCheckpoint | undefined;
  /** With `waiting`: the earliest instant a held recipient may be sent, ms. */
  nextAt?: number | undefined;
  /** Per-zone progress (local time, quiet hours). */
  zones?: ZoneProgress[] | undefined;
}
