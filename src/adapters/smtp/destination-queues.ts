/**
 * Per-destination shaping (config `destinations`): one SendQueue per destination group, each with
 * the group's rate windows, connection cap, retry policy, breaker and AIMD slowdown, so a 421 /
 * 4.7.x deferral from one provider slows only the mail to that provider. Inside each group the
 * queue serves scheduled mail before broadcasts, as the single queue does. All the groups take
 * from one global budget (`rate`) through the shared-budget interface (shared-gate.ts): this
 * process's windows (local-budget.ts), or every instance's in Redis with `cluster.redisUrl`
 * (the group limits are then per instance).
 *
 * This façade routes each delivery to its group's queue (core/destination-groups.ts) and shows
 * the rest of the daemon one send path ({@link SendPath}): sums, the worst breaker, and waits
 * that are events (the group queues' `room()` and `idle()` promises), never polling.
 */
import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import { DEFAULT_GROUP, destinationRouter } from '../../core/destination-groups.js';
import type { WindowUsage } from '../../core/rate-windows.js';
import type { Delivery } from '../../core/types.js';
import type { BudgetView } from '../../ports/cluster.js';
import { systemClock, type Clock, type OutcomeHooks } from '../../ports/index.js';
import type { StopResult } from './live-entries.js';
import { LocalBudget } from './local-budget.js';
import { sendQueueOptions, type DestinationGroupView, type ProbeableTransport, type SendPath, type SendQueueOptions, type SendStats } from './send-options.js';
import { relayCapacity } from './relay-set.js';
import { SendQueue } from './send-queue.js';
import type { SharedBudget } from './shared-gate.js';

interface Group {
  name: string;
  queue: SendQueue;
  limits: DestinationGroupView['limits'];
}

export interface GroupSpec {
  name: string;
  domains: readonly string[];
  options: SendQueueOptions;
  /**
   * The group's own connections (a pool of `maxConnections`), owned by the façade and closed by
   * its stop(); absent: the transport passed to the constructor. Own pools matter: a provider's
   * 421 closes the connection (RFC 5321), so over one shared pool a deferred group burns the warm
   * connections the others use, and their sends wait for new ones (measured: a 40/s group fell to
   * 35-37/s in the seconds another group was deferred).
   */
  transport?: ProbeableTransport;
}

export class DestinationQueues implements SendPath {
  readonly #groups: Group[];
  readonly #byName = new Map<string, Group>();
  readonly #route: (address: string) => string;
  readonly #budget: SharedBudget;
  readonly #globalPerSecond: number | null;
  /** One pending "this queue's waiting dropped below n" per queue and n, shared by every room() caller. */
  readonly #fewer = new Map<SendQueue, Map<number, Promise<void>>>();
  /** The groups' own transports, closed once every queue has stopped. */
  readonly #owned: ProbeableTransport[];
  #stopping = false;

