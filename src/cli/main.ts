#!/usr/bin/env node
/**
 * The `mailwheel` command. Each subcommand lives in `commands/`; this file only assembles them
 * and turns errors into exit codes: the error catalogue's (`errors/catalogue.ts`, through
 * `main-errors.ts`), e.g. 78 for bad configuration, 64 for a bad command line.
 */
import { Command, CommanderError } from 'commander';
import { MailwheelError } from '../errors.js';
import { scrubSecrets } from '../log.js';
import { exitCodeOf, systemErrorLine } from './main-errors.js';
import { packageVersion } from './version.js';

type Register = (program: Command) => void;

/**
 * Each top-level command and the module that registers it (with its subcommands), in the order
 * `--help` lists them. Loaded on demand: loading every module (the MongoDB driver, nodemailer,
 * ioredis, prom-client, mailparser...) took 1.2 s of a process start; one command needs a part.
 */
export const COMMANDS: ReadonlyArray<readonly [string, () => Promise<Register>]> = [
  ['start', async () => (await import('./commands/start.js')).registerStart],
  ['run-minute', async () => (await import('./commands/run-minute.js')).registerRunMinute],
  ['seed-users', async () => (await import('./commands/seed-users.js')).registerSeedUsers],
  ['schedule', async () => (await import('./commands/schedule-show.js')).registerScheduleShow],
  ['broadcast', async () => (await import('./commands/broadcast.js')).registerBroadcast],
  ['cluster', async () => (await import('./commands/cluster.js')).registerCluster],
  ['config', async () => (await import('./commands/config-check.js')).registerConfigCheck],
  ['plan', async () => (await import('./commands/plan.js')).registerPlan],
  ['preview', async () => (await import('./commands/preview.js')).registerPreview],
  ['suppression', async () => (await import('./commands/suppression.js')).registerSuppression],
];

/**
 * Which commands a command line needs registered: the one it names, when only `-c/--config <file>`
 * comes before the name; none for a bare `--version`/`-V`; every one otherwise (`--help`, no
 * command, an unknown one or an unknown option, whose messages list or suggest them all).
 * `args` is argv after the node binary and the script.
 */
export function commandsFor(args: readonly string[]): string[] {
  const all = COMMANDS.map(([name]) => name);
  if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) return [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === '-c' || arg === '--config') i++;
    else if (arg.startsWith('--config=') || (arg.startsWith('-c') && !arg.startsWith('--'))) continue;
    else return all.includes(arg) ? [arg] : all;
  }
  return all;
}

/** The program with the commands `argv` needs (see commandsFor); all of them without `argv`. */
export async function buildProgram(argv?: readonly string[]): Promise<Command> {
  const program = new Command('mailwheel')
    .description('Scheduled personal emails and broadcasts to every active user in MongoDB')
    .version(packageVersion())
    .option('-c, --config <file>', 'config file (JSON) merged over config/default.json; env MAILWHEEL_CONFIG')
    .showHelpAfterError()
    .exitOverride();
  const wanted = argv === undefined ? undefined : commandsFor(argv.slice(2));
  for (const [name, load] of COMMANDS) if (wanted === undefined || wanted.includes(name)) (await load())(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await (await buildProgram(argv)).parseAsync(argv);
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
