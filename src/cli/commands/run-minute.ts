import type { Command } from 'commander';
import { App } from '../../app/app.js';
import { configFor, loggerFor, onStopSignal, parseInstant } from '../context.js';
import { formatCount } from '../format.js';

export function registerRunMinute(program: Command): void {
  program
    .command('run-minute')
    .description('send what is due in one minute (claims respected), wait for the outcomes, exit')
    .requiredOption('--at <iso>', 'any instant inside the minute, e.g. 2026-03-08T09:00:00Z')
    .option('--json', 'print the report as JSON')
    .action(async (opts: { at: string; json?: boolean }, cmd: Command) => {
      const at = parseInstant(opts.at, '--at');
      const minuteStart = Math.floor(at / 60_000) * 60_000;
      const loaded = configFor(cmd);
      const log = loggerFor(loaded);
      const app = await App.create(loaded, log);
      onStopSignal(log, () => app.close());
      try {
        const report = await app.runMinute(minuteStart);
        const line = { minute: new Date(minuteStart).toISOString(), ...report };
        process.stdout.write(opts.json ? `${JSON.stringify(line)}\n` : `${line.minute}: due ${formatCount(report.due)}, claimed ${formatCount(report.claimed)}, skipped ${formatCount(report.skipped)} (already claimed), sent ${formatCount(report.sent)}, failed ${formatCount(report.failed)}, retries ${formatCount(report.retried)}\n`);
      } finally {
        await app.close();
      }
    });
}