  /**
   * @param specs every group, the default group included (its domains are not looked up)
   * @param budget the global budget every group queue takes from (its `shared` option)
   */
  constructor(transport: ProbeableTransport, specs: readonly GroupSpec[], budget: SharedBudget, globalPerSecond: number | null, hooks: OutcomeHooks, log: Logger) {
    this.#budget = budget;
    this.#globalPerSecond = globalPerSecond;
    this.#owned = specs.flatMap((s) => (s.transport === undefined ? [] : [s.transport]));
    this.#groups = specs.map(({ name, options, transport: own }) => {
      const queue = new SendQueue(own ?? transport, { ...options, shared: budget, ownWindows: true }, hooks, log.child({ group: name }));
      const { perSecond, perMinute, perHour, perDay } = options.rate;
      return { name, queue, limits: { perSecond: perSecond ?? null, perMinute: perMinute ?? null, perHour: perHour ?? null, perDay: perDay ?? null, maxConnections: options.concurrency } };
    });
    for (const g of this.#groups) this.#byName.set(g.name, g);
    this.#route = destinationRouter(specs.filter((s) => s.name !== DEFAULT_GROUP));
  }

  /** The queue a delivery goes to. */
  groupOf(email: string): string {
    return this.#route(email);
  }

  get waiting(): number {
    return this.#sum((q) => q.waiting);
  }
  get inFlight(): number {
    return this.#sum((q) => q.inFlight);
  }
  get awaitingGrant(): boolean {
    return this.#groups.some((g) => g.queue.awaitingGrant);
  }
  /** The worst group's state (one open breaker shows open); opens and probes summed. */
  get breaker(): SendPath['breaker'] {
    const all = this.#groups.map((g) => g.queue.breaker);
    return { state: all.some((b) => b.state === 'open') ? 'open' : 'closed', opens: all.reduce((n, b) => n + b.opens, 0), probes: all.reduce((n, b) => n + b.probes, 0) };
  }
  /**
   * The groups' rates in force summed, never above the global `rate.perSecond`; when a group has
   * no per-second limit of its own, the global one (null: none).
   */
  get ratePerSecond(): number | null {
    const rates = this.#groups.map((g) => g.queue.ratePerSecond);
    if (rates.some((r) => r === null)) return this.#globalPerSecond;
    const sum = rates.reduce<number>((n, r) => n + (r ?? 0), 0);
    return this.#globalPerSecond === null ? sum : Math.min(sum, this.#globalPerSecond);
  }
  /** The most slowed group's share of its configured rate (1: no group slowed). */
  get rateRatio(): number {
    return Math.min(...this.#groups.map((g) => g.queue.rateRatio));
  }
  /** The global windows' use. */
  get budget(): BudgetView {
    return this.#budget;
  }
  get stats(): Readonly<SendStats> {
    const out: SendStats = { submitted: 0, sent: 0, failed: 0, retried: 0, slowdowns: 0, grants: 0 };
    for (const { queue } of this.#groups) for (const k of Object.keys(out) as Array<keyof SendStats>) out[k] += queue.stats[k];
    return out;
  }
  get groups(): DestinationGroupView[] {
    return this.#groups.map(({ name, queue: q, limits }) => ({
      name,
      waiting: q.waiting,
      inFlight: q.inFlight,
      ratePerSecond: q.ratePerSecond,
      rateRatio: q.rateRatio,
      limits,
      sent: q.stats.sent,
      failed: q.stats.failed,
      deferrals: q.stats.retried,
      slowdowns: q.stats.slowdowns,
    }));
  }

  submit(delivery: Delivery): void {
    // buildSendPath always adds the default group; without one, the last group takes the rest.
    const group = this.#byName.get(this.#route(delivery.email)) ?? (this.#groups[this.#groups.length - 1] as Group);
    group.queue.submit(delivery);
  }

  withdraw(match: (d: Delivery) => boolean): Delivery[] {
    return this.#groups.flatMap((g) => g.queue.withdraw(match));
  }

  /**
   * Resolves once fewer than `limit` deliveries wait in all the groups together, or when the path
   * stops: waits until some group's waiting drops, then checks again.
   */
  async room(limit: number): Promise<void> {
    while (!this.#stopping && this.waiting >= limit) {
      const busy = this.#groups.filter((g) => g.queue.waiting > 0);
      if (busy.length === 0) return; // limit <= 0: nothing can drop
      await Promise.race(busy.map((g) => this.#fewerIn(g.queue)));
    }
  }

  /** Resolves when no group has anything waiting or in flight and every outcome hook has returned. */
  async idle(): Promise<void> {
    for (;;) {
      await Promise.all(this.#groups.map((g) => g.queue.idle()));
      if (this.#groups.every((g) => g.queue.waiting === 0 && g.queue.inFlight === 0)) return;
    }
  }

  /** Stops every group queue; what they released and abandoned, together. */
  async stop(drainTimeoutMs: number): Promise<StopResult> {
    this.#stopping = true;
    const results = await Promise.all(this.#groups.map((g) => g.queue.stop(drainTimeoutMs)));
    await Promise.all(this.#owned.map((t) => t.close().catch(() => undefined)));
    return { released: results.flatMap((r) => r.released), abandoned: results.flatMap((r) => r.abandoned) };
  }

  /** Resolves when `queue`'s waiting drops below what it is now (or it stops). */
  #fewerIn(queue: SendQueue): Promise<void> {
    const n = queue.waiting;
    let byLimit = this.#fewer.get(queue);
    if (byLimit === undefined) this.#fewer.set(queue, (byLimit = new Map()));
    let p = byLimit.get(n);
    if (p === undefined) {
      const map = byLimit;
      p = queue.room(n).finally(() => map.delete(n));
      byLimit.set(n, p);
    }
    return p;
  }

  #sum(of: (q: SendQueue) => number): number {
    let n = 0;
    for (const g of this.#groups) n += of(g.queue);
    return n;
  }
}

export interface SendPathParts {
  /** Sends already made in the global windows (a restart). */
  used?: WindowUsage;
  /** The budget every instance shares (`cluster.redisUrl`). */
  shared?: SharedBudget;
  /**
   * A transport of its own for each named group, with a pool of `poolSize` connections (the
   * group's `maxConnections`, null: every relay's connections together); the default group uses the main transport.
   * Absent: every group shares the main transport.
   */
  transportFor?: (poolSize: number) => ProbeableTransport;
  clock?: Clock;
}

/**
 * The daemon's send path from its config: with no destination group, the one SendQueue exactly
 * as before; with groups, one queue per group (and the default group) behind the façade, all
 * inside the global budget: `shared` (Redis) or this process's windows restored from `used`.
 */
export function buildSendPath(config: Config, transport: ProbeableTransport, hooks: OutcomeHooks, log: Logger, parts: SendPathParts = {}): SendPath {
  const base = { ...sendQueueOptions(config), ...(parts.clock ? { clock: parts.clock } : {}) };
  const { groups, default: fallback } = config.destinations;
  if (groups.length === 0) {
    return new SendQueue(transport, { ...base, ...(parts.used ? { used: parts.used } : {}), ...(parts.shared ? { shared: parts.shared } : {}) }, hooks, log);
  }
  const budget = parts.shared ?? new LocalBudget(config.rate, parts.clock ?? systemClock, parts.used);
  const spec = (name: string, domains: readonly string[], rate: Config['rate'], maxConnections: number | null): GroupSpec => {
    const concurrency = maxConnections ?? relayCapacity(config.smtp);
    const own = name !== DEFAULT_GROUP && parts.transportFor ? { transport: parts.transportFor(concurrency) } : {};
    return { name, domains, options: { ...base, rate, concurrency }, ...own };
  };
  const specs = [...groups.map((g) => spec(g.name, g.domains, g.rate, g.maxConnections)), spec(DEFAULT_GROUP, [], fallback.rate, fallback.maxConnections)];
  return new DestinationQueues(transport, specs, budget, config.rate.perSecond ?? null, hooks, log);
}
