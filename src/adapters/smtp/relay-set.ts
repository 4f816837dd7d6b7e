/**
 * Several SMTP relays behind one transport (`smtp.relays`; none: `smtp.url` is the one relay).
 * Each relay has its own pool (smtp-pool.ts) and health (relay-health.ts); each send goes to a
 * relay picked by smooth weighted round robin among the healthy ones, so their shares follow
 * their weights and a relay marked down gets nothing until it answers again.
 *
 * What a failure does:
 * - a reply from the server (4xx/5xx) goes back to the send queue as before (its retry, slowdown
 *   and hard-bounce handling); it also proves the relay answers;
 * - a connection-level failure before the message was handed over (no connection could be had,
 *   or DATA never got its 354: smtp-pool.ts `neverHandedOver`) is tried at once on another
 *   healthy relay within the same send. That cannot duplicate: the first relay never received
 *   the message, so it cannot deliver it;
 * - a connection dropped after the message was handed over (no 250 came, but the relay may have
 *   it) is not sent elsewhere at once: while another relay is healthy it goes back to the queue
 *   as a retryable failure that is not "unreachable", so the queue retries it after its backoff
 *   (the delivery contract's "outcome unknown" window) without pausing everything for one relay;
 * - with every relay down the connection error goes back as it is, so the send queue's own
 *   breaker opens and probes through `verify()` (true as soon as any relay answers).
 *
 * The global budget is upstream: the queue's rate windows and arrival gate count every send
 * whatever relay takes it, and a failover happens inside one admitted send, so the relays
 * together never receive more than `rate` allows. The queue runs as many sends at once as the
 * relays have connections (`relayCapacity`); a relay's pool never opens more than its size, and
 * the senders a dead relay would have had wait for connections of the others.
 */
import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import { scrubUri } from '../../config/urls.js';
import { SmtpError } from '../../errors.js';
import { systemClock, type Clock } from '../../ports/index.js';
import { classifySmtpError } from './classify.js';
import { RelayHealth } from './relay-health.js';
import { neverHandedOver, SmtpPool, type RawEnvelope, type SmtpPoolOptions } from './smtp-pool.js';

/** One relay as configured, its pool size resolved. */
export interface RelaySpec {
  url: string;
  weight: number;
  poolSize: number;
  /** The setting it comes from (`smtp.url`, `smtp.relays[1].url`), for error messages. */
  setting: string;
}

/** `smtp.relays`, or `smtp.url` as the one relay when none is configured. */
export function relaysOf(smtp: Config['smtp']): RelaySpec[] {
  if (smtp.relays.length === 0) return [{ url: smtp.url, weight: 1, poolSize: smtp.poolSize, setting: 'smtp.url' }];
  return smtp.relays.map((r, i) => ({ url: r.url, weight: r.weight, poolSize: r.poolSize ?? smtp.poolSize, setting: `smtp.relays[${i}].url` }));
}

/** Connections of every relay together: the send queue's concurrency. */
export function relayCapacity(smtp: Config['smtp']): number {
  return relaysOf(smtp).reduce((n, r) => n + r.poolSize, 0);
}

/**
 * Smooth weighted round robin (nginx's): each pick adds every eligible entry's weight to its
 * counter and takes the highest, which then gives back the eligible total. Weights 5:1:1 give
 * a a b a c a a, not a a a a a b c; an entry that is not eligible keeps its counter.
 */
export class SmoothWeighted {
  readonly #weights: readonly number[];
  readonly #current: number[];

  constructor(weights: readonly number[]) {
    this.#weights = weights;
    this.#current = weights.map(() => 0);
  }

