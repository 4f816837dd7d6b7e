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
      const empty = emptyUsersWarning(loaded.config, (await app.store.hasUsers()) ? 1 : 0);
      for (const w of empty ? [...warnings, empty] : warnings) log.warn({ setting: w.setting }, `${w.setting}: ${w.message}`);
      // The daemon's timers are unref'd so tests and run-minute can exit; this keeps `start` alive.
      const keepAlive = setInterval(() => undefined, 1 << 30);
      let stopping = false;
      onStopSignal(log, async () => {
        stopping = true;
        await app.close();
        clearInterval(keepAlive);
      });
      try {
        await app.start();
      } catch (err) {
        // A failed start must end the process (main.ts prints one line, exit non-zero): close
        // what was opened (HTTP server, MongoDB client, timers, SMTP pool) and let go of it.
        clearInterval(keepAlive);
        await app.close();
        // A stop signal during start-up closed the app under it: that is a stop, not a failure
        // (the signal handler exits).
        if (stopping) return;
        throw err;
      }
    });
}
