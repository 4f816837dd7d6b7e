import type { Command } from 'commander';
import { openStores } from '../../app/stores.js';
import { nextFires } from '../../core/fire-time.js';
import { checkUser } from '../../core/validate-user.js';
import { ErrorCodes, MailwheelError } from '../../errors.js';
import { configFor, parseInstant, parsePositiveInt } from '../context.js';

export function registerScheduleShow(program: Command): void {
  const schedule = program.command('schedule').description('inspect scheduled mail');
  schedule
    .command('show')
    .description("a user's next fire instants after FROM, in UTC and in the user's local time")
    .requiredOption('--user <id>', 'user id (the mapped id field)')
    .option('--count <n>', 'how many fires', '5')
    .option('--from <iso>', 'start instant (default now)')
    .option('--json', 'print [{"utc": ISO, "local": ISO-with-offset}, ...]')
    .action(async (opts: { user: string; count: string; from?: string; json?: boolean }, cmd: Command) => {
      const count = parsePositiveInt(opts.count, '--count');
      const from = opts.from === undefined ? Date.now() : parseInstant(opts.from, '--from');
      const { config } = configFor(cmd);
      const store = await openStores(config);
      try {
        const doc = await store.users.byId(opts.user);
        if (!doc) throw new MailwheelError(ErrorCodes.NOT_FOUND, `no user with ${config.users.fields.id} "${opts.user}"`);
        const check = checkUser(doc, config.users.fields);
        if (check.kind === 'invalid') throw new MailwheelError(ErrorCodes.USER_INVALID, `user ${check.id} is invalid: ${check.reason}`);
        if (check.kind === 'inactive') throw new MailwheelError(ErrorCodes.USER_INVALID, `user ${check.id} is inactive or unsubscribed: nothing is scheduled`);
        const u = check.user;
        const fires = nextFires(u.timezone, u.times, u.days, from, count);
        if (opts.json) {
          process.stdout.write(`${JSON.stringify(fires.map((f) => ({ utc: new Date(f.at).toISOString(), local: f.localIso })))}\n`);
          return;
        }
        process.stdout.write(`user ${u.id} <${u.email}>  zone ${u.timezone}  times ${u.times.join(', ')}${u.days ? `  days ${u.days.join(',')}` : ''}\n`);
        for (const f of fires) process.stdout.write(`  ${new Date(f.at).toISOString()}   ${f.localIso}   slot ${f.time} of ${f.localDate}\n`);
      } finally {
        await store.close();
      }
    });
}
