/**
 * The rate windows every instance shares, in Redis (`cluster.redisUrl`): the minute, hour and day
 * windows as sliding windows of small buckets, the second as an exact in-flight + finished count
 * (the Lua in shared-windows-lua.ts). Redis's own TIME is the one clock, so instances on hosts with
 * skewed clocks still share one window.
 *
 * Why a Lua script and not a library (test/integration/shared-windows.test.ts measures both):
 * rate-limiter-flexible's RateLimiterRedis keeps FIXED windows, so a sliding second saw 258-338 at
 * a 200/s limit (a window's late burst plus the next window's early one); Bottleneck's clustering
 * fails on Redis 7 (test/integration/bottleneck-redis.test.ts). A provider counts sliding windows.
 *
 * Redis down: every call rejects at once with Errors.REDIS_UNAVAILABLE (the connection has no
 * offline queue); the caller pauses and retries, nothing is granted on a guess. Redis restarted
 * empty (no persistence): the windows' marker key is gone, so no grant is made until one instance
 * re-seeds the windows, once (SET NX), from the sends MongoDB recorded in each window (the
 * SentCounter port), counted as made now: a restart of Redis can delay budget, never add to it.
 */
import type { Logger } from 'pino';
import type { Redis } from 'ioredis';
import type { Config } from '../../config/schema.js';
import { configuredWindows, type ConfiguredWindow, type WindowName } from '../../core/rate-windows.js';
import { SECOND_MS } from '../../core/time.js';
import { Errors } from '../../errors.js';
import type { BudgetView, WindowUse } from '../../ports/cluster.js';
import { systemClock, type Clock } from '../../ports/index.js';
import type { SentCounter } from '../../ports/stores.js';
import type { RedisConnection } from './connection.js';
import { FINISH_LUA, SEED_LUA, START_LUA, TAKE_LUA } from './shared-windows-lua.js';

/** Buckets per window: the window is conservative by at most 1/BUCKETS of its length. */
export const BUCKETS = 60;

export interface SharedWindowsOptions {
  redis: RedisConnection;
  rate: Config['rate'];
  /** Counts the sends recorded in each window (the re-seed after Redis lost the windows). */
  sent: SentCounter;
  log: Logger;
  /** How long a started send holds its place in the shared second at most (a crashed instance's places free after it). */
  sendTimeoutMs: number;
  /** Wall-clock for the re-seed's count (the delivery records' times). */
  clock?: Clock;
  /** Shorter windows than the names say (tests measure a sliding "minute" of a few seconds). */
  windowMs?: Partial<Record<WindowName, number>>;
  /** This instance, in send ids (diagnostics). Default: a random id. */
  self?: string;
}

/** What a take got: `granted` of the n asked; when 0, `waitMs` until one frees in every window. */
export interface TakeResult {
  granted: number;
  waitMs: number;
  /** Redis's time of the take, epoch ms (the one clock of every instance). */
  atMs: number;
}

/** A send may start (`id`, to finish it with) or must wait `waitMs` (-1: until a send finishes). */
export type StartResult = { id: string; waitMs: 0 } | { id: undefined; waitMs: number };

interface ScriptedClient {
  mwBudgetTake(...args: Array<string | number>): Promise<number[]>;
  mwBudgetSeed(...args: Array<string | number>): Promise<number>;
  mwBudgetStart(...args: Array<string | number>): Promise<number[]>;
  mwBudgetFinish(...args: Array<string | number>): Promise<number>;
}

export class SharedWindows implements BudgetView {
  readonly scope = 'shared' as const;
  readonly #redis: RedisConnection;
  readonly #client: Redis & ScriptedClient;
  readonly #windows: ConfiguredWindow[];
  readonly #perSecond: number | null;
  readonly #sent: SentCounter;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #ttlMs: number;
  readonly #keys: { marker: string; windows: string[]; inFlight: string; finished: string };
  readonly #self: string;
  #nextId = 0;
  #seeding: Promise<void> | undefined;
  readonly stats = { takes: 0, granted: 0, starts: 0, reseeds: 0 };

  constructor(opts: SharedWindowsOptions) {
    this.#redis = opts.redis;
    this.#client = opts.redis.client as Redis & ScriptedClient;
    this.#windows = configuredWindows(opts.rate).map((w) => ({ ...w, ms: opts.windowMs?.[w.name] ?? w.ms }));
    this.#perSecond = opts.rate.perSecond ?? null;
    this.#sent = opts.sent;
    this.#log = opts.log;
    this.#clock = opts.clock ?? systemClock;
    this.#ttlMs = opts.sendTimeoutMs;
    this.#self = opts.self ?? Math.random().toString(36).slice(2, 10);
    const p = `${opts.redis.prefix}budget:`;
    this.#keys = { marker: `${p}seeded`, windows: this.#windows.map((w) => `${p}${w.name}`), inFlight: `${p}second:inflight`, finished: `${p}second:finished` };
    // evalsha with a fallback to eval on NOSCRIPT: a restarted Redis has forgotten the scripts.
    const c = this.#client;
    c.defineCommand('mwBudgetTake', { lua: TAKE_LUA });
    c.defineCommand('mwBudgetSeed', { lua: SEED_LUA });
    c.defineCommand('mwBudgetStart', { numberOfKeys: 2, lua: START_LUA });
    c.defineCommand('mwBudgetFinish', { lua: FINISH_LUA });
  }

  /** 'down' while Redis does not answer: sending is paused. */
  get state(): 'up' | 'down' {
    return this.#redis.up ? 'up' : 'down';
  }

