/**
 * How an error ends a command: its exit code, taken from the error catalogue (a `MailwheelError`
 * carries its entry's), and the one-line forms the CLI reports instead of stack traces.
 */
import { CommanderError } from 'commander';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, MailwheelError, type ExitCode } from '../errors.js';

/**
 * The exit code a command ends with when `err` reaches the top: the catalogue's for a
 * `MailwheelError` (78 bad config, 64 bad argument, 69 unavailable, 73 cannot write...), 64 for a
 * command line commander refused (0 for help and version, which it throws too), 1 otherwise.
 */
export function exitCodeOf(err: unknown): ExitCode {
  if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
  if (err instanceof MailwheelError) return err.exitCode;
  return EXIT_FAILURE;
}

/** `open /no/such/dir/x.svg: ENOENT (no such file or directory)` for a Node system error, else undefined. */
export function systemErrorLine(err: unknown): string | undefined {
  if (!(err instanceof Error)) return undefined;
  const e = err as NodeJS.ErrnoException;
  if (typeof e.code !== 'string' || typeof e.syscall !== 'string') return undefined;
  const what = e.path === undefined ? e.syscall : `${e.syscall} ${e.path}`;
  // The message is "ENOENT: no such file or directory, open '...'": keep only the description.
  const description = /^[A-Z0-9_]+: ([^,]+)/.exec(e.message)?.[1];
  return `${what}: ${e.code}${description === undefined ? '' : ` (${description})`}`;
}
