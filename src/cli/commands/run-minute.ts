import type { Command } from 'commander';
import { App, type MinuteProgress } from '../../app/app.js';
import { HOUR_MS, MINUTE_MS } from '../../core/time.js';
import { EXIT_TEMPFAIL } from '../../errors.js';
import { badArgument, configFor, loggerFor, onStopSignal, parseDuration, parseInstant } from '../context.js';
import { formatCount } from '../format.js';


interface RunMinuteOptions {
  at: string;
  json?: boolean;
  force?: boolean;
  dryRun?: boolean;
  giveUpAfter?: string;
  progressEvery: string;
}

export function registerRunMinute(program: Command): void {
  program
    .command('run-minute')
    .description('send what is due in one minute (claims respected), wait for the outcomes, exit')
    .requiredOption('--at <iso>', 'any instant inside the minute, e.g. 2026-03-08T09:00:00Z (not a future minute, nor older than send.catchUpLookbackHours, unless --force)')
    .option('--json', 'print the report as JSON')
    .option('--force', 'accept an --at in a minute that has not begun, or older than send.catchUpLookbackHours')
    .option('--dry-run', 'print what would be sent (count per template and kind); claims nothing, sends nothing')
    .option('--give-up-after <duration>', 'give up once nothing was claimed, sent or failed for this long, e.g. 90s, 5m (default: config runMinute.giveUpAfterSeconds)')
    .option('--progress-every <duration>', 'a progress line on stderr this often', '10s')
    .action(async (opts: RunMinuteOptions, cmd: Command) => {
      const at = parseInstant(opts.at, '--at');
      const minuteStart = Math.floor(at / MINUTE_MS) * MINUTE_MS;
      const progressEveryMs = parseDuration(opts.progressEvery, '--progress-every');
      const giveUpOpt = opts.giveUpAfter === undefined ? undefined : parseDuration(opts.giveUpAfter, '--give-up-after');
      const loaded = configFor(cmd);
      // A dry run sends nothing, so any minute may be looked at.
      if (!opts.force && !opts.dryRun) checkMinuteBounds(minuteStart, Date.now(), loaded.config.send.catchUpLookbackHours);
      const giveUpMs = giveUpOpt ?? loaded.config.runMinute.giveUpAfterSeconds * 1000;
      const log = loggerFor(loaded);
      const app = await App.create(loaded, log, { planOnly: opts.dryRun === true });
      const minute = new Date(minuteStart).toISOString();
      if (opts.dryRun) {
        try {
          const plan = await app.planMinute(minuteStart);
          if (opts.json) process.stdout.write(`${JSON.stringify({ minute, dryRun: true, ...plan })}\n`);
          else {
            const lines = [
              `${minute}: dry run, nothing claimed or sent`,
              `due ${formatCount(plan.due)}: would send ${formatCount(plan.wouldSend)}, already claimed ${formatCount(plan.alreadyClaimed)}, suppressed ${formatCount(plan.suppressed)}`,
              ...plan.byTemplate.map((t) => `  template ${t.template} (${t.kind}): ${formatCount(t.count)}`),
            ];
            process.stdout.write(`${lines.join('\n')}\n`);
          }
        } finally {
          await app.close();
        }
        return;
      }

      // The run ends one of three ways: every outcome recorded, a stop signal, or no progress for
      // `giveUpMs` (an unreachable SMTP server holds the claimed mail for ever otherwise).
      let stopWith: (reason: string) => void = () => undefined;
      const stopped = new Promise<string>((resolve) => (stopWith = resolve));
      let exitCode: (code: number) => void = () => undefined;
      const exited = new Promise<number>((resolve) => (exitCode = resolve));
      onStopSignal(log, (signal) => {
        stopWith(`stopped by ${signal}`);
        return exited;
      });
      const watch = watchProgress(app, minute, { giveUpMs, progressEveryMs, onStall: (reason) => stopWith(reason) });
      const run = app.runMinute(minuteStart);
      run.catch(() => undefined); // awaited below when it wins the race
      const first = await Promise.race([run.then(() => undefined), stopped]);
      watch.stop();
      if (first === undefined) {
        try {
          const report = await run;
          const line = { minute, ...report };
          process.stdout.write(opts.json ? `${JSON.stringify(line)}\n` : `${line.minute}: due ${report.due}, claimed ${report.claimed}, skipped ${report.skipped} (already claimed), sent ${report.sent}, failed ${report.failed}, retries ${report.retried}\n`);
        } finally {
          await app.close();
          exitCode(0);
        }
        return;
      }
      // Stopped before every outcome was in: the close releases the claims of everything not yet
      // handed to SMTP; then say what happened and what is left, and exit non-zero when mail is.
      await app.close();
      const p = app.minuteProgress();
      const unsent = p.due === undefined ? undefined : Math.max(0, p.due - p.skipped - p.suppressed - p.sent - p.failed);
      const summary = { minute, stopped: first, due: p.due ?? null, claimed: p.claimed, skipped: p.skipped, suppressed: p.suppressed, sent: p.sent, failed: p.failed, retried: p.retried, released: p.released, unsent: unsent ?? null, breaker: p.breaker };
      process.stdout.write(
        opts.json
          ? `${JSON.stringify(summary)}\n`
          : `${minute}: ${first}; due ${formatCount(p.due)}, claimed ${formatCount(p.claimed)}, skipped ${formatCount(p.skipped)} (already claimed), sent ${formatCount(p.sent)}, failed ${formatCount(p.failed)}, retries ${formatCount(p.retried)}, released ${formatCount(p.released)}, unsent ${formatCount(unsent)}\n`,
      );
      const leftUnsent = unsent === undefined || unsent > 0;
      if (leftUnsent) {
        process.stderr.write(
          `mailwheel: run-minute ${minute} ${first}: ${unsent === undefined ? 'the minute was not handled' : `${formatCount(unsent)} left unsent`} (${formatCount(p.released)} claims released); run it again to send the rest: mailwheel run-minute --at ${minute}\n`,
        );
      }
      const code = leftUnsent ? EXIT_TEMPFAIL : 0;
      process.exitCode = code;
      exitCode(code);
    });
}

