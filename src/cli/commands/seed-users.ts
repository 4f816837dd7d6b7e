/**
 * `mailwheel seed-users N`: writes test users into the configured users collection (the only
 * place mailwheel writes there). The documents come from the pure generator in
 * `src/seed/generate-users.ts`; this file only parses options, batches the inserts and reports.
 * `--seed` reproduces a data set; without it a random seed is used and printed.
 */
import type { Command } from 'commander';
import { openStores } from '../../app/stores.js';
import { databaseName } from '../../config/load.js';
import { generateUsers, planCounts, SEED_MARK_FIELD, SEED_MARK_VALUE, seedFromString, type SeedKind } from '../../seed/generate-users.js';
import { badArgument, configFor, parsePositiveInt } from '../context.js';
import { formatCount } from '../format.js';

interface SeedOpts {
  drop?: boolean;
  yes?: boolean;
  json?: boolean;
  invalidRatio: string;
  inactiveRatio: string;
  batch: string;
  seed?: string;
  soon?: string;
}

export function registerSeedUsers(program: Command): void {
  program
    .command('seed-users <n>')
    .description('insert N realistic test users into the configured users collection (test and demo data)')
    .option('--drop', 'drop the users collection first; refused (exit 64) when it holds documents seed-users did not create, unless --yes')
    .option('--yes', 'with --drop: drop even documents seed-users did not create (real users)')
    .option('--json', 'print the result as one JSON object on stdout')
    .option('--invalid-ratio <r>', 'share 0..1 of malformed documents (bad email, zone, time, CR/LF...)', '0')
    .option('--inactive-ratio <r>', 'share 0..1 of inactive or unsubscribed users', '0.05')
    .option('--batch <n>', 'documents per insertMany', '1000')
    .option('--seed <s>', 'PRNG seed (integer or text) to reproduce a data set; default random, printed')
    .option('--soon <minutes>', "demo: each user's first time falls in the next MINUTES minutes of their own zone")
    .action(async (nArg: string, opts: SeedOpts, cmd: Command) => {
      const count = parsePositiveInt(nArg, '<n>');
      const invalidRatio = parseRatio(opts.invalidRatio, '--invalid-ratio');
      const inactiveRatio = parseRatio(opts.inactiveRatio, '--inactive-ratio');
      if (invalidRatio + inactiveRatio > 1) throw badArgument(`--invalid-ratio + --inactive-ratio must not exceed 1 (got ${invalidRatio + inactiveRatio})`);
      const batchSize = parsePositiveInt(opts.batch, '--batch');
      const soonMinutes = opts.soon === undefined ? undefined : parsePositiveInt(opts.soon, '--soon');
      if (soonMinutes !== undefined && soonMinutes > 1440) throw badArgument(`--soon: "${opts.soon}" is more than a day (1440 minutes)`);
      const seed = opts.seed === undefined ? Math.floor(Math.random() * 0x1_0000_0000) : seedFromString(opts.seed);

      const { config } = configFor(cmd);
      const store = await openStores(config);
      try {
        const users = store.seeder;
        const where = `${databaseName(config.mongodb.uri)}.${config.users.collection}`;
        let dropped: { documents: number; foreign: number } | undefined;
        if (opts.drop) {
          // The README points MONGODB_URI at the application's database: dropping its users
          // collection must never take real users by accident. Seeded documents carry a mark;
          // anything else is someone's data.
          const documents = await users.count();
          const foreign = documents === 0 ? 0 : await users.count({ field: SEED_MARK_FIELD, value: SEED_MARK_VALUE });
          if (foreign > 0 && opts.yes !== true) {
            throw badArgument(
              `seed-users --drop: refusing to drop ${where}: it holds ${formatCount(foreign)} document${foreign === 1 ? '' : 's'} that seed-users did not create (of ${formatCount(documents)}); nothing was changed. ` +
                'Check MONGODB_URI and users.collection, or add --yes to delete them too.',
            );
          }
          await users.drop();
          dropped = { documents, foreign };
          if (documents > 0) process.stderr.write(`dropped ${where}: ${formatCount(documents)} documents (${formatCount(foreign)} not created by seed-users)\n`);
        }
        // Continue the numbering of an earlier run so emails stay unique without --drop. A count
        // is a full scan on FerretDB, but once per run is cheap next to the inserts.
        const firstIndex = opts.drop ? 0 : await users.count();
        process.stderr.write(`seeding ${formatCount(count)} users into ${where} (seed ${seed}${soonMinutes === undefined ? '' : `, first times in the next ${soonMinutes} min`})\n`);

        const nowMs = Date.now();
        const progress = new Progress(count);
        const inserted: Record<SeedKind, number> = { active: 0, inactive: 0, invalid: 0 };
        const failures: string[] = [];
        let docs: Array<Record<string, unknown>> = [];
        let kinds: SeedKind[] = [];
        const flush = async (): Promise<void> => {
          const { ok, errors } = await users.insert(docs);
          // The first few server messages are enough to say what went wrong.
          for (const e of errors) if (failures.length < 10) failures.push(e);
          for (const [i, kind] of kinds.entries()) if (ok[i]) inserted[kind]++;
          progress.update(progress.done + docs.length);
          docs = [];
          kinds = [];
        };
        for (const u of generateUsers({ count, seed, inactiveRatio, invalidRatio, nowMs, fields: config.users.fields, soonMinutes, firstIndex })) {
          docs.push(u.doc);
          kinds.push(u.kind);
          if (docs.length >= batchSize) await flush();
        }
        if (docs.length > 0) await flush();
        progress.finish();

        const seconds = (Date.now() - nowMs) / 1000;
        const total = inserted.active + inserted.inactive + inserted.invalid;
        const rate = Math.round(total / Math.max(seconds, 0.001));
        const planned = planCounts(count, inactiveRatio, invalidRatio).total;
        if (opts.json) {
          const result = { database: databaseName(config.mongodb.uri), collection: config.users.collection, seed, seeded: total, ...inserted, failed: planned - total, firstError: failures[0] ?? null, dropped: dropped ?? null, seconds: Math.round(seconds * 1000) / 1000, usersPerSecond: rate };
          process.stdout.write(`${JSON.stringify(result)}\n`);
        } else {
          process.stdout.write(`seeded ${formatCount(total)} users (${formatCount(inserted.active)} active, ${formatCount(inserted.inactive)} inactive, ${formatCount(inserted.invalid)} invalid) in ${seconds.toFixed(1)} s — ${formatCount(rate)} users/s\n`);
        }
        if (failures.length > 0) {
          process.stderr.write(`seed-users: ${formatCount(planned - total)} of ${formatCount(planned)} documents were not inserted; first error: ${failures[0]}\n`);
          process.exitCode = 1;
        }
      } finally {
        await store.close();
      }
    });
}

