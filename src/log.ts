/**
 * Structured logs (pino) to stderr, so stdout stays free for command output (`--json`).
 * Secrets never reach a log line: credential-bearing keys are redacted wherever they appear,
 * and URIs are logged only through `maskUri`.
 */
import pino, { type Logger } from 'pino';

export const REDACT_PATHS = [
  'password',
  'pass',
  'secret',
  'token',
  'authorization',
  'uri',
  'url',
  '*.password',
  '*.pass',
  '*.secret',
  '*.token',
  '*.authorization',
  '*.uri',
  '*.url',
  '*.*.uri',
  '*.*.url',
  'config.smtp.url',
  'config.mongodb.uri',
];

export function createLogger(level: string, destination: pino.DestinationStream = pino.destination(2)): Logger {
  return pino({ level, base: { pid: process.pid }, redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, destination);
}

/** A URI with its credentials removed, for logs and `config check`. */
export function maskUri(uri: string): string {
  // Up to the LAST '@' before the path: a password may contain an unencoded '@' and
  // nodemailer accepts that.
  return uri.replace(/^([^:/]+:\/\/)[^/?#]*@/, '$1***:***@');
}
