/**
 * `mailwheel config check`: validates the configuration (exit 78 naming every bad field), prints
 * the effective values with secrets redacted, which unsubscribe mode is in force and why, per DKIM
 * signature the TXT record to publish, and the warnings. `--connect` also reaches MongoDB and SMTP
 * (exit 69 naming each failure).
 * With `--json`, stdout is exactly one JSON document; every message goes to stderr.
 */
import type { Command } from 'commander';
import { smtpGreeter } from '../../app/smtp-check.js';
import { openStores, type Stores } from '../../app/stores.js';
import { redactConfig, type LoadedConfig } from '../../config/load.js';
import { redactUri, scrubUri, uriHosts } from '../../config/urls.js';
import { configWarnings, emptyUsersWarning, type ConfigWarning } from '../../config/warnings.js';
import { signToken, unsubscribeMode, verifyToken } from '../../core/unsubscribe-token.js';
import { EXIT_UNAVAILABLE, UnavailableError } from '../../errors.js';
import { configFor, parsePositiveInt } from '../context.js';
import { formatCount } from '../format.js';

interface CheckResult {
  name: 'mongodb' | 'smtp' | 'unsubscribe';
  ok: boolean;
  detail: string;
}

export function registerConfigCheck(program: Command): void {
  const config = program.command('config').description('configuration commands');
  config
    .command('check')
    .description('validate the configuration and print the effective values (secrets redacted), the unsubscribe mode and warnings; exit 78 naming every bad field, 69 if a --connect check fails')
    .option('--json', 'stdout is one JSON document (messages go to stderr)')
    .option('--connect', 'also ping MongoDB, count the users, and greet (STARTTLS, AUTH) the SMTP server; exit 69 if one fails')
    .option('--timeout <ms>', 'how long each --connect check may take', '5000')
    .action(async (opts: { json?: boolean; connect?: boolean; timeout: string }, cmd: Command) => {
      const timeoutMs = parsePositiveInt(opts.timeout, '--timeout');
      const loaded = configFor(cmd);
      const mode = unsubscribeMode(loaded.config.unsubscribe);
      const warnings = configWarnings(loaded.config);
      const checks = opts.connect ? await connectChecks(loaded, timeoutMs, warnings) : undefined;
      const failed = checks?.filter((c) => !c.ok) ?? [];

      const doc = {
        ok: failed.length === 0,
        sources: loaded.sources,
        config: redactConfig(loaded.config),
        schedules: loaded.schedules,
        unsubscribe: { mode: mode.mode, reason: mode.reason },
        // Public halves only: the TXT record each key needs. The private key is never printed.
        dkim: loaded.dkim.map((k) => ({ domain: k.domain, selector: k.selector, algorithm: k.algorithm, key: k.describe, name: k.recordName, txt: k.txt })),
        warnings,
        ...(checks === undefined ? {} : { checks }),
      };
      const messages = [
        `unsubscribe: ${mode.mode === 'one-click' ? 'one-click' : 'mailto only'}: ${mode.reason}`,
        ...loaded.dkim.map((k) => `dkim: ${k.describe} key OK (${k.algorithm}); publish: ${k.recordName} TXT ${zoneText(k.txt)}`),
        ...(checks ?? []).filter((c) => c.ok).map((c) => `${c.name}: ${c.detail}`),
        ...warnings.map((w) => `warning: ${w.setting}: ${w.message}`),
        ...failed.map((c) => `mailwheel: ${c.detail}`),
        failed.length === 0 ? (checks ? 'config OK, connections OK' : 'config OK') : `${failed.length} check(s) failed`,
      ];
      // Without --json stdout keeps its old shape (the effective config); messages go to stderr either way.
      const { sources, config: cfg, schedules } = doc;
      process.stdout.write(`${JSON.stringify(opts.json ? doc : { sources, config: cfg, schedules }, null, 2)}\n`);
      process.stderr.write(`${messages.join('\n')}\n`);
      if (failed.length > 0) process.exitCode = EXIT_UNAVAILABLE;
    });
}