function parseRatio(value: string, option: string): number {
  const r = Number(value);
  if (value.trim() === '' || !Number.isFinite(r) || r < 0 || r > 1) throw badArgument(`${option}: "${value}" is not a number between 0 and 1`);
  return r;
}

/** Progress on stderr: rewritten in place on a terminal, else one line per ~10 % (logs, CI). */
class Progress {
  readonly #total: number;
  readonly #tty = process.stderr.isTTY === true;
  readonly #started = Date.now();
  #done = 0;
  #nextDecile = 1;

  constructor(total: number) {
    this.#total = total;
  }

  get done(): number {
    return this.#done;
  }

  update(done: number): void {
    this.#done = done;
    if (this.#tty) {
      // \x1b[K clears what a longer earlier line left behind.
      process.stderr.write(`\r${this.#line()}\x1b[K`);
      return;
    }
    const decile = Math.floor((done * 10) / this.#total);
    if (decile >= this.#nextDecile) {
      this.#nextDecile = decile + 1;
      process.stderr.write(`${this.#line()}\n`);
    }
  }

  finish(): void {
    if (this.#tty) process.stderr.write('\n');
  }

  #line(): string {
    const seconds = Math.max((Date.now() - this.#started) / 1000, 0.001);
    const pct = Math.floor((this.#done * 100) / this.#total);
    return `seeding: ${formatCount(this.#done)}/${formatCount(this.#total)} (${pct} %) ${formatCount(this.#done / seconds)} users/s`;
  }
}
