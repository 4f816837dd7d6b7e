/**
 * The global rate budget (config `rate`) of one process, shared by the destination groups' send
 * queues (destination-queues.ts) through the same interface as the budget every instance shares
 * in Redis (shared-gate.ts, adapters/redis/shared-windows.ts): each group queue keeps its own
 * limits and takes from this one as well, so however the groups are configured, together they
 * never exceed `rate`.
 *   - the minute, hour and day windows are fixed windows from the start, as the grant limiter
 *     keeps them, and start with what a restart left of them (`used`, core/rate-windows.ts);
 *   - the second is the exact arrival bound of arrival-gate.ts: a send starts only while sends in
 *     flight plus sends finished in the last second are under `rate.perSecond`.
 * In-process and synchronous underneath (promises only to match the shared interface): it never
 * fails, so the gate's Redis backoff never runs.
 */
import type { Config } from '../../config/schema.js';
import { configuredWindows, tokensLeft, type WindowName, type WindowUsage } from '../../core/rate-windows.js';
import type { WindowUse } from '../../ports/cluster.js';
import type { Clock } from '../../ports/index.js';
import { ArrivalGate } from './arrival-gate.js';
import type { SharedBudget } from './shared-gate.js';

interface Window {
  name: WindowName;
  ms: number;
  limit: number;
  left: number;
  /** Monotonic time of the next refresh. */
  refreshAt: number;
}

export class LocalBudget implements SharedBudget {
  readonly scope = 'local' as const;
  readonly state = 'up' as const;
  readonly #clock: Clock;
  readonly #windows: Window[];
  readonly #second: ArrivalGate | undefined;
  /** Places in the second held by sends that have started and not ended. */
  readonly #places = new Set<string>();
  #nextId = 0;

  constructor(rate: Config['rate'], clock: Clock, used: WindowUsage = {}) {
    this.#clock = clock;
    const now = clock.monotonic();
    this.#windows = configuredWindows(rate).map(({ name, ms, limit }) => ({ name, ms, limit, left: tokensLeft(limit, used[name]), refreshAt: now + ms }));
    this.#second = rate.perSecond ? new ArrivalGate(rate.perSecond) : undefined;
  }

  take(n: number): Promise<{ granted: number; waitMs: number; atMs: number }> {
    const now = this.#refresh();
    let granted = n;
    for (const w of this.#windows) granted = Math.min(granted, w.left);
    granted = Math.max(0, granted);
    for (const w of this.#windows) w.left -= granted;
    // Nothing left: wait for the first full window's refresh.
    let waitMs = 0;
    if (granted === 0 && n > 0) waitMs = Math.max(1, Math.min(...this.#windows.filter((w) => w.left === 0).map((w) => w.refreshAt - now)));
    return Promise.resolve({ granted, waitMs, atMs: this.#clock.now() });
  }

  startSend(): Promise<{ id: string | undefined; waitMs: number }> {
    const wait = this.#second ? this.#second.tryStart(this.#clock.monotonic()) : 0;
    if (wait > 0) return Promise.resolve({ id: undefined, waitMs: wait });
    const id = String(++this.#nextId);
    this.#places.add(id);
    return Promise.resolve({ id, waitMs: 0 });
  }

  /** Fixed windows: the grant's time does not matter; the send counts in the second from now. */
  finishSend(id: string): Promise<void> {
    if (this.#places.delete(id)) this.#second?.finish(this.#clock.monotonic());
    return Promise.resolve();
  }

  cancelSend(id: string): Promise<void> {
    if (this.#places.delete(id)) this.#second?.cancel();
    return Promise.resolve();
  }

  /** The minute, hour and day windows' use (`/stats`, `/metrics`). */
  use(): Promise<WindowUse[]> {
    this.#refresh();
    return Promise.resolve(this.#windows.map((w) => ({ name: w.name, windowMs: w.ms, limit: w.limit, used: w.limit - w.left })));
  }

  /** Refills every window whose time is up; returns the monotonic now. */
  #refresh(): number {
    const now = this.#clock.monotonic();
    for (const w of this.#windows) {
      if (now < w.refreshAt) continue;
      w.left = w.limit;
      w.refreshAt += Math.ceil((now - w.refreshAt + 1) / w.ms) * w.ms;
    }
    return now;
  }
}
