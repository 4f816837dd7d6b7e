import type { Command } from 'commander';
import { App } from '../../app/app.js';
import { configWarnings, emptyUsersWarning } from '../../config/warnings.js';
import { configFor, loggerFor, onStopSignal } from '../context.js';

export function registerStart(program: Command): void {
  program
    .command('start')
    .description('run the daemon: sync users, send each scheduled email at its time, until SIGTERM')
    .action(async (_opts: unknown, cmd: Command) => {
      const loaded = configFor(cmd);
      const log = loggerFor(loaded);
      const app = await App.create(loaded, log);
      // Valid settings that would send nothing (or not what was meant): said loudly, once.
      const warnings = configWarnings(loaded.config);
      const empty = emptyUsersWarning(loaded.config, (await app.store.users.findOne({}, { projection: { _id: 1 } })) === null ? 0 : 1);
      for (const w of empty ? [...warnings, empty] : warnings) log.warn({ setting: w.setting }, `${w.setting}: ${w.message}`);
      // The daemon's timers are unref'd so tests and run-minute can exit; this keeps `start` alive.
      const keepAlive = setInterval(() => undefined, 1 << 30);
      onStopSignal(log, async () => {
        await app.close();
        clearInterval(keepAlive);
      });
      await app.start();
    });
}
