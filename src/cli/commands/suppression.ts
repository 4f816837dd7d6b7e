/**
 * `mailwheel suppression list | add | remove | import FILE | export [FILE]`: the suppression list
 * as an operator tool (README "Suppression list"). Each reads and writes the suppression
 * collection directly; a running daemon holds the list in memory and sees a change at its next
 * reload (the `userSync` entry of schedules.json), which every command that changes the list says.
 *
 * Import reads the file twice: once to check it (a file the CSV parser cannot read imports
 * nothing), then to import the good rows in batches. A refused row is named with its line; the
 * others are imported and the command exits 1 so a script notices.
 */
import { createReadStream, createWriteStream, renameSync, rmSync, statSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { once } from 'node:events';
import { basename, dirname, join } from 'node:path';
import { Option, type Command } from 'commander';
import { withStores, type Stores } from '../../app/stores.js';
import type { Config, Schedules } from '../../config/schema.js';
import { ErrorCodes, MailwheelError } from '../../errors.js';
import { systemClock } from '../../ports/clock.js';
import { SUPPRESSION_REASONS, type SuppressionImport, type SuppressionImportResult, type SuppressionReason, type SuppressionRecord, type SuppressionScope } from '../../ports/index.js';
import { badArgument, configFor, parsePositiveInt } from '../context.js';
import { formatCount } from '../format.js';
import { systemErrorLine } from '../main-errors.js';
import { addressProblem, csvHeader, csvRows, jsonRecord, readImport, type ImportItem, type Refusal } from '../suppression-csv.js';

/**
 * Rows handed to the store at a time (it inserts them 1,000 per `insertMany`): large, since the
 * store may scan the collection once per call to learn which addresses exist (about 20 MB).
 */
const IMPORT_BATCH = 100_000;
const LIST_DEFAULT_LIMIT = 100;

export function registerSuppression(program: Command): void {
  const cmd = program.command('suppression').description('the suppression list: addresses mailwheel never mails (list, add, remove, import, export)');
  cmd
    .command('list')
    .description(`suppressed addresses (the first ${LIST_DEFAULT_LIMIT} unless --limit; export writes them all)`)
    .addOption(new Option('--reason <reason>', 'only this reason').choices(SUPPRESSION_REASONS))
    .option('--limit <n>', 'at most this many', String(LIST_DEFAULT_LIMIT))
    .option('--json', 'one JSON object per line')
    .action(async (opts: { reason?: SuppressionReason; limit: string; json?: boolean }, c: Command) => {
      const limit = parsePositiveInt(opts.limit, '--limit');
      const { config } = configFor(c);
      await withStores(config, (stores) => list(stores, { limit, json: opts.json === true, ...(opts.reason === undefined ? {} : { reason: opts.reason }) }));
    });
  cmd
    .command('add <address>')
    .description('suppress an address (source "operator")')
    .addOption(new Option('--reason <reason>', 'why').choices(SUPPRESSION_REASONS).default('manual'))
    .addOption(new Option('--scope <scope>', 'what it stops: all mail, or broadcasts only').choices(['all', 'marketing']).default('all'))
    .option('--detail <text>', 'a note kept with it')
    .option('--json', 'print the result as JSON')
    .action(async (address: string, opts: { reason: SuppressionReason; scope: SuppressionScope; detail?: string; json?: boolean }, c: Command) => {
      const problem = addressProblem(address.trim());
      if (problem !== undefined) throw badArgument(problem);
      const loaded = configFor(c);
      await withStores(loaded.config, (stores) => add(stores, address, opts, loaded.schedules));
    });
  cmd
    .command('remove <address>')
    .description('lift the suppression of an address (its bounce count is kept)')
    .option('--json', 'print the result as JSON')
    .action(async (address: string, opts: { json?: boolean }, c: Command) => {
      const loaded = configFor(c);
      await withStores(loaded.config, (stores) => remove(stores, address, opts.json === true, loaded.schedules));
    });
  cmd
    .command('import <file>')
    .description('suppress every address of a CSV file (address[,reason,source,time,scope]); refused rows are named by line, the rest imported')
    .option('--json', 'print the counts and the refused rows as JSON')
    .action(async (file: string, opts: { json?: boolean }, c: Command) => {
      const loaded = configFor(c);
      await importFile(loaded.config, file, opts.json === true, loaded.schedules);
    });
  cmd
    .command('export [file]')
    .description('write every suppression as CSV (address,reason,source,time,scope) to FILE or stdout')
    .option('--json', 'one JSON object per line instead of CSV')
    .action(async (file: string | undefined, opts: { json?: boolean }, c: Command) => {
      const { config } = configFor(c);
      await withStores(config, (stores) => exportAll(stores, file, opts.json === true));
    });
}

/** When a running daemon sees a change: its next reload of the list. */
function reloadNote(schedules: Schedules, what: string): string {
  const s = schedules.userSync;
  return `a running daemon ${what} from its next suppression reload (schedules.json userSync "${s.cron}" ${s.timezone}); one started from now loads the list at start`;
}

function describe(r: SuppressionRecord): string {
  return `${r.reason}${r.source === undefined ? '' : ` from ${r.source}`}, ${r.scope === 'all' ? 'all mail' : 'broadcasts only'}, since ${r.updatedAt.toISOString()}`;
}

async function list(stores: Stores, q: { reason?: SuppressionReason; limit: number; json: boolean }): Promise<void> {
  // One more than asked, to tell whether the list goes on.
  const query = { limit: q.limit + 1, ...(q.reason === undefined ? {} : { reason: q.reason }) };
  const out = stdoutSink();
  let shown = 0;
  let more = false;
  if (!q.json) await out.write(`${'time'.padEnd(24)}  ${'reason'.padEnd(11)}  ${'scope'.padEnd(9)}  ${'source'.padEnd(10)}  address\n`);
  for await (const batch of stores.suppressions.list(query)) {
    const room = batch.slice(0, q.limit - shown);
    if (room.length < batch.length) more = true;
    shown += room.length;
    await out.write(q.json ? room.map((r) => `${JSON.stringify(jsonRecord(r))}\n`).join('') : room.map(listLine).join(''));
  }
  if (!q.json) process.stderr.write(`${formatCount(shown)} shown${more ? `; more not shown (--limit, or mailwheel suppression export)` : ''}\n`);
}

function listLine(r: SuppressionRecord): string {
  const detail = r.detail === undefined ? '' : `  (${oneLine(r.detail).slice(0, 80)})`;
  return `${r.updatedAt.toISOString().padEnd(24)}  ${r.reason.padEnd(11)}  ${r.scope.padEnd(9)}  ${(r.source ?? '-').padEnd(10)}  ${r.email}${detail}\n`;
}

async function add(stores: Stores, address: string, o: { reason: SuppressionReason; scope: SuppressionScope; detail?: string; json?: boolean }, schedules: Schedules): Promise<void> {
  const before = await stores.suppressions.find(address);
  // Suppressed at least this widely already: its record (a complaint, a bounce) is worth more than "manual".
  const unchanged = before !== undefined && (before.scope === 'all' || o.scope === 'marketing');
  if (!unchanged) await stores.suppressions.suppress({ email: address, reason: o.reason, source: 'operator', scope: o.scope, ...(o.detail === undefined ? {} : { detail: o.detail }) });
  const after = unchanged ? before : await stores.suppressions.find(address);
  const result = unchanged ? 'unchanged' : before === undefined ? 'added' : 'widened';
  if (o.json) {
    process.stdout.write(`${JSON.stringify({ result, suppression: after === undefined ? null : jsonRecord(after) })}\n`);
    return;
  }
  const email = after?.email ?? address;
  if (unchanged) process.stdout.write(`${email} is already suppressed (${describe(before)}); left as it is\n`);
  else process.stdout.write(`${result === 'added' ? 'suppressed' : 'widened to all mail:'} ${email} (${after === undefined ? o.reason : describe(after)})\n${reloadNote(schedules, 'skips it')}\n`);
}

async function remove(stores: Stores, address: string, json: boolean, schedules: Schedules): Promise<void> {
  const was = await stores.suppressions.remove(address);
  if (json) {
    process.stdout.write(`${JSON.stringify({ result: was === undefined ? 'not-suppressed' : 'removed', was: was === undefined ? null : jsonRecord(was) })}\n`);
    return;
  }
  if (was === undefined) {
    process.stdout.write(`${address.trim().toLowerCase()} is not suppressed; nothing to do\n`);
    return;
  }
  const lines = [`lifted the suppression of ${was.email} (was: ${describe(was)})`, reloadNote(schedules, 'mails it again')];
  // The recipient asked (or complained): an operator lifting that should know it is on them.
  if (was.reason === 'unsubscribe' || was.reason === 'complaint') lines.push(`note: it was ${was.reason === 'unsubscribe' ? 'an unsubscribe' : 'a complaint'}: mail it again only with the recipient's consent`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function importFile(config: Config, file: string, json: boolean, schedules: Schedules): Promise<void> {
  // One instant for every row without a time, so both readings of the file agree.
  const at = new Date(systemClock.now());
  const now = () => at;
  // First reading: checks the whole file before anything is written, and before connecting.
  const refused: Refusal[] = [];
  let good = 0;
  for await (const item of fileRows(file, now)) {
    if (item.kind === 'row') good++;
    else refused.push(item.refusal);
  }
  if (!json) for (const r of refused) process.stderr.write(`mailwheel: ${file} line ${r.line}: ${r.problem}\n`);
  const totals: SuppressionImportResult = { added: 0, widened: 0, alreadySuppressed: 0 };
  await withStores(config, async (stores) => {
    let batch: SuppressionImport[] = [];
    const flush = async () => {
      const r = await stores.suppressions.importMany(batch);
      totals.added += r.added;
      totals.widened += r.widened;
      totals.alreadySuppressed += r.alreadySuppressed;
      batch = [];
    };
    for await (const item of fileRows(file, now)) {
      if (item.kind !== 'row') continue;
      batch.push(item.entry);
      if (batch.length >= IMPORT_BATCH) await flush();
    }
    if (batch.length > 0) await flush();
  });
  if (refused.length > 0) process.exitCode = 1;
  if (json) {
    process.stdout.write(`${JSON.stringify({ file, rows: good + refused.length, ...totals, refused: refused.length, refusals: refused })}\n`);
    return;
  }
  const counts = [`${formatCount(totals.added)} added`, `${formatCount(totals.alreadySuppressed)} already suppressed`, `${formatCount(refused.length)} refused${refused.length > 0 ? ' (listed above)' : ''}`];
  if (totals.widened > 0) counts.splice(1, 0, `${formatCount(totals.widened)} widened to all mail`);
  process.stdout.write(`${file}: ${formatCount(good + refused.length)} row${good + refused.length === 1 ? '' : 's'}: ${counts.join(', ')}\n`);
  if (totals.added + totals.widened > 0) process.stdout.write(`${reloadNote(schedules, 'skips the new ones')}\n`);
}

/** The file's rows; a file that cannot be read as a whole is one error naming it (nothing imported). */
async function* fileRows(file: string, now: () => Date): AsyncGenerator<ImportItem> {
  try {
    yield* readImport(createReadStream(file), now);
  } catch (err) {
    if (err instanceof MailwheelError && err.code === ErrorCodes.BAD_ARGUMENT) throw badArgument(`${file}: ${err.message}; nothing imported`);
    throw err;
  }
}

async function exportAll(stores: Stores, file: string | undefined, json: boolean): Promise<void> {
  const out = file === undefined ? stdoutSink() : await fileSink(file);
  let n = 0;
  try {
    if (!json) await out.write(csvHeader());
    for await (const batch of stores.suppressions.list()) {
      n += batch.length;
      await out.write(json ? batch.map((r) => `${JSON.stringify(jsonRecord(r))}\n`).join('') : csvRows(batch));
    }
    await out.close();
  } catch (err) {
    out.abort();
    throw err;
  }
  process.stderr.write(`exported ${formatCount(n)} suppression${n === 1 ? '' : 's'}${file === undefined ? '' : ` to ${file}`}\n`);
}

interface Sink {
  /** Resolves once the stream can take more (backpressure). */
  write(text: string): Promise<void>;
  close(): Promise<void>;
  /** After a failure: leaves no half-written file behind. */
  abort(): void;
}

function stdoutSink(): Sink {
  return {
    write: (text) => drained(process.stdout, text),
    close: () => Promise.resolve(),
    abort: () => undefined,
  };
}

/**
 * Writes beside `file` and renames it into place at the end, so an export that fails half-way
 * never leaves a file that looks complete. A file that cannot be created is exit 73.
 */
async function fileSink(file: string): Promise<Sink> {
  const cannot = (err: unknown) => new MailwheelError(ErrorCodes.CANNOT_WRITE, `cannot write ${file}: ${systemErrorLine(err) ?? String(err)}`);
  if (statSync(file, { throwIfNoEntry: false })?.isDirectory()) throw new MailwheelError(ErrorCodes.CANNOT_WRITE, `cannot write ${file}: it is a directory`);
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  const ws = createWriteStream(tmp);
  try {
    await once(ws, 'open');
  } catch (err) {
    throw cannot(err);
  }
  return {
    write: (text) => drained(ws, text).catch((err: unknown) => Promise.reject(cannot(err))),
    close: async () => {
      ws.end();
      await once(ws, 'finish').catch((err: unknown) => Promise.reject(cannot(err)));
      renameSync(tmp, file);
    },
    abort: () => {
      ws.destroy();
      rmSync(tmp, { force: true });
    },
  };
}

/** Writes and waits for 'drain' when the stream's buffer is full; rejects on a stream error. */
function drained(stream: Writable, text: string): Promise<void> {
  if (text === '') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onError = (err: unknown) => reject(err instanceof Error ? err : new Error(String(err)));
    stream.once('error', onError);
    const done = () => {
      stream.off('error', onError);
      resolve();
    };
    if (stream.write(text)) done();
    else stream.once('drain', done);
  });
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}