  /** The per-second limit of the shared second (null: none). */
  get perSecond(): number | null {
    return this.#perSecond;
  }

  /** Takes up to `n` sends from every configured minute/hour/day window at once (the least any has left). */
  async take(n: number): Promise<TakeResult> {
    if (this.#windows.length === 0) return { granted: n, waitMs: 0, atMs: this.#clock.now() };
    const r = await this.#take(n);
    this.stats.takes++;
    this.stats.granted += r[0] ?? 0;
    return { granted: r[0] ?? 0, waitMs: r[1] ?? 0, atMs: r[2] ?? 0 };
  }

  /** Each window's use now (every instance's sends). Rejects with REDIS_UNAVAILABLE while Redis is down. */
  async use(): Promise<WindowUse[]> {
    const out: WindowUse[] = [];
    if (this.#windows.length > 0) {
      const r = await this.#take(0);
      this.#windows.forEach((w, i) => out.push({ name: w.name, windowMs: w.ms, limit: w.limit, used: r[3 + i] ?? 0 }));
    }
    return out;
  }

  /** Asks to start one send against the shared second (always granted when no `rate.perSecond`). */
  async startSend(): Promise<StartResult> {
    const id = `${this.#self}:${(this.#nextId++).toString(36)}`;
    if (this.#perSecond === null) return { id, waitMs: 0 };
    const r = await this.#call(() => this.#client.mwBudgetStart(this.#keys.inFlight, this.#keys.finished, this.#perSecond as number, id, this.#ttlMs, SECOND_MS));
    if (r[0] !== 1) return { id: undefined, waitMs: r[1] ?? -1 };
    this.stats.starts++;
    return { id, waitMs: 0 };
  }

  /**
   * A started send ended (it reached the server or failed there): counted in the second for one
   * second from now, and its grant (`grantedAtMs`, the take's `atMs`) re-dated to now in every
   * window, so it counts a full window from its arrival, not from its grant.
   */
  async finishSend(id: string, grantedAtMs = 0): Promise<void> {
    if (this.#perSecond === null && (this.#windows.length === 0 || grantedAtMs <= 0)) return;
    await this.#end(id, true, grantedAtMs);
  }

  /** A started send did not go after all: its place frees at once (its grant stays counted). */
  async cancelSend(id: string): Promise<void> {
    if (this.#perSecond === null) return;
    await this.#end(id, false, 0);
  }

  async #end(id: string, finished: boolean, grantedAtMs: number): Promise<void> {
    const args: Array<string | number> = [3 + this.#keys.windows.length, this.#keys.inFlight, this.#keys.finished, this.#keys.marker, ...this.#keys.windows];
    args.push(id, SECOND_MS, finished ? '1' : '0', this.#perSecond === null ? '0' : '1', Math.floor(grantedAtMs));
    for (const w of this.#windows) args.push(bucketMs(w.ms), BUCKETS);
    await this.#call(() => this.#client.mwBudgetFinish(...args));
  }

  /** TAKE, re-seeding first when Redis lost the windows. */
  async #take(n: number): Promise<number[]> {
    for (let attempt = 0; ; attempt++) {
      const r = await this.#call(() => this.#client.mwBudgetTake(...this.#takeArgs(n)));
      if (r[0] !== -1) return r;
      // Unseeded: no grant until the windows hold what MongoDB recorded. Twice unseeded in a row
      // (a Redis restarted again meanwhile) reports it; the caller retries later.
      if (attempt > 0) throw new Errors.REDIS_UNAVAILABLE('redis lost the rate windows again while they were re-seeded');
      await this.reseed();
    }
  }

  /**
   * Seeds the windows from MongoDB's delivery records, once for all instances (SET NX on the
   * marker): the sends recorded in each window count as made now. Concurrent calls of this
   * instance share one count.
   */
  reseed(): Promise<void> {
    this.#seeding ??= this.#reseed().finally(() => {
      this.#seeding = undefined;
    });
    return this.#seeding;
  }

  async #reseed(): Promise<void> {
    const counts = await this.#sent.countSent(this.#clock.now(), this.#windows.map((w) => w.ms));
    const args: Array<string | number> = [this.#keys.windows.length + 1, this.#keys.marker, ...this.#keys.windows];
    this.#windows.forEach((w, i) => args.push(counts[i] ?? 0, bucketMs(w.ms), BUCKETS));
    const seeded = await this.#call(() => this.#client.mwBudgetSeed(...args));
    if (seeded === 1) {
      this.stats.reseeds++;
      const fields = Object.fromEntries(this.#windows.map((w, i) => [w.name, { limit: w.limit, used: counts[i] ?? 0 }]));
      this.#log.warn(fields, 'shared rate windows seeded from the delivery records (redis had none: first start or restarted empty)');
    }
  }

  #takeArgs(n: number): Array<string | number> {
    const args: Array<string | number> = [this.#keys.windows.length + 1, this.#keys.marker, ...this.#keys.windows, n];
    for (const w of this.#windows) args.push(w.limit, bucketMs(w.ms), BUCKETS);
    return args;
  }

  /** One Redis call; any failure (down, timeout, script error) is REDIS_UNAVAILABLE. */
  async #call<T>(run: () => Promise<T>): Promise<T> {
    if (!this.#redis.up) throw new Errors.REDIS_UNAVAILABLE('redis is not connected');
    try {
      return await run();
    } catch (err) {
      throw new Errors.REDIS_UNAVAILABLE(`redis call failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}

/** A window's bucket length, ms (a whole number: bucket indices are integers). */
export function bucketMs(windowMs: number): number {
  return Math.max(1, Math.ceil(windowMs / BUCKETS));
}
