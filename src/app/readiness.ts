/**
 * `/readyz`: ready once the first user sync is done, MongoDB answers a ping and the SMTP server
 * answers, and, with `cluster.redisUrl` set, Redis answers a ping (while it does not, sending is
 * paused: the shared rate budget grants nothing; the body says `redis: false`). The SMTP answer is a handshake, shared by concurrent probes and cached (config
 * `http.smtpCheckCacheMs` after a success, `http.smtpCheckFailedCacheMs` after a failure, so a
 * recovery shows soon) so a probe every few seconds does not open a connection to the provider
 * each time. With several relays (`smtp.relays`) each one gets the handshake: SMTP is ready while
 * at least one answers, and the body lists each relay by host:port with its answer (`relays`).
 * Split out of the composition root, which only wires it.
 */
import type { ReadyReport } from '../http/server.js';
import { systemClock, type BreakerState, type Clock } from '../ports/index.js';

export interface ReadinessDeps {
  /** Has the first full user sync finished? */
  synced(): boolean;
  /** Resolves when MongoDB answers a ping. */
  pingMongo(): Promise<unknown>;
  /**
   * An SMTP handshake: resolves false (or rejects) when the server does not answer; or one answer
   * per relay (ready while any answers).
   */
  verifySmtp(): Promise<boolean | readonly RelayReply[]>;
  /** The send queue's circuit breaker state: `open` means unreachable without a handshake. */
  breaker(): BreakerState;
  /** Resolves when Redis answers a ping; absent when no Redis is configured (no `redis` check). */
  pingRedis?: () => Promise<unknown>;
  clock?: Clock;
}

/** One relay's handshake, named by host:port (never its URL). */
export interface RelayReply {
  relay: string;
  ok: boolean;
}

export interface ReadinessOptions {
  /** How long a successful handshake's answer is reused, ms. */
  smtpCheckCacheMs: number;
  /** How long a failed handshake's answer is reused, ms. */
  smtpCheckFailedCacheMs: number;
}

/** One SMTP handshake; `result` is set once it answered, `at` when it did. */
interface SmtpCheck {
  at: number;
  ok: Promise<boolean>;
  result: boolean | undefined;
  /** Each relay's answer, with more than one relay. */
  relays: Record<string, boolean> | undefined;
}

export class Readiness {
  readonly #deps: ReadinessDeps;
  readonly #opts: ReadinessOptions;
  readonly #clock: Clock;
  #smtpCheck: SmtpCheck | undefined;

  constructor(deps: ReadinessDeps, opts: ReadinessOptions) {
    this.#deps = deps;
    this.#opts = opts;
    this.#clock = deps.clock ?? systemClock;
  }

  async check(): Promise<ReadyReport> {
    const mongodb = this.#deps.pingMongo().then(
      () => true,
      () => false,
    );
    const ping = this.#deps.pingRedis;
    const redis = ping
      ? ping().then(
          () => true,
          () => false,
        )
      : undefined;
    const [mongoOk, smtpOk, redisOk] = await Promise.all([mongodb, this.smtpReachable(), redis]);
    const synced = this.#deps.synced();
    const breaker = this.#deps.breaker();
    // With the breaker open no handshake was made: the last one's relay answers would be stale.
    const relays = breaker === 'open' ? undefined : this.#smtpCheck?.relays;
    const report = { ok: synced && mongoOk && smtpOk && redisOk !== false, synced, mongodb: mongoOk, smtp: smtpOk, breaker, ...(relays === undefined ? {} : { relays }) };
    return redisOk === undefined ? report : { ...report, redis: redisOk };
  }

  /**
   * An open breaker means unreachable; otherwise the handshake's value is the answer (not the
   * fact that it resolved), reused while its cache time lasts.
   */
  smtpReachable(): Promise<boolean> {
    if (this.#deps.breaker() === 'open') return Promise.resolve(false);
    const now = this.#clock.now();
    const check = this.#smtpCheck;
    if (check === undefined || (check.result !== undefined && now - check.at > (check.result ? this.#opts.smtpCheckCacheMs : this.#opts.smtpCheckFailedCacheMs))) {
      const next: SmtpCheck = { at: now, result: undefined, ok: Promise.resolve(false), relays: this.#smtpCheck?.relays };
      next.ok = this.#deps.verifySmtp().then(
        (answer) => {
          if (typeof answer === 'boolean') return answer;
          if (answer.length > 1) next.relays = Object.fromEntries(answer.map((r) => [r.relay, r.ok]));
          return answer.some((r) => r.ok);
        },
        () => false,
      );
      void next.ok.then((ok) => {
        next.result = ok;
        next.at = this.#clock.now();
      });
      this.#smtpCheck = next;
    }
    return (this.#smtpCheck as SmtpCheck).ok;
  }
}
