import type { Command } from 'commander';
import { redactConfig } from '../../config/load.js';
import { configFor } from '../context.js';

export function registerConfigCheck(program: Command): void {
  const config = program.command('config').description('configuration commands');
  config
    .command('check')
    .description('validate the configuration and print the effective values (secrets redacted); exit 78 if invalid')
    .action((_opts: unknown, cmd: Command) => {
      const loaded = configFor(cmd);
      const out = { sources: loaded.sources, config: redactConfig(loaded.config), schedules: loaded.schedules };
      process.stdout.write(`${JSON.stringify(out, null, 2)}\nconfig OK\n`);
    });
}
