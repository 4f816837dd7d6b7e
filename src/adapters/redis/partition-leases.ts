/**
 * Partition leases in Redis (docs/ARCHITECTURE.md "Several instances"): this instance's share of
 * the partitions, renewed in rounds every leaseTtlMs/3 on the injected clock.
 *
 * A round is three script calls at most (lease-scripts.ts), each atomic and one round trip:
 * ROUND (heartbeat; renew every held lease with compare-and-PEXPIRE, take back the ones gone after
 * a Redis restart; read the live members and every partition's owner), then, per the fair share
 * (core/partition-balance.ts), TAKE (SET NX PX of free partitions) and RELEASE (compare-and-DEL of
 * the excess). The change handler hears of a partition given back BEFORE its lease is deleted, so
 * the instance has dropped its users and written its mark by the time another member can take it.
 *
 * Leases are an economy, not the delivery guarantee (claims in MongoDB are; the per-partition marks
 * live in MongoDB, so a Redis restart loses no fire). A dead member's leases expire a TTL after
 * its last renewal, and the others, seeing its heartbeat about to lapse, run a round just after:
 * takeover within leaseTtlMs of the death (plus a round at worst when a round is slow).
 * Redis down: a round fails fast and the held partitions are kept (nobody can take them while
 * Redis is down); logged once, retried every round. Redis back empty: the held partitions are
 * taken back with SET NX (lost to whoever got one first), and the member skips taking free ones
 * for that round so the others can re-register first (no churn).
 */
import type { Logger } from 'pino';
import { planBalance } from '../../core/partition-balance.js';
import { Errors, MailwheelError } from '../../errors.js';
import type { ClusterMember, ClusterStatus, LeaseInfo, MemberInfo, PartitionChange } from '../../ports/cluster.js';
import type { Clock } from '../../ports/clock.js';
import type { RedisConnection } from './connection.js';
import { RELEASE, ROUND, STATUS, TAKE, runScript } from './lease-scripts.js';

export interface PartitionLeaseOptions {
  redis: RedisConnection;
  /** This instance's id (InstanceDirectory id). */
  self: string;
  partitions: number;
  leaseTtlMs: number;
  clock: Clock;
  log: Logger;
}

/** What one ROUND script call read. */
interface RoundView {
  /** False when this member's heartbeat was missing (Redis restarted empty, or it was silent 10 TTLs). */
  registered: boolean;
  live: string[];
  owners: Array<string | null>;
}

/** After a lapsing member's expiry, so its leases are gone when the early round reads them. */
const EXPIRY_MARGIN_MS = 50;
/** Further takes in one round after losing a race for free partitions. */
const TAKE_RETRIES = 3;

/** Longest wait for the connection at start() or status() before REDIS_UNAVAILABLE. */
const CONNECT_WAIT_MS = 5_000;

export class RedisClusterMember implements ClusterMember {
  readonly mode = 'partitioned' as const;
  readonly partitions: number;
  readonly #redis: RedisConnection;
  readonly #self: string;
  readonly #ttl: number;
  readonly #roundMs: number;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #owned = new Set<number>();
  /** Lost at a renewal but not reported yet (a round failed after finding them, or a keep-alive found them). */
  readonly #pendingLost = new Set<number>();
  #handler: ((change: PartitionChange) => Promise<void>) | undefined;
  #state: 'new' | 'started' | 'stopped' = 'new';
  #timer: unknown;
  #round: Promise<void> | undefined;
  /**
   * From the last round: until the earliest heartbeat of another live member lapses, or the
   * earliest lease of a member no longer live expires, ms (Infinity: none). A member renewing
   * every round is never within a round of it; one that stopped is, and its leases expire with
   * its heartbeat (written by the same script at the same instant).
   */
  #nextExpiryMs = Infinity;
  /** The first failure of the current outage (undefined while rounds succeed): logged once, not every round. */
  #failing: string | undefined;

  constructor(opts: PartitionLeaseOptions) {
    this.partitions = opts.partitions;
    this.#redis = opts.redis;
    this.#self = opts.self;
    this.#ttl = opts.leaseTtlMs;
    this.#roundMs = Math.max(1, Math.floor(opts.leaseTtlMs / 3));
    this.#clock = opts.clock;
    this.#log = opts.log;
  }

  owned(): ReadonlySet<number> {
    return this.#owned;
  }

  onChange(handler: (change: PartitionChange) => Promise<void>): void {
    this.#handler = handler;
  }

