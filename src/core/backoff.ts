/**
 * The one exponential backoff policy: SMTP retries, breaker probes, analytics write retries and
 * broadcast run retries all wait `baseMs * 2^(attempt-1)`, capped at `maxMs`. With `jitter:
 * 'full'` the wait is uniform in [0, that ceiling) ("full jitter", AWS architecture blog), so
 * many messages deferred together do not come back together.
 */
export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
  /** 'full': uniform in [0, ceiling); 'none': the ceiling itself. */
  jitter: 'full' | 'none';
}

/** Largest exponent used: 2^30 × any sane base is past every cap, and 2^n stays finite. */
const MAX_EXPONENT = 30;

/**
 * The wait before retry number `attempt` (1 = the first retry).
 * @param random source in [0, 1), injectable for tests
 */
export function backoffDelay(policy: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  const exponent = Math.min(MAX_EXPONENT, Math.max(0, attempt - 1));
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** exponent);
  return policy.jitter === 'full' ? Math.floor(random() * ceiling) : ceiling;
}