  /** The index picked among those `eligible` says yes to; undefined when none is. */
  pick(eligible: (i: number) => boolean): number | undefined {
    let total = 0;
    let best: number | undefined;
    for (let i = 0; i < this.#weights.length; i++) {
      if (!eligible(i)) continue;
      const w = this.#weights[i] as number;
      this.#current[i] = (this.#current[i] as number) + w;
      total += w;
      if (best === undefined || (this.#current[i] as number) > (this.#current[best] as number)) best = i;
    }
    if (best !== undefined) this.#current[best] = (this.#current[best] as number) - total;
    return best;
  }

  /** Starts entry `i` afresh (a relay back from an outage must not make up for lost turns). */
  reset(i: number): void {
    this.#current[i] = 0;
  }
}

/** A relay in `/stats` and `/metrics` (named by host:port, never by its URL). */
export interface RelayStatus {
  relay: string;
  up: boolean;
  weight: number;
  poolSize: number;
  /** Open connections now. */
  connections: number;
  /** Messages it accepted. */
  sent: number;
  /** Connection-level failures (connect, timeout, dropped socket). */
  failures: number;
  /** Times it was marked down. */
  downs: number;
}

/**
 * The relays as every pool of this process sees them (the destination groups each have their own
 * pools to the same relays): counts summed per relay, `up` only while every pool finds it up.
 */
export function mergeRelayStatus(lists: ReadonlyArray<readonly RelayStatus[]>): RelayStatus[] {
  const byRelay = new Map<string, RelayStatus>();
  for (const list of lists) {
    for (const r of list) {
      const seen = byRelay.get(r.relay);
      if (seen === undefined) byRelay.set(r.relay, { ...r });
      else
        byRelay.set(r.relay, {
          ...seen,
          up: seen.up && r.up,
          poolSize: seen.poolSize + r.poolSize,
          connections: seen.connections + r.connections,
          sent: seen.sent + r.sent,
          failures: seen.failures + r.failures,
          downs: seen.downs + r.downs,
        });
    }
  }
  return [...byRelay.values()];
}

/** One relay's handshake (`config check --connect`, `/readyz`). */
export interface RelayAnswer {
  relay: string;
  setting: string;
  ok: boolean;
  /** Why not, credentials scrubbed. */
  error?: string;
  code?: string;
}

export interface RelaySetOptions {
  /** Pool settings every relay shares (`url`, `size` and `setting` come from each relay). */
  pool: Omit<SmtpPoolOptions, 'url' | 'size' | 'setting'>;
  /** Consecutive connection-level failures that mark a relay down (`send.breakerThreshold`). */
  threshold: number;
  /** Longest wait between probes of a relay that is down (`send.breakerProbeMaxMs`). */
  probeMaxMs: number;
  clock?: Clock;
  log?: Logger;
}

interface Relay {
  readonly spec: RelaySpec;
  readonly name: string;
  readonly pool: SmtpPool;
  readonly health: RelayHealth;
  sent: number;
  failures: number;
}

export class RelaySet {
  readonly #relays: Relay[];
  readonly #wrr: SmoothWeighted;

  constructor(specs: readonly RelaySpec[], opts: RelaySetOptions) {
    const clock = opts.clock ?? systemClock;
    const seen = new Map<string, number>();
    this.#wrr = new SmoothWeighted(specs.map((s) => s.weight));
    this.#relays = specs.map((spec, i) => {
      const pool = new SmtpPool({ ...opts.pool, url: spec.url, size: spec.poolSize, setting: spec.setting });
      // Two accounts on one host:port stay apart in the labels.
      const n = (seen.get(pool.address) ?? 0) + 1;
      seen.set(pool.address, n);
      const name = n === 1 ? pool.address : `${pool.address}#${n}`;
      const onChange = (up: boolean): void => {
        if (up) {
          this.#wrr.reset(i);
          opts.log?.info({ relay: name }, 'SMTP relay answers again: it gets its share back');
        } else opts.log?.warn({ relay: name, failures: opts.threshold }, 'SMTP relay unreachable: marked down, its share goes to the others');
      };
      // A lone relay is probed by the send queue's breaker (verify()); probing it here too would double the probes.
      const health = new RelayHealth({ threshold: opts.threshold, probeMaxMs: opts.probeMaxMs, probes: specs.length > 1 }, () => pool.verify(), onChange, clock);
      return { spec, name, pool, health, sent: 0, failures: 0 };
    });
  }

  /** Connections of all relays together. */
  get capacity(): number {
    return this.#relays.reduce((n, r) => n + r.spec.poolSize, 0);
  }

  /** Sends one raw message through a healthy relay (see the file comment for failures). */
  async send(envelope: RawEnvelope, raw: string | Buffer): Promise<{ response: string; relay: string }> {
    const tried = new Set<Relay>();
    // Never undefined: with nothing tried yet some relay is always picked.
    for (let relay = this.#pick(tried); relay !== undefined; ) {
      tried.add(relay);
      try {
        const info = await relay.pool.send(envelope, raw);
        relay.sent++;
        relay.health.answered();
        return { response: info.response, relay: relay.name };
      } catch (err) {
        if (!classifySmtpError(err).connection) {
          relay.health.answered(); // a reply: the relay is there, the message is the queue's business
          throw err;
        }
        relay.failures++;
        relay.health.failure();
        const next = this.#pick(tried);
        if (neverHandedOver(err)) {
          if (next === undefined) throw err;
          relay = next;
          continue;
        }
        if (this.#relays.some((r) => r !== relay && r.health.up)) {
          const why = err instanceof Error ? err.message : String(err);
          throw new SmtpError(`relay ${relay.name} dropped the connection after the message was handed over (outcome unknown; retried later): ${why}`, { retryable: true, cause: err });
        }
        throw err;
      }
    }
    throw new Error('no SMTP relay configured');
  }

  /** Probes every relay (connect, greet, log in); true when any answers. Answering relays are up again. */
  async verify(): Promise<boolean> {
    const answers = await this.check();
    return answers.some((a) => a.ok);
  }

  /** Each relay's handshake, in config order; an answering relay is marked up. */
  check(): Promise<RelayAnswer[]> {
    return Promise.all(
      this.#relays.map((r) =>
        r.pool.check().then(
          (): RelayAnswer => {
            r.health.answered();
            return { relay: r.name, setting: r.spec.setting, ok: true };
          },
          (err: unknown): RelayAnswer => {
            const e = err as { message?: unknown; code?: unknown };
            const first = String(e.message ?? err).split('\n')[0] ?? '';
            return { relay: r.name, setting: r.spec.setting, ok: false, error: scrubUri(r.spec.url, first), ...(typeof e.code === 'string' ? { code: e.code } : {}) };
          },
        ),
      ),
    );
  }

  status(): RelayStatus[] {
    return this.#relays.map((r) => ({
      relay: r.name,
      up: r.health.up,
      weight: r.spec.weight,
      poolSize: r.spec.poolSize,
      connections: r.pool.size,
      sent: r.sent,
      failures: r.failures,
      downs: r.health.downs,
    }));
  }

  /** Closes every pool and stops the probes. */
  close(): void {
    for (const r of this.#relays) {
      r.health.close();
      r.pool.close();
    }
  }

  /** A healthy relay not tried yet; with none healthy and nothing tried, any relay (as with one relay: the queue's breaker decides). */
  #pick(tried: ReadonlySet<Relay>): Relay | undefined {
    const rs = this.#relays;
    let i = this.#wrr.pick((j) => rs[j]?.health.up === true && !tried.has(rs[j] as Relay));
    if (i === undefined && tried.size === 0) i = this.#wrr.pick(() => true);
    return i === undefined ? undefined : rs[i];
  }
}