/**
 * Refuses a minute that has not begun (its mail would go out early, and the claims would make the
 * on-time run skip it) and one older than the catch-up lookback (that old, a replay is more
 * likely a typo than a recovery). `--force` lifts both.
 */
export function checkMinuteBounds(minuteStart: number, now: number, lookbackHours: number): void {
  const current = Math.floor(now / MINUTE_MS) * MINUTE_MS;
  const iso = (ms: number) => new Date(ms).toISOString();
  if (minuteStart > current) {
    throw badArgument(`--at: ${iso(minuteStart)} is after the current minute (${iso(current)}); sending it now would mail early and its on-time run would skip those claims. Use --force to send it anyway`);
  }
  const oldest = current - lookbackHours * HOUR_MS;
  if (minuteStart < oldest) {
    throw badArgument(`--at: ${iso(minuteStart)} is older than send.catchUpLookbackHours (${lookbackHours} h, i.e. before ${iso(oldest)}). Use --force to replay it anyway`);
  }
}

/**
 * Watches a running minute: a progress line on stderr every `progressEveryMs`, and `onStall`
 * once no counter moved (users synced, claims, sends, failures, retries) for `giveUpMs`.
 */
function watchProgress(app: App, minute: string, opts: { giveUpMs: number; progressEveryMs: number; onStall: (reason: string) => void }): { stop(): void } {
  const started = Date.now();
  let lastChange = started;
  let lastLine = started;
  let signature = '';
  const sig = (p: MinuteProgress) => [p.users, p.claimed, p.skipped, p.suppressed, p.sent, p.failed, p.retried].join(',');
  const timer = setInterval(
    () => {
      const now = Date.now();
      const p = app.minuteProgress();
      const s = sig(p);
      if (s !== signature) {
        signature = s;
        lastChange = now;
      }
      if (now - lastLine >= opts.progressEveryMs) {
        lastLine = now;
        process.stderr.write(
          `mailwheel: run-minute ${minute}: ${seconds(now - started)} in, due ${formatCount(p.due)}, claimed ${formatCount(p.claimed)}, sent ${formatCount(p.sent)}, failed ${formatCount(p.failed)}, retries ${formatCount(p.retried)}, waiting ${formatCount(p.waiting)}, in flight ${formatCount(p.inFlight)}, SMTP breaker ${p.breaker}\n`,
        );
      }
      if (now - lastChange >= opts.giveUpMs) {
        clearInterval(timer);
        const why = p.breaker === 'open' ? 'SMTP server unreachable (circuit breaker open)' : 'no progress';
        opts.onStall(`gave up after ${seconds(now - lastChange)} without progress: ${why}`);
      }
    },
    Math.min(250, opts.progressEveryMs, opts.giveUpMs),
  );
  return { stop: () => clearInterval(timer) };
}

function seconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}
