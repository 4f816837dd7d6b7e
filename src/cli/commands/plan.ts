/**
 * `mailwheel plan`: reads the real users collection once (one streamed cursor), schedules every
 * active, valid, unsuppressed user into a job registry exactly as the daemon does, and reports
 * the sends due per minute over the next hours, the peak minutes, and how long each peak takes to
 * drain at the configured rate windows, burst and with the spread window. Nothing is sent or
 * written. See src/core/capacity-plan.ts for the model.
 */
import { accessSync, constants, statSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { openStores } from '../../app/stores.js';
import { addWaves, countFires, drainModel, planFromCounts, waveCollisions } from '../../core/capacity-plan.js';
import { scheduledKey } from '../../core/delivery-key.js';
import { JobRegistry } from '../../core/job-registry.js';
import { normaliseEmail } from '../../core/suppression-list.js';
import { MINUTE_MS } from '../../core/time.js';
import { checkUser } from '../../core/validate-user.js';
import { ErrorCodes, MailwheelError } from '../../errors.js';
import { systemErrorLine } from '../main-errors.js';
import { badArgument, configFor, parseInstant, parsePositiveInt } from '../context.js';
import { collisionJson, collisionLines, describeRate, formatCount, peakLines, planJson, terminalChart } from '../plan-render.js';
import { planWaves, waveSummaryLines, type PlanWaves } from '../plan-waves.js';


interface PlanOpts {
  json?: boolean;
  svg?: string;
  hours: string;
  from?: string;
  peaks: string;
  spread?: string;
  claims: boolean;
}

export function registerPlan(program: Command): void {
  program
    .command('plan')
    .description('sends due per minute over the next hours (from the users collection), the peak minutes, and when each peak drains at the configured rate')
    .option('--json', 'print the plan as JSON')
    .option('--svg <file>', 'also write the chart as an SVG picture')
    .option('--hours <n>', 'how many hours ahead (max 168)', '24')
    .option('--from <iso>', 'start instant, rounded down to its minute (default: the next whole minute)')
    .option('--peaks <n>', 'how many peak minutes to report', '5')
    .option('--no-claims', 'do not look up sends already claimed (faster on FerretDB with a large deliveries collection)')
    .option('--spread <seconds>', 'spread window to compare with (default: send.spreadSeconds, or 59 when that is 0)')
    .action(async (opts: PlanOpts, cmd: Command) => {
      const hours = parsePositiveInt(opts.hours, '--hours');
      if (hours > 168) throw badArgument(`--hours: "${opts.hours}" is more than a week (168)`);
      const peaks = parsePositiveInt(opts.peaks, '--peaks');
      const fromMs = opts.from === undefined ? (Math.floor(Date.now() / MINUTE_MS) + 1) * MINUTE_MS : Math.floor(parseInstant(opts.from, '--from') / MINUTE_MS) * MINUTE_MS;
      const { config } = configFor(cmd);
      const spread = opts.spread === undefined ? config.send.spreadSeconds || 59 : Number(opts.spread);
      if (!Number.isInteger(spread) || spread < 1 || spread > 59) throw badArgument(`--spread: "${opts.spread}" is not a whole number of seconds between 1 and 59`);

      // Before minutes of reading users: an --svg that cannot be written fails now, in one line.
      if (opts.svg !== undefined) checkWritable(opts.svg);

      const started = Date.now();
      const store = await openStores(config);
      // `documents`: the whole collection; `read`: the active ones the daemon reads (and so does
      // this). `inactive` counts both kinds the seeder and checkUser call inactive: `active` not
      // true (never read by the daemon, so counted with a query) and unsubscribed.
      const users = { documents: 0, read: 0, scheduled: 0, inactive: 0, invalid: 0, suppressed: 0 };
      const registry = new JobRegistry();
      let counts: Int32Array;
      let alreadyClaimed = 0;
      let claimedPerMinute: Int32Array;
      let waves: PlanWaves;
      try {
        const suppressed = new Set<string>();
        // Scheduled mail: only suppressions of every kind of mail count (a marketing-only one lets it go).
        for await (const batch of store.suppressions.allSuppressed()) for (const e of batch) if (e.scope === 'all') suppressed.add(e.email);
        for await (const batch of store.users.allActive()) {
          for (const doc of batch) {
            users.read++;
            const r = checkUser(doc, config.users.fields);
            if (r.kind === 'inactive') users.inactive++;
            else if (r.kind === 'invalid') users.invalid++;
            else if (suppressed.has(normaliseEmail(r.user.email))) users.suppressed++;
            else {
              registry.upsertUser(r.user, fromMs);
              users.scheduled++;
            }
          }
        }
        users.documents = await store.countUsers();
        users.inactive += users.documents - users.read;

        // Sends already claimed (by run-minute or a daemon) will not be sent again: leave them out.
        const keys: string[] = [];
        const minuteOf: number[] = [];
        counts = countFires(registry, fromMs, hours * 60, (i, job) => {
          keys.push(scheduledKey(job.userId, job.time, job.localDate));
          minuteOf.push(i);
        });
        const claimed = opts.claims ? await store.claimed.claimedKeys(keys) : new Set<string>();
        claimedPerMinute = new Int32Array(counts.length);
        if (claimed.size > 0) {
          keys.forEach((key, j) => {
            if (!claimed.has(key)) return;
            const i = minuteOf[j] as number;
            counts[i] = (counts[i] ?? 0) - 1;
            // Shown apart on the chart: due, but already out (or going).
            claimedPerMinute[i] = (claimedPerMinute[i] ?? 0) + 1;
            alreadyClaimed++;
          });
        }
        // Queued local-time broadcasts: each zone's recipients at its instant, on top of the fires.
        waves = await planWaves(store, config, fromMs, hours * 60);
      } finally {
        await store.close();
      }

      // Without a local-time broadcast the plan (and every line and key of its output) is the scheduled one.
      const withWaves = waves.summaries.length === 0 ? undefined : addWaves(counts, waves.waves);
      const plan = planFromCounts(withWaves?.counts ?? counts, fromMs, config.rate, spread, peaks, withWaves?.broadcast);
      const collisions = waveCollisions(plan, waves.waves, config.rate);
      for (const line of waves.skipped) process.stderr.write(`warning: ${line}\n`);
      const broadcastTotal = withWaves === undefined ? 0 : withWaves.broadcast.reduce((a, b) => a + b, 0);
      const unlimited = drainModel([], config.rate).unlimited;
      if (opts.svg !== undefined) {
        const title = `mailwheel plan: sends due per minute from ${new Date(plan.fromMs).toISOString().slice(0, 16)}Z (${hours} h), rate ${describeRate(config.rate)}`;
        // Loaded here, not at the top: ECharts is a second of start-up the other commands need not pay.
        const { svgChart } = await import('../plan-svg.js');
        writeOutput(opts.svg, svgChart(plan, title, config.rate, opts.claims ? claimedPerMinute : undefined));
      }
      if (opts.json) {
        const broadcastKeys = withWaves === undefined ? {} : { broadcasts: waves.summaries, collisions: collisionJson(collisions) };
        process.stdout.write(`${JSON.stringify(planJson(plan, { hours, users, alreadyClaimed, rate: config.rate, spreadSeconds: spread, ms: Date.now() - started, ...broadcastKeys }))}\n`);
        return;
      }
      const out: string[] = [];
      out.push(`${formatCount(users.scheduled)} users scheduled (${formatCount(users.documents)} documents: ${formatCount(users.inactive)} inactive or unsubscribed, ${formatCount(users.invalid)} invalid, ${formatCount(users.suppressed)} suppressed)`);
      out.push(`rate ${describeRate(config.rate)}`);
      out.push(`${formatCount(plan.total)} sends due from ${new Date(plan.fromMs).toISOString().slice(0, 16)}Z over ${hours} h${alreadyClaimed > 0 ? ` (not counting ${formatCount(alreadyClaimed)} already claimed: sent or being sent)` : ''}${withWaves === undefined ? '' : `, ${formatCount(broadcastTotal)} of them to local-time broadcasts`}`);
      out.push(...waveSummaryLines(waves.summaries));
      out.push('');
      out.push(terminalChart(plan, Math.min(96, (process.stdout.columns ?? 100) - 10)));
      out.push('');
      out.push(plan.peaks.length > 0 ? 'peak minutes:' : 'nothing is due in this window');
      for (const line of peakLines(plan, unlimited)) out.push(`  ${line}`);
      const perDay = config.rate.perDay;
      if (perDay && hours >= 24) {
        const day = plan.counts.slice(0, 1440).reduce((a, b) => a + b, 0);
        if (day > perDay) out.push(`warning: ${formatCount(day)} sends in the first 24 h exceed rate.perDay (${formatCount(perDay)}); the rest wait for the next day's budget`);
      }
      out.push(...collisionLines(collisions, config.rate));
      if (opts.svg !== undefined) out.push(`chart written to ${opts.svg}`);
      process.stdout.write(`${out.join('\n')}\n`);
    });
}

/** Fails fast (exit 73) when FILE's folder does not exist or cannot be written, or FILE is a folder. */
function checkWritable(file: string): void {
  const path = resolve(file);
  try {
    accessSync(dirname(path), constants.W_OK);
    if (statSync(path, { throwIfNoEntry: false })?.isDirectory()) throw new MailwheelError(ErrorCodes.CANNOT_WRITE, `--svg: cannot write ${file}: it is a directory`);
  } catch (err) {
    if (err instanceof MailwheelError) throw err;
    throw new MailwheelError(ErrorCodes.CANNOT_WRITE, `--svg: cannot write ${file}: ${systemErrorLine(err) ?? String(err)}`);
  }
}

function writeOutput(file: string, text: string): void {
  try {
    writeFileSync(file, text);
  } catch (err) {
    throw new MailwheelError(ErrorCodes.CANNOT_WRITE, `--svg: cannot write ${file}: ${systemErrorLine(err) ?? String(err)}`);
  }
}
