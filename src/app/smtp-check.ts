/**
 * SMTP greetings (connect, STARTTLS, AUTH) with every configured relay (`smtp.relays`, or
 * `smtp.url` alone), for `config check --connect`: the relay set the daemon would use, each pool
 * sized one, so what passes here works there. Each relay is named by host:port, never its URL.
 */
import { readCa } from '../adapters/smtp/nodemailer-transport.js';
import { RelaySet, relaysOf, type RelayAnswer } from '../adapters/smtp/relay-set.js';
import type { Config } from '../config/schema.js';

export type { RelayAnswer };

export interface SmtpGreeter {
  /** Each relay's answer, in config order (never rejects). */
  check(): Promise<RelayAnswer[]>;
  close(): void;
}

/** Throws at once when `smtp.ca` cannot be read. */
export function smtpGreeter(s: Config['smtp'], timeoutMs: number): SmtpGreeter {
  const relays = new RelaySet(
    relaysOf(s).map((r) => ({ ...r, poolSize: 1 })),
    {
      pool: {
        maxMessages: 1,
        connectionTimeoutMs: Math.min(timeoutMs, s.connectionTimeoutMs),
        socketTimeoutMs: Math.min(timeoutMs, s.socketTimeoutMs),
        tls: { rejectUnauthorized: s.rejectUnauthorized, ca: s.ca === null ? undefined : readCa(s.ca) },
      },
      // Nothing is sent: health and probes play no part in a greeting.
      threshold: 1,
      probeMaxMs: 1,
    },
  );
  return { check: () => relays.check(), close: () => relays.close() };
}
