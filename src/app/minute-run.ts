/**
 * `mailwheel run-minute`: one minute replayed in a one-shot process, on the same parts as the
 * daemon (user sync, scheduler, scheduled minute, dispatcher, send queue). Its report, its live
 * progress and its dry-run plan are read from those parts here, so the composition root only
 * wires them.
 */
import type { Stores } from './stores.js';
import type { SendPath } from '../adapters/smtp/send-options.js';
import { scheduledKey } from '../core/delivery-key.js';
import type { Dispatcher } from '../core/dispatcher.js';
import type { JobRegistry } from '../core/job-registry.js';
import type { MinuteScheduler } from '../core/minute-scheduler.js';
import type { ScheduledMinute } from '../core/scheduled-minute.js';
import type { SuppressionList } from '../core/suppression-list.js';
import { epochMinute } from '../core/time.js';
import type { UserSync } from '../core/user-sync.js';
import type { Clock } from '../ports/index.js';

/** What happened to a minute's deliveries, counted the same way in the report and the progress lines. */
export interface MinuteCounts {
  claimed: number;
  /** Already claimed by an earlier run or another instance. */
  skipped: number;
  /** Not sent: the address is suppressed (unsubscribed or bounced). */
  suppressed: number;
  sent: number;
  failed: number;
  retried: number;
}

/** What one `run-minute` did. */
export interface MinuteReport extends MinuteCounts {
  due: number;
  /** Where the run's time went (benchmarks: time to first send, claims per second). */
  timing: MinuteTiming;
}

/** Phases of one `run-minute`, in ms; `startedAt` is wall-clock epoch ms. */
export interface MinuteTiming {
  startedAt: number;
  /** The full user sync that precedes the minute. */
  syncMs: number;
  /** From the end of the sync until every due delivery was claimed and in the send queue. */
  dispatchMs: number;
  /** Time the bulk claims took (interleaved with sending). */
  claimMs: number;
  /** Of the claims' time, what the feed waited for (the next chunk is claimed while one is fed). */
  claimWaitMs: number;
  /** The whole run, until every outcome was recorded. */
  totalMs: number;
}

/** Live counters of a `run-minute` (its progress lines, and the summary of a run that was stopped). */
export interface MinuteProgress extends MinuteCounts {
  /** Deliveries due in the minute; undefined until the user sync is done and the minute fired. */
  due: number | undefined;
  /** Users scheduled so far (grows during the user sync). */
  users: number;
  /** Claimed and not handed to SMTP yet (in the send queue, in backoff, or not yet queued). */
  waiting: number;
  inFlight: number;
  /** Claims given back at a stop (a rerun of the minute sends them). */
  released: number;
  breaker: string;
}

/** What a `run-minute --dry-run` would send. */
export interface MinutePlan {
  due: number;
  /** Would be claimed and sent now. */
  wouldSend: number;
  /** Already claimed (sent, failed, or in progress) by an earlier run or another instance. */
  alreadyClaimed: number;
  suppressed: number;
  /** Of `wouldSend`, per template and kind (scheduled mail uses the `scheduled` template). */
  byTemplate: Array<{ template: string; kind: string; count: number }>;
}

/** The parts of the App a run reads (the App itself). */
export interface MinuteParts {
  readonly clock: Clock;
  readonly store: Pick<Stores, 'claimed'>;
  readonly registry: JobRegistry;
  readonly suppressions: SuppressionList;
  readonly sync: UserSync;
  readonly scheduler: MinuteScheduler;
  readonly scheduled: ScheduledMinute;
  readonly dispatcher: Dispatcher;
  readonly queue: SendPath;
}

/** Counters since the App was created, read while a `run-minute` runs (one minute per process). */
export function minuteProgress(p: MinuteParts): MinuteProgress {
  const d = p.dispatcher.stats;
  const q = p.queue.stats;
  return {
    due: p.scheduled.due,
    users: p.registry.userCount,
    claimed: d.claimed,
    skipped: d.skipped,
    suppressed: d.suppressed,
    sent: q.sent,
    failed: q.failed,
    retried: q.retried,
    waiting: p.queue.waiting + p.dispatcher.backlog,
    inFlight: p.queue.inFlight,
    released: d.released,
    breaker: p.queue.breaker.state,
  };
}

/**
 * What {@link runMinute} would send, without claiming or sending anything (`run-minute --dry-run`):
 * the deliveries due, less suppressed addresses and keys already claimed. Reads only.
 */
export async function planMinute(p: MinuteParts, minuteStartMs: number): Promise<MinutePlan> {
  await p.sync.full(minuteStartMs);
  // Taken out of the registry without rescheduling: a dry run ends the process after this.
  const jobs = p.registry.takeDue(epochMinute(minuteStartMs));
  const keys: string[] = [];
  let suppressed = 0;
  for (const j of jobs) {
    if (p.suppressions.has(j.email)) suppressed++;
    else keys.push(scheduledKey(j.userId, j.time, j.localDate));
  }
  // The same bounded lookup `plan` uses (index lookups, or one scan where that is cheaper).
  const alreadyClaimed = (await p.store.claimed.claimedKeys(keys)).size;
  const wouldSend = keys.length - alreadyClaimed;
  return { due: jobs.length, wouldSend, alreadyClaimed, suppressed, byTemplate: wouldSend > 0 ? [{ template: 'scheduled', kind: 'scheduled', count: wouldSend }] : [] };
}

/** Sends what is due in one minute (claims respected) and waits for every outcome. */
export async function runMinute(p: MinuteParts, minuteStartMs: number): Promise<MinuteReport> {
  const startedAt = p.clock.now();
  const t0 = p.clock.monotonic();
  await p.sync.full(minuteStartMs);
  const synced = p.clock.monotonic();
  const before = { ...p.dispatcher.stats };
  const sentBefore = { ...p.queue.stats };
  const due = await p.scheduler.runMinute(epochMinute(minuteStartMs));
  const dispatched = p.clock.monotonic();
  await p.dispatcher.idle();
  const ms = (n: number) => Math.round(n * 10) / 10;
  return {
    due,
    claimed: p.dispatcher.stats.claimed - before.claimed,
    skipped: p.dispatcher.stats.skipped - before.skipped,
    suppressed: p.dispatcher.stats.suppressed - before.suppressed,
    sent: p.queue.stats.sent - sentBefore.sent,
    failed: p.queue.stats.failed - sentBefore.failed,
    retried: p.queue.stats.retried - sentBefore.retried,
    timing: {
      startedAt,
      syncMs: ms(synced - t0),
      dispatchMs: ms(dispatched - synced),
      claimMs: ms(p.dispatcher.stats.claimMs - before.claimMs),
      claimWaitMs: ms(p.dispatcher.stats.claimWaitMs - before.claimWaitMs),
      totalMs: ms(p.clock.monotonic() - t0),
    },
  };
}
