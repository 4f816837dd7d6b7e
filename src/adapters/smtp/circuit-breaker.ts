/**
 * A circuit breaker for an SMTP server that cannot be reached. After `threshold` consecutive
 * connection failures it opens: the send queue stops handing out messages (they keep their retry
 * budget), and the server is probed with backoff (1 s, 2 s, 4 s ... up to `probeMaxMs`) instead of
 * every queued message burning an attempt against a dead socket. A successful probe closes it.
 * The probe timers run on the injected clock; the delays come from core/backoff.ts (no jitter:
 * one prober, nothing to spread).
 */
import { backoffDelay } from '../../core/backoff.js';
import { systemClock, type BreakerState, type Clock } from '../../ports/index.js';

export type { BreakerState };

export interface BreakerOptions {
  threshold: number;
  probeMaxMs: number;
  probeBaseMs?: number;
  /** False: never probes on its own; only `answered()` closes it (a lone relay, relay-health.ts). Default true. */
  probes?: boolean;
}

export class CircuitBreaker {
  readonly #opts: Required<BreakerOptions>;
  readonly #probe: () => Promise<boolean>;
  readonly #onChange: (state: BreakerState) => void;
  #state: BreakerState = 'closed';
  #consecutive = 0;
  readonly #clock: Clock;
  #timer: unknown;
  #closedForGood = false;
  /** Bumped at each opening: a probe of an earlier opening that answers late is ignored. */
  #outage = 0;
  opens = 0;
  probes = 0;

  constructor(opts: BreakerOptions, probe: () => Promise<boolean>, onChange: (state: BreakerState) => void, clock: Clock = systemClock) {
    this.#opts = { probeBaseMs: 1000, probes: true, ...opts };
    this.#clock = clock;
    this.#probe = probe;
    this.#onChange = onChange;
  }

  get state(): BreakerState {
    return this.#state;
  }

  success(): void {
    this.#consecutive = 0;
  }

  /** Proof from outside that the server answers (a reply to a send, whatever its code; a handshake): closed at once. */
  answered(): void {
    this.#consecutive = 0;
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#onChange('closed');
  }

  /** Counts a connection failure; true when the breaker is (now) open. */
  failure(): boolean {
    this.#consecutive++;
    if (this.#state === 'open') return true;
    if (this.#consecutive < this.#opts.threshold || this.#closedForGood) return false;
    this.#state = 'open';
    this.#outage++;
    this.opens++;
    this.#onChange('open');
    if (this.#opts.probes) this.#schedule(0);
    return true;
  }

  /** Stops probing for good (shutdown). */
  close(): void {
    this.#closedForGood = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(attempt: number): void {
    if (this.#closedForGood) return;
    // Probe number `attempt` (0 = the first) waits probeBaseMs * 2^attempt: backoff attempt + 1.
    const delay = backoffDelay({ baseMs: this.#opts.probeBaseMs, maxMs: this.#opts.probeMaxMs, jitter: 'none' }, attempt + 1);
    // systemClock's timers are unref'd: a pending probe never keeps a stopping process alive.
    const outage = this.#outage;
    this.#timer = this.#clock.setTimeout(() => void this.#runProbe(attempt, outage), delay);
  }

  async #runProbe(attempt: number, outage: number): Promise<void> {
    this.#timer = undefined;
    this.probes++;
    let ok = false;
    try {
      ok = await this.#probe();
    } catch {
      ok = false;
    }
    // Stopped, or closed by answered() meanwhile (and maybe open again: that opening probes itself).
    if (this.#closedForGood || this.#state === 'closed' || outage !== this.#outage) return;
    if (!ok) return this.#schedule(attempt + 1);
    this.answered();
  }
}