  /** Registers and runs the first round (with no other live member: takes all P). Redis down: REDIS_UNAVAILABLE at once. */
  async start(): Promise<void> {
    if (this.#state !== 'new') throw new Errors.INVALID_STATE(`partition leases: start() on a member already ${this.#state}`);
    await this.#connected('partition leases cannot start');
    this.#state = 'started';
    try {
      this.#round = this.#runRound(true);
      await this.#round;
    } catch (err) {
      this.#state = 'stopped';
      throw this.#unavailable('partition leases cannot start', err);
    } finally {
      this.#round = undefined;
    }
    this.#schedule();
  }

  /** Stops renewing, releases every lease and removes the heartbeat (others take them at their next round). */
  async stop(): Promise<void> {
    const was = this.#state;
    this.#state = 'stopped';
    this.#clock.clearTimeout(this.#timer);
    await this.#round?.catch(() => undefined);
    if (was !== 'started') return;
    const held = [...this.#owned];
    this.#owned.clear();
    try {
      await runScript(this.#redis.client, RELEASE, [this.#redis.prefix, this.#self, '1', ...held]);
      this.#log.info({ released: held.length }, 'partition leases released');
    } catch (err) {
      this.#log.warn({ err: { message: messageOf(err) }, partitions: held.length }, `partition leases not released (redis unavailable): they expire within ${this.#ttl} ms`);
    }
  }

  /** The table as Redis holds it now. Reads only: works on a member that never started (`cluster status`). */
  async status(): Promise<ClusterStatus> {
    await this.#connected('cluster status');
    let raw: unknown;
    try {
      raw = await runScript(this.#redis.client, STATUS, [this.#redis.prefix, this.partitions]);
    } catch (err) {
      throw this.#unavailable('cluster status', err);
    }
    const [now, flatMembers, rawLeases] = raw as [number, string[], Array<[number, string, number, string]>];
    const heartbeats = new Map<string, number>();
    for (let i = 0; i + 1 < flatMembers.length; i += 2) heartbeats.set(flatMembers[i] as string, Number(flatMembers[i + 1]));
    const leases: LeaseInfo[] = rawLeases.map(([p, owner, pttl, since]) => ({
      partition: Number(p),
      owner,
      ageMs: since === '' ? 0 : Math.max(0, now - Number(since)),
      expiresInMs: Math.max(0, Number(pttl)),
    }));
    const counts = new Map<string, number>();
    for (const l of leases) counts.set(l.owner, (counts.get(l.owner) ?? 0) + 1);
    const ids = new Set<string>(counts.keys());
    for (const [id, at] of heartbeats) if (now - at < this.#ttl) ids.add(id);
    const members: MemberInfo[] = [...ids].sort().map((id) => {
      const at = heartbeats.get(id);
      // No heartbeat entry but a lease: renewals and heartbeats are written together, so the lease's age tells.
      const renewedAgo = this.#ttl - Math.min(...leases.filter((l) => l.owner === id).map((l) => l.expiresInMs));
      return { id, partitions: counts.get(id) ?? 0, heartbeatAgeMs: at !== undefined ? Math.max(0, now - at) : Math.max(0, renewedAgo) };
    });
    return { mode: 'partitioned', self: this.#self, partitions: this.partitions, leaseTtlMs: this.#ttl, members, leases };
  }

  /**
   * The next round after roundMs, chained: never two at once. Sooner when another member's
   * heartbeat (and so its leases) lapses before that: the round right after its expiry takes its
   * partitions, so a dead member's partitions are owned again within the lease TTL of its last
   * renewal rather than TTL + a round.
   */
  #schedule(): void {
    if (this.#state !== 'started') return;
    const delay = Math.min(this.#roundMs, Math.max(0, this.#nextExpiryMs) + EXPIRY_MARGIN_MS);
    this.#nextExpiryMs = Infinity;
    this.#timer = this.#clock.setTimeout(() => {
      this.#round = this.#runRound(false)
        .then(() => {
          if (this.#failing !== undefined) this.#log.info({ owned: this.#owned.size }, 'partition leases renewed again');
          this.#failing = undefined;
        })
        .catch((err: unknown) => this.#roundFailed(err))
        .finally(() => {
          this.#round = undefined;
          this.#schedule();
        });
    }, delay);
  }

  #roundFailed(err: unknown): void {
    // Once per outage: the message changes as ioredis goes from a closed socket to reconnecting.
    const message = messageOf(err);
    if (this.#failing !== undefined) return;
    this.#failing = message;
    this.#log.warn({ err: { message }, owned: this.#owned.size }, 'partition lease round failed (redis unavailable?): partitions kept, retried every round');
  }

  /** One round: heartbeat and renewals, then take or give back toward the fair share, telling the handler. */
  async #runRound(first: boolean): Promise<void> {
    const view = await this.#heartbeat();
    // Redis restarted empty (or this member was silent long): let the others re-register before
    // taking free partitions, or the first to come back would take them all. The first round takes.
    const mayTake = first || view.registered;
    const plan = planBalance({ self: this.#self, partitions: this.partitions, members: view.live, owners: view.owners });
    const gained = mayTake && plan.take.length > 0 ? await this.#take(plan.take) : [];
    // Lost a race for some (two survivors taking a dead member's partitions pick overlapping
    // ones): look again at once rather than a round later, so a takeover is not a round late.
    if (gained.length < plan.take.length) {
      for (let attempt = 0; attempt < TAKE_RETRIES; attempt++) {
        const again = planBalance({ self: this.#self, partitions: this.partitions, members: view.live, owners: (await this.#heartbeat()).owners });
        if (again.take.length === 0) break;
        const more = await this.#take(again.take);
        gained.push(...more);
        if (more.length === again.take.length) break;
      }
    }
    gained.sort((a, b) => a - b);
    if (this.#state !== 'started') {
      // stop() came while taking: stop() releases what is owned now, gained ones included.
      for (const p of gained) this.#owned.add(p);
      return;
    }
    const release = plan.release.filter((p) => this.#owned.has(p));
    for (const p of gained) this.#owned.add(p);
    for (const p of release) {
      this.#owned.delete(p);
      this.#pendingLost.add(p);
    }
    const lost = [...this.#pendingLost].sort((a, b) => a - b);
    this.#pendingLost.clear();
    if (gained.length > 0 || lost.length > 0) {
      this.#log.info({ gained: gained.length, lost: lost.length, owned: this.#owned.size, members: view.live.length }, 'partitions moved');
      await this.#notify({ gained, lost });
    }
    // Only now, the instance having dropped their users: others can take them at their next round.
    if (release.length > 0) await runScript(this.#redis.client, RELEASE, [this.#redis.prefix, this.#self, '0', ...release]);
  }

  /** ROUND: heartbeat, renew the held leases, read the table; leases found taken by another are lost. */
  async #heartbeat(): Promise<RoundView> {
    const held = [...this.#owned];
    const raw = (await runScript(this.#redis.client, ROUND, [this.#redis.prefix, this.#self, this.#ttl, this.partitions, ...held])) as [number, number, string[], string[], number];
    const [now, registered, flatLive, rawOwners, orphanPttl] = raw;
    const owners = rawOwners.map((o) => (o === '' ? null : o));
    const live: string[] = [];
    let nextExpiryMs = orphanPttl >= 0 ? orphanPttl : Infinity;
    for (let i = 0; i + 1 < flatLive.length; i += 2) {
      const id = flatLive[i] as string;
      live.push(id);
      if (id !== this.#self) nextExpiryMs = Math.min(nextExpiryMs, Number(flatLive[i + 1]) + this.#ttl - now);
    }
    let taken = 0;
    for (const p of held) {
      if (owners[p] === this.#self || !this.#owned.has(p)) continue;
      this.#owned.delete(p);
      this.#pendingLost.add(p);
      taken++;
    }
    if (taken > 0) this.#log.warn({ lost: taken }, 'partition leases found taken by another member (after a redis restart or a long pause)');
    this.#nextExpiryMs = nextExpiryMs;
    return { registered: registered === 1, live, owners };
  }

  async #take(partitions: number[]): Promise<number[]> {
    const taken = (await runScript(this.#redis.client, TAKE, [this.#redis.prefix, this.#self, this.#ttl, ...partitions])) as string[];
    return taken.map(Number).sort((a, b) => a - b);
  }

  /**
   * Runs the handler. While it runs (loading the users of many partitions can outlast a lease),
   * the leases are kept alive every roundMs; anything a keep-alive finds lost is reported at the
   * next round.
   */
  async #notify(change: PartitionChange): Promise<void> {
    const handler = this.#handler;
    if (handler === undefined) return;
    let done = false;
    let keepAlive: unknown;
    let inFlight: Promise<void> | undefined;
    const arm = (): void => {
      keepAlive = this.#clock.setTimeout(() => {
        inFlight = this.#heartbeat().then(
          () => undefined,
          (err: unknown) => this.#roundFailed(err),
        );
        void inFlight.finally(() => {
          if (!done) arm();
        });
      }, this.#roundMs);
    };
    arm();
    try {
      await handler(change);
    } catch (err) {
      this.#log.error({ err, gained: change.gained.length, lost: change.lost.length }, 'partition change handler failed');
    } finally {
      done = true;
      this.#clock.clearTimeout(keepAlive);
      // A keep-alive still running finishes before the round goes on (it may find leases lost).
      await inFlight;
    }
  }

  /** Waits for the connection to be ready; REDIS_UNAVAILABLE at its first error or after CONNECT_WAIT_MS. */
  async #connected(what: string): Promise<void> {
    const client = this.#redis.client;
    if (client.status === 'ready') return;
    if (client.status === 'end') throw this.#unavailable(what, new Error(`connection ${client.status}`));
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error): void => {
        client.off('ready', onReady);
        client.off('error', onError);
        this.#clock.clearTimeout(timer);
        if (err === undefined) resolve();
        else reject(this.#unavailable(what, err));
      };
      const onReady = (): void => done();
      const onError = (err: Error): void => done(err);
      const timer = this.#clock.setTimeout(() => done(new Error(`no answer within ${CONNECT_WAIT_MS} ms`)), CONNECT_WAIT_MS);
      client.once('ready', onReady);
      client.once('error', onError);
    });
  }

  #unavailable(what: string, err: unknown): Error {
    if (err instanceof MailwheelError) return err;
    const { host, port } = this.#redis.client.options;
    return new Errors.REDIS_UNAVAILABLE(`${what}: redis at ${host ?? '?'}:${port ?? '?'} is unavailable (${messageOf(err)})`, { cause: err });
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
