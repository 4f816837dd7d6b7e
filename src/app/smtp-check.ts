/**
 * One SMTP greeting (connect, STARTTLS, AUTH) with the configured server, for `config check
 * --connect`: the pool the daemon would use, sized one, so what passes here works there.
 */
import { readCa } from '../adapters/smtp/nodemailer-transport.js';
import { SmtpPool } from '../adapters/smtp/smtp-pool.js';
import type { Config } from '../config/schema.js';

export interface SmtpGreeter {
  /** Resolves once the server greeted (and accepted the credentials); rejects with its error. */
  check(): Promise<void>;
  close(): void;
}

/** Throws at once when `smtp.ca` cannot be read. */
export function smtpGreeter(s: Config['smtp'], timeoutMs: number): SmtpGreeter {
  const pool = new SmtpPool({
    url: s.url,
    size: 1,
    maxMessages: 1,
    connectionTimeoutMs: Math.min(timeoutMs, s.connectionTimeoutMs),
    socketTimeoutMs: Math.min(timeoutMs, s.socketTimeoutMs),
    tls: { rejectUnauthorized: s.rejectUnauthorized, ca: s.ca === null ? undefined : readCa(s.ca) },
  });
  return { check: () => pool.check(), close: () => pool.close() };
}
