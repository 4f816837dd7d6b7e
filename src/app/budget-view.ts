/**
 * The rate budget as a process WITHOUT a send queue sees it (`mailwheel cluster status`): the
 * daemon's own budget is `App.budget` (the send queue's windows); a CLI process has no windows of
 * its own, so it reads them where they are kept.
 *
 * - No Redis (one instance): the windows live in the daemon's memory, restored at start from the
 *   delivery records. The CLI reports what those records hold: the sends recorded in each window
 *   up to now (every instance's), the same count a restart starts from. Scope `local`.
 * - Redis: the shared windows in Redis, read only (nothing is granted). `sharedWindowsView` is
 *   the hook the shared windows fill.
 */
import pino from 'pino';
import type { RedisConnection } from '../adapters/redis/connection.js';
import { SharedWindows } from '../adapters/redis/shared-windows.js';
import type { Config } from '../config/schema.js';
import { configuredWindows } from '../core/rate-windows.js';
import type { BudgetView, WindowUse } from '../ports/cluster.js';
import type { Clock } from '../ports/clock.js';
import type { SentCounter } from '../ports/stores.js';

export interface BudgetViewParts {
  /** The Redis connection when `cluster.redisUrl` is set. */
  redis: RedisConnection | undefined;
  /** The delivery records' sent counts (app/stores.ts). */
  sent: SentCounter;
  clock: Clock;
}

/** The rate windows' use for a process that sends nothing: shared (Redis) or recorded (MongoDB). */
export function budgetViewFor(config: Pick<Config, 'rate' | 'cluster' | 'smtp'>, parts: BudgetViewParts): BudgetView {
  const { redis } = parts;
  return redis === undefined ? recordedSendsView(config.rate, parts.sent, parts.clock) : sharedWindowsView(config, { ...parts, redis });
}

/** Each configured minute / hour / day window's sends, as the delivery records count them now. */
export function recordedSendsView(rate: Config['rate'], sent: SentCounter, clock: Clock): BudgetView {
  const windows = configuredWindows(rate);
  return {
    scope: 'local',
    state: 'up',
    async use(): Promise<WindowUse[]> {
      if (windows.length === 0) return [];
      const counts = await sent.countSent(clock.now(), windows.map((w) => w.ms));
      return windows.map((w, i) => ({ name: w.name, windowMs: w.ms, limit: w.limit, used: counts[i] ?? 0 }));
    },
  };
}

/**
 * The shared windows in Redis, read only (`use()` takes nothing): the same view the daemon's
 * `App.budget` is with Redis.
 */
export function sharedWindowsView(config: Pick<Config, 'rate' | 'cluster' | 'smtp'>, parts: BudgetViewParts & { redis: RedisConnection }): BudgetView {
  return new SharedWindows({
    redis: parts.redis,
    rate: config.rate,
    sent: parts.sent,
    clock: parts.clock,
    log: pino({ enabled: false }),
    sendTimeoutMs: config.smtp.connectionTimeoutMs + config.smtp.socketTimeoutMs,
  });
}
