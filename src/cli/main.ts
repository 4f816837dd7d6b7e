#!/usr/bin/env node
/**
 * The `mailwheel` command. Each subcommand lives in `commands/`; this file only assembles them
 * and turns errors into exit codes: the error catalogue's (`errors/catalogue.ts`, through
 * `main-errors.ts`), e.g. 78 for bad configuration, 64 for a bad command line.
 */
import { Command, CommanderError } from 'commander';
import { MailwheelError } from '../errors.js';
import { scrubSecrets } from '../log.js';
import { registerBroadcast } from './commands/broadcast.js';
import { registerCluster } from './commands/cluster.js';
import { registerConfigCheck } from './commands/config-check.js';
import { registerPlan } from './commands/plan.js';
import { registerPreview } from './commands/preview.js';
import { registerRunMinute } from './commands/run-minute.js';
import { registerScheduleShow } from './commands/schedule-show.js';
import { registerSeedUsers } from './commands/seed-users.js';
import { registerStart } from './commands/start.js';
import { registerSuppression } from './commands/suppression.js';
import { packageVersion } from './context.js';
import { exitCodeOf, systemErrorLine } from './main-errors.js';

export function buildProgram(): Command {
  const program = new Command('mailwheel')
    .description('Scheduled personal emails and broadcasts to every active user in MongoDB')
    .version(packageVersion())
    .option('-c, --config <file>', 'config file (JSON) merged over config/default.json; env MAILWHEEL_CONFIG')
    .showHelpAfterError()
    .exitOverride();
  registerStart(program);
  registerRunMinute(program);
  registerSeedUsers(program);
  registerScheduleShow(program);
  registerBroadcast(program);
  registerCluster(program);
  registerConfigCheck(program);
  registerPlan(program);
  registerPreview(program);
  registerSuppression(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (err) {
    const code = reportError(err);
    // The stack only on request: the line above is what an operator needs.
    if (process.env['MAILWHEEL_DEBUG'] && err instanceof Error && !(err instanceof CommanderError)) process.stderr.write(scrubSecrets(`${err.stack ?? ''}\n`));
    return code;
  }
}

/** Writes the one line an operator reads and returns the exit code, which the catalogue decides. */
function reportError(err: unknown): number {
  const code = exitCodeOf(err);
  // commander has already printed its own message (and the help) for a bad command line.
  if (err instanceof CommanderError) return code;
  // Error texts may quote a connection string (driver errors): scrubbed of the config's secrets.
  if (err instanceof MailwheelError) {
    process.stderr.write(scrubSecrets(`mailwheel: ${err.message}\n`));
    return code;
  }
  const sys = systemErrorLine(err);
  if (sys !== undefined) {
    // A file or system call failed (ENOENT, EACCES...): one line naming what, not a stack trace.
    process.stderr.write(scrubSecrets(`mailwheel: ${sys}\n`));
    return code;
  }
  // One line for the operator (a start-up failure under systemd reads best that way); the stack
  // with MAILWHEEL_DEBUG=1.
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(scrubSecrets(`mailwheel: ${oneLine(message)}\n`));
  return code;
}

function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, ' ').trim();
}

/**
 * A reader that closes the pipe early (`mailwheel schedule show ... | head -2`) is not an error:
 * stop writing and exit 0 quietly, as `cat` and `git log` do. Any other stdout error is reported
 * in one line.
 */
export function exitQuietlyOnClosedStdout(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    process.stderr.write(`mailwheel: stdout: ${err.code ?? err.message}\n`);
    process.exit(1);
  });
}

// Run when executed directly (bin or tsx), not when imported by tests.
const entry = process.argv[1] ?? '';
if (/(?:^|[\\/])(main\.[jt]s|mailwheel)$/.test(entry)) {
  exitQuietlyOnClosedStdout();
  main(process.argv).then(
    (code) => {
      process.exitCode = code;
      // A failed command has closed what it opened; should anything still hold the event loop
      // (a driver's timer), it must not keep a failed process alive (systemd would see it running).
      if (code !== 0) setTimeout(() => process.exit(code), 5_000).unref();
    },
    (err: unknown) => {
      process.stderr.write(scrubSecrets(`mailwheel: ${String(err)}\n`));
      process.exitCode = 1;
    },
  );
}
