/**
 * The provider's rate windows as Bottleneck grants. Bottleneck 2.19.5 completes about 414 jobs/s
 * whatever the settings (docs/ARCHITECTURE.md), so one Bottleneck job per message would cap the
 * daemon near 400 msgs/s. Here a job is a *grant* for a batch of messages, with `weight` = batch
 * size (the reservoirs of the minute, hour and day windows count weight) and `minTime` spacing
 * batches so that the per-second rate holds (core/pacing.ts).
 *
 * Bottleneck is the rate-window engine and keeps its own timers, not the injected clock: a fake
 * clock does not move its windows, so a test driven by a fake clock configures no rate (every
 * grant is then immediate).
 *
 * A start may hand in the sends already made in each window (core/rate-windows.ts, counted from
 * the delivery records): the window's reservoir then starts with what is left, not a fresh one.
 */
import Bottleneck from 'bottleneck';
import type { Config } from '../../config/schema.js';
import { configuredWindows, tokensLeft, type WindowName, type WindowUsage } from '../../core/rate-windows.js';
import type { DeliveryKind } from '../../core/types.js';
import { systemClock, type Clock } from '../../ports/index.js';
import type { BudgetView, WindowUse } from '../../ports/cluster.js';

/** Bottleneck priorities: 0 is served first, so scheduled mail is granted before broadcasts. */
const PRIORITY: Record<DeliveryKind, number> = { scheduled: 2, broadcast: 7 };

/**
 * What a window has left, mirrored here because Bottleneck answers that only asynchronously: a
 * grant weighs as many messages as it carries, and Bottleneck holds a grant heavier than what its
 * reservoir has left until the next refresh (forever, when the grant outweighs the whole limit:
 * `rate.perDay` 30 and a grant of 40 sent nothing). The mirror refreshes on the same interval,
 * from the same start, as the reservoir, and so on Bottleneck's time, the system clock (a mirror
 * a few hundred ms ahead of Bottleneck's refresh costs one grant that much wait, nothing more).
 */
interface WindowMirror {
  limit: number;
  ms: number;
  left: number;
  refreshAt: number;
}

export class GrantLimiter {
  readonly #limiter: Bottleneck;
  readonly #windows: Array<{ name: WindowName; limiter: Bottleneck }> = [];
  readonly #mirrors: WindowMirror[] = [];
  readonly #clock: Clock;
  readonly #rateConfig: Config['rate'];

  /**
   * @param minTime ms between grants (0: no per-second limit)
   * @param used sends already made in each window (a restart): it starts with the limit less them
   * @param clock Bottleneck's own time (the system clock); a test may pass another to move the mirror
   */
  constructor(rate: Config['rate'], minTime: number, used: WindowUsage = {}, clock: Clock = systemClock) {
    this.#clock = clock;
    this.#rateConfig = rate;
    this.#limiter = new Bottleneck({ minTime });
    let last = this.#limiter;
    for (const { name, ms, limit } of configuredWindows(rate)) {
      const left = tokensLeft(limit, used[name]);
      const w = new Bottleneck({ reservoir: left, reservoirRefreshAmount: limit, reservoirRefreshInterval: ms });
      last.chain(w);
      last = w;
      this.#windows.push({ name, limiter: w });
      this.#mirrors.push({ limit, ms, left, refreshAt: clock.monotonic() + ms });
    }
  }

  /**
   * The heaviest grant the windows can take now: what the emptiest one has left, and at least 1
   * (a grant of one message in an empty window waits for its refresh, then sending goes on).
   */
  maxGrant(): number {
    const now = this.#clock.monotonic();
    let most = Infinity;
    for (const m of this.#mirrors) {
      if (now >= m.refreshAt) {
        m.left = m.limit;
        m.refreshAt += Math.ceil((now - m.refreshAt + 1) / m.ms) * m.ms;
      }
      most = Math.min(most, m.left);
    }
    return Math.max(1, most);
  }

  /** What each configured window has left to grant now (messages). */
  async left(): Promise<Partial<Record<WindowName, number>>> {
    const out: Partial<Record<WindowName, number>> = {};
    for (const { name, limiter } of this.#windows) out[name] = (await limiter.currentReservoir()) ?? 0;
    return out;
  }

  /** This process's windows as the budget view (`/stats`, `/metrics`): minute, hour and day. */
  view(): BudgetView {
    const windows = configuredWindows(this.#rateConfig);
    return {
      scope: 'local',
      state: 'up',
      use: async (): Promise<WindowUse[]> => {
        const left = await this.left();
        return windows.map(({ name, ms, limit }) => ({ name, windowMs: ms, limit, used: Math.max(0, limit - (left[name] ?? 0)) }));
      },
    };
  }

  /** Resolves with `batch` once the windows allow it; rejects only after `stop()`. */
  grant<T>(kind: DeliveryKind, batch: T[]): Promise<T[]> {
    for (const m of this.#mirrors) m.left = Math.max(0, m.left - batch.length);
    return this.#limiter.schedule({ priority: PRIORITY[kind], weight: batch.length }, async () => batch);
  }

  /** New spacing between grants (the slowdown lowered or restored the rate). */
  setMinTime(minTime: number): void {
    void this.#limiter.updateSettings({ minTime });
  }

  /** Drops waiting grants. Not awaited: Bottleneck's stop() waits for running jobs without a deadline; grants are instant anyway. */
  stop(): void {
    void this.#limiter.stop({ dropWaitingJobs: true }).catch(() => undefined);
  }

  /** Stops the windows' refresh timers. */
  async disconnect(): Promise<void> {
    await Promise.all(this.#windows.map((w) => w.limiter.disconnect()));
  }
}
