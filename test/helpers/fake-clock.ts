/**
 * A manual {@link Clock} for tests: time moves only when the test says so, and timers run in
 * (due time, creation order) order while it does.
 */
import type { Clock } from '../../src/ports/index.js';

interface FakeTimer {
  at: number;
  seq: number;
  fn: () => void;
}

/** Let pending promise callbacks run (one macrotask turn drains the microtask queue). */
export function flushMicrotasks(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A clock whose time moves only through `advance`, `advanceAsync` and `jump`. */
export class FakeClock implements Clock {
  #now: number;
  #seq = 0;
  #timers = new Map<number, FakeTimer>();

  /** @param start epoch ms or an ISO string */
  constructor(start: number | string = 0) {
    this.#now = typeof start === 'string' ? Date.parse(start) : start;
    if (!Number.isFinite(this.#now)) throw new RangeError(`FakeClock: bad start ${String(start)}`);
  }

  now(): number {
    return this.#now;
  }

  /** Moves with `now()`: durations measured on a fake clock are the time the test advanced. */
  monotonic(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): number {
    const id = ++this.#seq;
    const delay = Number.isFinite(ms) && ms > 0 ? ms : 0;
    this.#timers.set(id, { at: this.#now + delay, seq: id, fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    if (typeof handle === 'number') this.#timers.delete(handle);
  }

  /** Number of armed timers. */
  get pending(): number {
    return this.#timers.size;
  }

  /** Due time of the earliest armed timer. */
  nextTimerAt(): number | undefined {
    return this.#earliest(Infinity)?.at;
  }

  /**
   * Move time forward WITHOUT running timers, as when the event loop is blocked; overdue timers
   * run late (with `now()` already past their due time) at the next `advance`/`advanceAsync`.
   */
  jump(ms: number): void {
    this.#now += ms;
  }

  /** Move time forward by `ms`, running each timer that comes due, in order (synchronously). */
  advance(ms: number): void {
    const target = this.#now + ms;
    for (let i = 0; ; i++) {
      if (i > 1_000_000) throw new Error('FakeClock.advance: runaway timers');
      const t = this.#take(target);
      if (t === undefined) break;
      t.fn();
    }
    this.#now = Math.max(this.#now, target);
  }

  /**
   * Like {@link advance}, but lets promise callbacks run before and after each timer, so async
   * code that arms its next timer after an `await` is followed through.
   */
  async advanceAsync(ms: number): Promise<void> {
    const target = this.#now + ms;
    for (let i = 0; ; i++) {
      if (i > 1_000_000) throw new Error('FakeClock.advanceAsync: runaway timers');
      await flushMicrotasks();
      const t = this.#take(target);
      if (t === undefined) break;
      t.fn();
    }
    this.#now = Math.max(this.#now, target);
    await flushMicrotasks();
  }

  /** Remove the earliest timer due at or before `limit` and move time to its due time (never back). */
  #take(limit: number): FakeTimer | undefined {
    const t = this.#earliest(limit);
    if (t === undefined) return undefined;
    this.#timers.delete(t.seq);
    this.#now = Math.max(this.#now, t.at);
    return t;
  }

  #earliest(limit: number): FakeTimer | undefined {
    let best: FakeTimer | undefined;
    for (const t of this.#timers.values()) {
      if (t.at > limit) continue;
      if (best === undefined || t.at < best.at || (t.at === best.at && t.seq < best.seq)) best = t;
    }
    return best;
  }
}
