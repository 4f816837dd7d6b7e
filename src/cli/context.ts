/** Helpers shared by the subcommands: config, logger, argument parsing, signal handling. */
import type { Command } from 'commander';
import type { Logger } from 'pino';
import { loadConfig, type LoadedConfig } from '../config/load.js';
import { HOUR_MS, MINUTE_MS, SECOND_MS } from '../core/time.js';
import { ErrorCodes, MailwheelError } from '../errors.js';
import { createLogger } from '../log.js';

/** Loads config from `--config` (global option) or MAILWHEEL_CONFIG; throws ConfigError. */
export function configFor(cmd: Command): LoadedConfig {
  const { config } = cmd.optsWithGlobals<{ config?: string }>();
  return loadConfig(config === undefined ? {} : { file: config });
}

export function loggerFor(loaded: LoadedConfig): Logger {
  return createLogger(loaded.config.log.level);
}

export function badArgument(message: string): MailwheelError {
  return new MailwheelError(ErrorCodes.BAD_ARGUMENT, message);
}

/** Parses an ISO-8601 instant; a bad one is a usage error naming the option. */
export function parseInstant(value: string, option: string): number {
  const ms = Date.parse(value);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(value) || Number.isNaN(ms)) throw badArgument(`${option}: "${value}" is not an ISO-8601 instant (e.g. 2026-03-08T09:00:00Z)`);
  return ms;
}

export function parsePositiveInt(value: string, option: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw badArgument(`${option}: "${value}" is not a positive integer`);
  return n;
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: SECOND_MS, m: MINUTE_MS, h: HOUR_MS };

/** Parses a duration such as `90`, `90s`, `5m`, `1.5h`, `500ms` (no unit: seconds) into ms. */
export function parseDuration(value: string, option: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  const ms = m ? Number(m[1]) * (DURATION_UNITS[m[2] ?? 's'] ?? 1000) : NaN;
  if (!(ms > 0) || !Number.isFinite(ms)) throw badArgument(`${option}: "${value}" is not a duration (e.g. 90s, 5m, 1h)`);
  return Math.round(ms);
}

/**
 * Calls `stop` on the first SIGTERM/SIGINT (graceful) and exits with the code it returns (0
 * when it returns nothing); a second signal exits at once with 130, for an operator who does not
 * want to wait for the drain.
 */
export function onStopSignal(log: Logger, stop: (signal: string) => Promise<number | void>): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting without waiting');
      process.exit(130);
    }
    stopping = true;
    log.info({ signal }, 'stopping gracefully');
    stop(signal).then(
      (code) => process.exit(code ?? 0),
      (err: unknown) => {
        log.error({ err }, 'graceful stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}
