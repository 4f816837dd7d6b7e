/**
 * The health of one relay: `threshold` consecutive connection-level failures (connect refused or
 * timed out, socket dropped; never a 4xx/5xx reply, which proves the relay answers) mark it down.
 * While down it gets no traffic and is probed with backoff (1 s, 2 s, 4 s ... up to `probeMaxMs`)
 * on the injected clock; the first probe that answers, or any other proof that it answers (a reply
 * to a send, a readiness handshake), marks it up again and it gets its weight back. It is the send
 * queue's CircuitBreaker seen as up/down; a lone relay is not probed here (`probes: false`: the
 * queue's own breaker does that).
 */
import type { Clock } from '../../ports/index.js';
import { CircuitBreaker, type BreakerOptions } from './circuit-breaker.js';

export type RelayHealthOptions = BreakerOptions;

export class RelayHealth {
  readonly #breaker: CircuitBreaker;

  constructor(opts: RelayHealthOptions, probe: () => Promise<boolean>, onChange: (up: boolean) => void, clock: Clock) {
    this.#breaker = new CircuitBreaker(opts, probe, (state) => onChange(state === 'closed'), clock);
  }

  get up(): boolean {
    return this.#breaker.state === 'closed';
  }
  /** Times it was marked down. */
  get downs(): number {
    return this.#breaker.opens;
  }
  /** Probes made. */
  get probes(): number {
    return this.#breaker.probes;
  }

  /** The relay answered (a reply to a send, whatever its code, or a handshake): up at once. */
  answered(): void {
    this.#breaker.answered();
  }

  /** Counts a connection-level failure; true when the relay is (now) down. */
  failure(): boolean {
    return this.#breaker.failure();
  }

  /** Stops probing for good (shutdown). */
  close(): void {
    this.#breaker.close();
  }
}
