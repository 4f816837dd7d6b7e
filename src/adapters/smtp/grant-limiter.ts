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

/** Bottleneck priorities: 0 is served first, so scheduled mail is granted before broadcasts. */
const PRIORITY: Record<DeliveryKind, number> = { scheduled: 2, broadcast: 7 };

export class GrantLimiter {
  readonly #limiter: Bottleneck;
  readonly #windows: Array<{ name: WindowName; limiter: Bottleneck }> = [];

  /**
   * @param minTime ms between grants (0: no per-second limit)
   * @param used sends already made in each window (a restart): it starts with the limit less them
   */
  constructor(rate: Config['rate'], minTime: number, used: WindowUsage = {}) {
    this.#limiter = new Bottleneck({ minTime });
    let last = this.#limiter;
    for (const { name, ms, limit } of configuredWindows(rate)) {
      const w = new Bottleneck({ reservoir: tokensLeft(limit, used[name]), reservoirRefreshAmount: limit, reservoirRefreshInterval: ms });
      last.chain(w);
      last = w;
      this.#windows.push({ name, limiter: w });
    }
  }

  /** What each configured window has left to grant now (messages). */
  async left(): Promise<Partial<Record<WindowName, number>>> {
    const out: Partial<Record<WindowName, number>> = {};
    for (const { name, limiter } of this.#windows) out[name] = (await limiter.currentReservoir()) ?? 0;
    return out;
  }

  /** Resolves with `batch` once the windows allow it; rejects only after `stop()`. */
  grant<T>(kind: DeliveryKind, batch: T[]): Promise<T[]> {
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
