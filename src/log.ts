/**
 * Structured logs (pino) to stderr, so stdout stays free for command output (`--json`).
 * Secrets never reach a log line: credential-bearing keys are redacted wherever they appear,
 * URIs are logged only through `redactUri` (config/urls.ts), and the configured secrets are
 * scrubbed from every line (`scrubSecrets`).
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

/**
 * The secrets of the loaded configuration (URI credentials, the unsubscribe secret, the HTTP
 * token). Key-based redaction cannot see a secret quoted inside a message or a stack (a driver
 * error that repeats the connection string), so every log line and every CLI error is also
 * scrubbed of these exact strings.
 */
const secrets = new Set<string>();
/** The secrets and their JSON-escaped forms (pino writes JSON), longest first. */
let patterns: string[] = [];

export function registerSecrets(list: Iterable<string>): void {
  for (const s of list) if (s.length >= 2) secrets.add(s);
  patterns = [...new Set([...secrets].flatMap((s) => [s, JSON.stringify(s).slice(1, -1)]))].sort((a, b) => b.length - a.length);
}

/** `text` with every registered secret replaced by `[redacted]`. */
export function scrubSecrets(text: string): string {
  return maskAll(text, patterns, '[redacted]');
}

/** `text` with each of `secrets` replaced by `mask`; pass them longest first, so a secret that contains another is replaced whole. */
export function maskAll(text: string, secrets: Iterable<string>, mask: string): string {
  let out = text;
  for (const s of secrets) if (s.length > 0 && out.includes(s)) out = out.split(s).join(mask);
  return out;
}

export function createLogger(level: string, destination: pino.DestinationStream = pino.destination(2)): Logger {
  return pino(
    { level, base: { pid: process.pid }, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, hooks: { streamWrite: scrubSecrets } },
    destination,
  );
}
