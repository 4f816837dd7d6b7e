/**
 * A circuit breaker for an SMTP server that cannot be reached. After `threshold` consecutive
 * connection failures it opens: the send queue stops handing out messages (they keep their retry
 * budget), and the server is probed with backoff (1 s, 2 s, 4 s ... up to `probeMaxMs`) instead of
 * every queued message burning an attempt against a dead socket. A successful probe closes it.
 */

export type BreakerState = 'closed' | 'open';

export interface BreakerOptions {
  threshold: number;
  probeMaxMs: number;
  probeBaseMs?: number;
}

export class CircuitBreaker {
  readonly #opts: Required<BreakerOptions>;
  readonly #probe: () => Promise<boolean>;
  readonly #onChange: (state: BreakerState) => void;
  #state: BreakerState = 'closed';
  #consecutive = 0;
  #timer: NodeJS.Timeout | undefined;
  #closedForGood = false;
  opens = 0;
  probes = 0;

  constructor(opts: BreakerOptions, probe: () => Promise<boolean>, onChange: (state: BreakerState) => void) {
    this.#opts = { probeBaseMs: 1000, ...opts };
    this.#probe = probe;
    this.#onChange = onChange;
  }

  get state(): BreakerState {
    return this.#state;
  }

  success(): void {
    this.#consecutive = 0;
  }

  /** Counts a connection failure; true when the breaker is (now) open. */
  failure(): boolean {
    this.#consecutive++;
    if (this.#state === 'open') return true;
    if (this.#consecutive < this.#opts.threshold || this.#closedForGood) return false;
    this.#state = 'open';
    this.opens++;
    this.#onChange('open');
    this.#schedule(0);
    return true;
  }

  /** Stops probing for good (shutdown). */
  close(): void {
    this.#closedForGood = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(attempt: number): void {
    if (this.#closedForGood) return;
    const delay = Math.min(this.#opts.probeMaxMs, this.#opts.probeBaseMs * 2 ** attempt);
    this.#timer = setTimeout(() => void this.#runProbe(attempt), delay);
    this.#timer.unref();
  }

  async #runProbe(attempt: number): Promise<void> {
    this.probes++;
    let ok = false;
    try {
      ok = await this.#probe();
    } catch {
      ok = false;
    }
    if (this.#closedForGood) return;
    if (!ok) return this.#schedule(attempt + 1);
    this.#state = 'closed';
    this.#consecutive = 0;
    this.#onChange('closed');
  }
}
