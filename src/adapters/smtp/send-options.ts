/**
 * The send queue's settings and how the daemon takes them from its config: one place, so a
 * benchmark builds the same queue the daemon runs. Also the transport shape the queue takes.
 */
import type { Config } from '../../config/schema.js';
import type { WindowUsage } from '../../core/rate-windows.js';
import type { Delivery } from '../../core/types.js';
import type { BudgetView } from '../../ports/cluster.js';
import type { Clock, DeliveryQueue, MailTransport } from '../../ports/index.js';
import type { BreakerState } from './circuit-breaker.js';
import type { StopResult } from './live-entries.js';
import { relayCapacity } from './relay-set.js';
import type { SharedBudget } from './shared-gate.js';
import type { SlowdownOptions } from './slowdown.js';

/** A transport the breaker can probe (nodemailer's `verify`). */
export type ProbeableTransport = MailTransport & { verify?(): Promise<boolean> };

/** The send counters of a queue (or the sums over the destination groups' queues). */
export interface SendStats {
  submitted: number;
  sent: number;
  failed: number;
  retried: number;
  slowdowns: number;
  grants: number;
}

/** One destination group's queue as `/stats` and `/metrics` show it. */
export interface DestinationGroupView {
  name: string;
  waiting: number;
  inFlight: number;
  /** The per-second rate in force (the group's, lower after its 421s); null: none configured. */
  ratePerSecond: number | null;
  rateRatio: number;
  /** The group's configured limits and connection cap. */
  limits: { perSecond: number | null; perMinute: number | null; perHour: number | null; perDay: number | null; maxConnections: number };
  sent: number;
  failed: number;
  /** Transient failures (4xx: deferrals) that were retried. */
  deferrals: number;
  slowdowns: number;
}

/**
 * What the rest of the daemon uses of the send path: one SendQueue (no destination groups), or
 * the destination groups' queues behind one façade (destination-queues.ts).
 */
export interface SendPath extends DeliveryQueue {
  withdraw(match: (d: Delivery) => boolean): Delivery[];
  stop(drainTimeoutMs: number): Promise<StopResult>;
  readonly awaitingGrant: boolean;
  readonly breaker: { state: BreakerState; opens: number; probes: number };
  readonly ratePerSecond: number | null;
  readonly rateRatio: number;
  readonly budget: BudgetView;
  readonly stats: Readonly<SendStats>;
  /** Per destination group; absent on the single queue (no groups configured). */
  readonly groups?: readonly DestinationGroupView[];
}

export interface SendQueueOptions {
  /** Messages in flight at once; the connections of all relays together (relay-set.ts `relayCapacity`). */
  concurrency: number;
  rate: Config['rate'];
  /**
   * Sends already made in the minute, hour and day windows when the queue starts (a restart,
   * counted from the delivery records): each window starts with its limit less them. Default none.
   */
  used?: WindowUsage;
  /**
   * The budget every instance shares (`cluster.redisUrl`): the minute, hour and day windows and
   * the exact second are taken from it, and `used` is ignored (the shared windows outlive a
   * restart). Absent: the windows are this process's (grant-limiter.ts).
   */
  shared?: SharedBudget;
  /**
   * With `shared`: the local limiter keeps `rate`'s minute, hour and day windows too, instead of
   * spacing grants only (a destination group's queue: its own limits inside the global budget).
   */
  ownWindows?: boolean;
  maxAttempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** Consecutive connection failures that open the breaker. Default 5. */
  breakerThreshold?: number;
  /** Longest wait between probes while the breaker is open. Default 30 s. */
  breakerProbeMaxMs?: number;
  /** The AIMD slowdown after 421 / "too many" deferrals (slowdown.ts); defaults there. */
  slowdown?: Partial<SlowdownOptions>;
  /** Largest batch per Bottleneck grant. Default 50. */
  maxBatch?: number;
  /**
   * Time for the queue's own waits and readings (backoff, breaker probes, the arrival gate, the
   * drain deadline, latencies). Default: the system clock. Bottleneck keeps its own timers.
   */
  clock?: Clock;
}

/** The queue's settings as the daemon takes them from its config. */
export function sendQueueOptions(config: Config): SendQueueOptions {
  return {
    concurrency: relayCapacity(config.smtp),
    rate: config.rate,
    maxAttempts: config.send.maxAttempts,
    backoffBaseMs: config.send.backoffBaseMs,
    backoffMaxMs: config.send.backoffMaxMs,
    breakerThreshold: config.send.breakerThreshold,
    breakerProbeMaxMs: config.send.breakerProbeMaxMs,
    slowdown: {
      decrease: config.send.slowdownDecrease,
      windowMs: config.send.slowdownWindowMs,
      recoveryPerSecond: config.send.slowdownRecoveryPerSecond,
      floor: config.send.slowdownFloor,
    },
  };
}
