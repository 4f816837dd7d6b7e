/**
 * One place that decides what an SMTP failure means. Transient failures (4xx, connection
 * trouble, timeouts) are retried with backoff; permanent ones (5xx) never are, because resending
 * what a server refused for good only hurts the sender's reputation.
 */
import { backoffDelay as policyDelay } from '../../core/backoff.js';
import { SmtpError } from '../../errors.js';

/** Transport error codes (nodemailer's and Node's) that mean "could not talk to the server". */
const CONNECTION_CODES = new Set([
  'ECONNECTION',
  'ETIMEDOUT',
  'ESOCKET',
  'EDNS',
  'ETLS',
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);

/** Codes that are the sender's own configuration problem: retrying alone will not fix them,
 * but the message is not at fault either, so they are treated like an unreachable server. */
const SENDER_CODES = new Set(['EAUTH', 'ENOAUTH', 'EOAUTH2']);

interface TransportErrorShape {
  message?: unknown;
  code?: unknown;
  responseCode?: unknown;
  response?: unknown;
}

export function classifySmtpError(err: unknown): SmtpError {
  if (err instanceof SmtpError) return err;
  const e = (typeof err === 'object' && err !== null ? err : {}) as TransportErrorShape;
  const message = typeof e.response === 'string' && e.response ? e.response : String(e.message ?? err);
  const smtpCode = typeof e.responseCode === 'number' ? e.responseCode : undefined;
  const code = typeof e.code === 'string' ? e.code : undefined;

  if (smtpCode !== undefined && smtpCode >= 500 && smtpCode < 600) {
    return new SmtpError(message, { retryable: false, smtpCode, cause: err });
  }
  if (smtpCode !== undefined && smtpCode >= 400 && smtpCode < 500) {
    return new SmtpError(message, { retryable: true, smtpCode, cause: err });
  }
  if (code !== undefined && (CONNECTION_CODES.has(code) || SENDER_CODES.has(code))) {
    return new SmtpError(message, { retryable: true, smtpCode, connection: true, cause: err });
  }
  // A malformed envelope or message is the message's fault: no retry.
  if (code === 'EENVELOPE' || code === 'EMESSAGE' || code === 'EMAXRECIPIENTS') {
    return new SmtpError(message, { retryable: false, smtpCode, cause: err });
  }
  // Unknown: retry, bounded by maxAttempts, rather than lose a message to an unclassified hiccup.
  return new SmtpError(message, { retryable: true, smtpCode, cause: err });
}

/**
 * The wait before SMTP retry number `attempt`: exponential with full jitter, uniform in
 * [0, min(max, base*2^(attempt-1))) (core/backoff.ts, the one backoff policy).
 */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  return policyDelay({ baseMs, maxMs, jitter: 'full' }, attempt, random);
}

/**
 * A 421 ("service not available, closing channel", used by providers for throttling), a 4xx with
 * an enhanced status 4.7.x (policy deferral, e.g. Gmail's "450 4.7.28 ... rate limited") or any
 * answer that says "too many" / "rate" is about the sender's pace, not the message.
 */
export function isSlowDown(err: SmtpError): boolean {
  if (err.smtpCode === 421) return true;
  if (err.smtpCode !== undefined && err.smtpCode >= 400 && err.smtpCode < 500 && /\b4\.7\.\d{1,3}\b/.test(err.message)) return true;
  return /too many|rate limit|throttl/i.test(err.message);
}

/**
 * A permanent failure that is about the recipient's address (no such user, mailbox unavailable,
 * bad address syntax) rather than the message or the sender: these count towards suppression.
 * 552 (mailbox full) and 554 (transaction failed, often policy) do not.
 */
export function isHardBounce(err: SmtpError): boolean {
  if (err.retryable) return false;
  if (err.smtpCode === 550 || err.smtpCode === 551 || err.smtpCode === 553) return true;
  return /\b5\.1\.[0-9]\b/.test(err.message);
}
