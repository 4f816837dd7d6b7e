/**
 * The health of one relay: `threshold` consecutive connection-level failures (connect refused or
 * timed out, socket dropped; never a 4xx/5xx reply, which proves the relay answers) mark it down.
 * While down it gets no traffic and is probed with backoff (1 s, 2 s, 4 s ... up to `probeMaxMs`,
 * core/backoff.ts, no jitter: one prober per relay) on the injected clock; the first probe that
 * answers, or any other proof that it answers (a reply to a send, a readiness handshake), marks it
 * up again and it gets its weight back. Like the send queue's CircuitBreaker, but it can be told
 * "it answers" from outside, and a lone relay is not probed here (the queue's breaker does that).
 */
import { backoffDelay } from '../../core/backoff.js';
import type { Clock } from '../../ports/index.js';

export interface RelayHealthOptions {
  threshold: number;
  probeMaxMs: number;
  probeBaseMs?: number;
  /** False: never probes on its own (marked up only by `answered()`). Default true. */
  probes?: boolean;
}

export class RelayHealth {
  readonly #opts: Required<RelayHealthOptions>;
  readonly #probe: () => Promise<boolean>;
  readonly #onChange: (up: boolean) => void;
  readonly #clock: Clock;
  #up = true;
  #consecutive = 0;
  #timer: unknown;
  #closed = false;
  /** Bumped each time it goes down: a probe from an earlier outage that answers late is ignored. */
  #outage = 0;
  /** Times it was marked down; probes made. */
  downs = 0;
  probes = 0;

  constructor(opts: RelayHealthOptions, probe: () => Promise<boolean>, onChange: (up: boolean) => void, clock: Clock) {
    this.#opts = { probeBaseMs: 1000, probes: true, ...opts };
    this.#probe = probe;
    this.#onChange = onChange;
    this.#clock = clock;
  }

  get up(): boolean {
    return this.#up;
  }

  /** The relay answered (a reply to a send, whatever its code, or a handshake): up at once. */
  answered(): void {
    this.#consecutive = 0;
    if (this.#up) return;
    this.#up = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#onChange(true);
  }

  /** Counts a connection-level failure; true when the relay is (now) down. */
  failure(): boolean {
    this.#consecutive++;
    if (!this.#up) return true;
    if (this.#consecutive < this.#opts.threshold || this.#closed) return false;
    this.#up = false;
    this.#outage++;
    this.downs++;
    this.#onChange(false);
    if (this.#opts.probes) this.#schedule(0);
    return true;
  }

  /** Stops probing for good (shutdown). */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(attempt: number): void {
    if (this.#closed) return;
    const delay = backoffDelay({ baseMs: this.#opts.probeBaseMs, maxMs: this.#opts.probeMaxMs, jitter: 'none' }, attempt + 1);
    const outage = this.#outage;
    this.#timer = this.#clock.setTimeout(() => void this.#runProbe(attempt, outage), delay);
  }

  async #runProbe(attempt: number, outage: number): Promise<void> {
    this.#timer = undefined;
    this.probes++;
    const ok = await this.#probe().catch(() => false);
    // Closed, or marked up by someone else meanwhile (and maybe down again: that outage probes itself).
    if (this.#closed || this.#up || outage !== this.#outage) return;
    if (ok) this.answered();
    else this.#schedule(attempt + 1);
  }
}
