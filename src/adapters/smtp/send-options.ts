/**
 * The send queue's settings and how the daemon takes them from its config: one place, so a
 * benchmark builds the same queue the daemon runs. Also the transport shape the queue takes.
 */
import type { Config } from '../../config/schema.js';
import type { WindowUsage } from '../../core/rate-windows.js';
import type { Clock, MailTransport } from '../../ports/index.js';
import { relayCapacity } from './relay-set.js';
import type { SharedBudget } from './shared-gate.js';
import type { SlowdownOptions } from './slowdown.js';

/** A transport the breaker can probe (nodemailer's `verify`). */
export type ProbeableTransport = MailTransport & { verify?(): Promise<boolean> };

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
