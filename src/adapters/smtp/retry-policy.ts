/**
 * What happens after a failed attempt, in one place: an unreachable server (the circuit breaker
 * opens or is open) makes the message wait for the breaker without spending its budget; a
 * transient failure with budget left is retried after an exponential backoff with full jitter
 * (core/backoff.ts); anything else is final. It owns the breaker, whose state the queue reads
 * before handing out messages. The backoff timers and the probes run on the injected clock.
 */
import type { Logger } from 'pino';
import { backoffDelay } from '../../core/backoff.js';
import type { SmtpError } from '../../errors.js';
import type { Clock } from '../../ports/index.js';
import { CircuitBreaker, type BreakerState } from './circuit-breaker.js';
import { isSlowDown } from './classify.js';

export interface RetryPolicyOptions {
  /** Attempts per message, the first included. */
  maxAttempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** Consecutive connection failures that open the breaker. Default 5. */
  breakerThreshold?: number;
  /** Longest wait between probes while the breaker is open. Default 30 s. */
  breakerProbeMaxMs?: number;
}

/** How the breaker checks the server, and who resumes sending when it closes. */
export interface BreakerHooks {
  probe(): Promise<boolean>;
  onClosed(): void;
}

export type RetryDecision =
  /** The server is unreachable: this attempt does not count; wait for the breaker to close. */
  | { action: 'await-breaker' }
  /** Transient: try again after `delayMs`; `slowDown` when the answer was about the sender's pace. */
  | { action: 'retry'; delayMs: number; slowDown: boolean }
  /** Permanent, or out of attempts. */
  | { action: 'fail' };

export class RetryPolicy {
  readonly #opts: RetryPolicyOptions;
  readonly #clock: Clock;
  readonly #random: () => number;
  /** Open while the server cannot be reached: no message is handed out then. */
  readonly breaker: CircuitBreaker;

  constructor(opts: RetryPolicyOptions, hooks: BreakerHooks, clock: Clock, log: Logger, random: () => number = Math.random) {
    this.#opts = opts;
    this.#clock = clock;
    this.#random = random;
    const settings = { threshold: opts.breakerThreshold ?? 5, probeMaxMs: opts.breakerProbeMaxMs ?? 30_000 };
    const onChange = (state: BreakerState): void => {
      if (state === 'open') log.error({ opens: this.breaker.opens }, 'SMTP server unreachable: circuit breaker open, sending paused');
      else {
        log.info({ probes: this.breaker.probes }, 'SMTP server answers again: circuit breaker closed, sending resumed');
        hooks.onClosed();
      }
    };
    this.breaker = new CircuitBreaker(settings, hooks.probe, onChange, clock);
  }

  /** Decides after attempt number `attempts` failed with `error` (counts a connection failure on the breaker). */
  decide(error: SmtpError, attempts: number): RetryDecision {
    if (error.connection && this.breaker.failure()) return { action: 'await-breaker' };
    if (error.retryable && attempts < this.#opts.maxAttempts) {
      const slowDown = isSlowDown(error);
      const delayMs = backoffDelay({ baseMs: this.#opts.backoffBaseMs, maxMs: this.#opts.backoffMaxMs, jitter: 'full' }, attempts, this.#random);
      return { action: 'retry', delayMs, slowDown };
    }
    return { action: 'fail' };
  }

  /** Runs `fn` after `delayMs` on the clock; the handle goes to `cancel`. */
  after(delayMs: number, fn: () => void): unknown {
    return this.#clock.setTimeout(fn, delayMs);
  }

  cancel(handle: unknown): void {
    this.#clock.clearTimeout(handle);
  }
}
