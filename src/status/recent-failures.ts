/**
 * The last failed sends and retries, kept in memory for the status page: what the SMTP server
 * answered, when, and to which domain. Bounded (a ring of `limit` entries), so a relay that
 * refuses everything costs a fixed amount of memory.
 *
 * SMTP replies are not secrets, but recipient addresses are personal data: an entry keeps only
 * the recipient's domain, and any address quoted inside the reply (`550 5.1.1 <bob@example.com>:
 * user unknown`) is masked the same way before it is stored.
 */
import type { Delivery, DeliveryKind } from '../core/types.js';
import type { Clock } from '../ports/clock.js';
import type { OutcomeHooks } from '../ports/index.js';

export interface FailureEntry {
  /** When the failure was seen (ms since the epoch). */
  atMs: number;
  /** `failed`: given up (permanent, or out of attempts); `retry`: transient, tried again later. */
  outcome: 'failed' | 'retry';
  kind: DeliveryKind;
  broadcastId?: string | undefined;
  /** The recipient's domain only. */
  domain: string;
  /** The SMTP reply code when the server answered (undefined: connection-level failure). */
  smtpCode: number | undefined;
  /** The reply (or the connection error), with any address in it masked. */
  reply: string;
  attempts: number;
}

/** Default number of entries kept. */
export const RECENT_FAILURES = 50;
/** Longest reply kept: a reply can be long (some servers add a paragraph of help). */
const MAX_REPLY = 300;

const ADDRESS = /[^\s<>"'(),;:[\]]+@([A-Za-z0-9.-]+)/g;

/** `bob@example.com` → `…@example.com`; text without an address is unchanged. */
export function maskAddresses(text: string): string {
  return text.replace(ADDRESS, (_m, domain: string) => `…@${domain}`);
}

/** The part after the last `@` (lower case), or `?` when there is none. */
export function domainOf(email: string): string {
  const at = email.lastIndexOf('@');
  return at < 0 ? '?' : email.slice(at + 1).toLowerCase();
}

export class RecentFailures {
  readonly #limit: number;
  readonly #ring: FailureEntry[] = [];
  #next = 0;
  /** Failures seen since start, including those the ring no longer holds. */
  seen = 0;

  constructor(limit = RECENT_FAILURES) {
    this.#limit = Math.max(1, limit);
  }

  note(atMs: number, outcome: FailureEntry['outcome'], delivery: Pick<Delivery, 'kind' | 'email' | 'broadcastId'>, error: { message: string; smtpCode?: number | undefined } | undefined, attempts: number): void {
    const reply = maskAddresses(error?.message ?? 'no reply').slice(0, MAX_REPLY);
    const entry: FailureEntry = { atMs, outcome, kind: delivery.kind, broadcastId: delivery.broadcastId, domain: domainOf(delivery.email), smtpCode: error?.smtpCode, reply, attempts };
    this.seen++;
    if (this.#ring.length < this.#limit) this.#ring.push(entry);
    else this.#ring[this.#next] = entry;
    this.#next = (this.#next + 1) % this.#limit;
  }

  /** The entries held, newest first. */
  list(): FailureEntry[] {
    const n = this.#ring.length;
    const out: FailureEntry[] = [];
    for (let i = 1; i <= n; i++) out.push(this.#ring[(this.#next - i + n * 2) % n] as FailureEntry);
    return out;
  }
}

/** The send hooks with every failure and retry also noted in `failures` (then passed on unchanged). */
export function tapFailures(inner: OutcomeHooks, failures: RecentFailures, clock: Clock): OutcomeHooks {
  return {
    onOutcome: (o) => {
      if (o.status === 'failed') failures.note(clock.now(), 'failed', o.delivery, o.error, o.attempts);
      return inner.onOutcome(o);
    },
    onRetry: (d, attempt, delayMs, error) => {
      failures.note(clock.now(), 'retry', d, error, attempt);
      return inner.onRetry?.(d, attempt, delayMs, error);
    },
  };
}