/** A TXT value in zone-file form: quoted strings of at most 255 characters (an RSA-2048 record is longer). */
function zoneText(txt: string): string {
  const parts: string[] = [];
  for (let i = 0; i < txt.length; i += 255) parts.push(`"${txt.slice(i, i + 255)}"`);
  return parts.join(' ');
}

/** Each check runs on its own, so one report names every failure. */
async function connectChecks(loaded: LoadedConfig, timeoutMs: number, warnings: ConfigWarning[]): Promise<CheckResult[]> {
  const [mongo, smtp] = await Promise.all([checkMongo(loaded, timeoutMs, warnings), checkSmtp(loaded, timeoutMs)]);
  return [mongo, ...smtp, checkUnsubscribe(loaded)];
}

async function checkMongo(loaded: LoadedConfig, timeoutMs: number, warnings: ConfigWarning[]): Promise<CheckResult> {
  const { config } = loaded;
  let store: Stores | undefined;
  try {
    store = await openStores(config, { serverSelectionTimeoutMs: timeoutMs });
    await store.ping();
    const users = await store.countUsers({ maxTimeMs: timeoutMs });
    const empty = emptyUsersWarning(config, users);
    if (empty) warnings.push(empty);
    return { name: 'mongodb', ok: true, detail: `${redactUri(config.mongodb.uri)} answers; ${store.databaseName}.${config.users.collection} holds ${formatCount(users)} documents` };
  } catch (err) {
    const detail = err instanceof UnavailableError ? err.message : `mongodb.uri (MONGODB_URI): ${uriHosts(config.mongodb.uri)}: ${scrubUri(config.mongodb.uri, (err as Error).message)}`;
    return { name: 'mongodb', ok: false, detail };
  } finally {
    await store?.close().catch(() => undefined);
  }
}

/** One result per relay (`smtp.relays`, or `smtp.url` alone), each named by its setting and host:port. */
async function checkSmtp(loaded: LoadedConfig, timeoutMs: number): Promise<CheckResult[]> {
  const s = loaded.config.smtp;
  const pool = smtpGreeter(s, timeoutMs);
  const urls = s.relays.length === 0 ? [s.url] : s.relays.map((r) => r.url);
  try {
    const answers = await pool.check();
    return answers.map((a, i): CheckResult => {
      const url = urls[i] ?? s.url;
      const setting = a.setting === 'smtp.url' ? 'smtp.url (SMTP_URL)' : a.setting;
      if (a.ok) return { name: 'smtp', ok: true, detail: `${redactUri(url)} greets${new URL(url).username !== '' ? ' and accepts the credentials' : ''}` };
      return { name: 'smtp', ok: false, detail: `${setting}: cannot use ${a.relay}: ${a.error ?? ''}${a.code ? ` (${a.code})` : ''}` };
    });
  } finally {
    pool.close();
  }
}

/** With one-click on, a token signed now must verify (the secret and clock are usable). */
function checkUnsubscribe(loaded: LoadedConfig): CheckResult {
  const cfg = loaded.config.unsubscribe;
  const mode = unsubscribeMode(cfg);
  if (mode.mode !== 'one-click' || cfg.secret === null) return { name: 'unsubscribe', ok: true, detail: `mailto only (${mode.reason})` };
  const now = Date.now();
  const token = signToken({ userId: 'config-check', email: 'check@example.com', expiresAt: Math.floor(now / 1000) + 60 }, cfg.secret);
  const back = verifyToken(token, cfg.secret, now);
  return back.ok
    ? { name: 'unsubscribe', ok: true, detail: `one-click tokens sign and verify; links point to ${cfg.baseUrl ?? ''}/unsubscribe` }
    : { name: 'unsubscribe', ok: false, detail: `unsubscribe.secret: a token signed now does not verify (${back.reason})` };
}
