/**
 * The suppression list as a file: the CSV an operator imports and exports (`mailwheel suppression
 * import | export`), columns `address,reason,source,time,scope`. Parsing and quoting are the csv
 * project's (`csv-parse`, `csv-stringify`); this module decides what a row means and what is
 * wrong with a bad one, naming its line.
 *
 * Import rules (README "Suppression list"): a header row names the columns (any order; `email`
 * is accepted for `address`); a file whose first cell is an address has no header and its columns
 * are the export's, in order, as many as given. Only `address` is required: an empty or missing
 * reason is `manual`, source `import`, time the moment of the import, scope `all`. A row that is
 * wrong is refused with its line number and the rest of the file is imported.
 */
import type { Readable } from 'node:stream';
import { parse, type InfoRecord, type Options } from 'csv-parse';
import { stringify } from 'csv-stringify/sync';
import { addressProblemOf } from '../core/validate-user.js';
import { normaliseEmail } from '../core/suppression-list.js';
import { SUPPRESSION_REASONS, type SuppressionImport, type SuppressionReason, type SuppressionRecord, type SuppressionScope } from '../ports/index.js';
import { badArgument } from './context.js';

/** The export's columns, in order: the issue's four, then the scope (so a round trip keeps it). */
export const CSV_COLUMNS = ['address', 'reason', 'source', 'time', 'scope'] as const;
type Column = (typeof CSV_COLUMNS)[number];
const ALIASES: Record<string, Column> = { email: 'address' };
const SCOPES: readonly SuppressionScope[] = ['all', 'marketing'];
const MAX_SOURCE = 100;
/** Longer cells are not quoted whole in a message. */
const MAX_ADDRESS = 254;
// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\u0000-\u001f\u007f]/;
/** ISO 8601 as `Date.parse` reads it: a date, or a date and time (`2026-03-08T09:00:00Z`). */
const ISO_RE = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/;

/** The header row of an export. */
export function csvHeader(): string {
  return stringify([[...CSV_COLUMNS]]);
}

/** Rows of an export, quoted where a value needs it. */
export function csvRows(records: readonly SuppressionRecord[]): string {
  return stringify(records.map((r) => [r.email, r.reason, r.source ?? '', r.updatedAt.toISOString(), r.scope]));
}

/** One record as a JSON object (`--json` of list and export): the CSV's names, plus the detail. */
export function jsonRecord(r: SuppressionRecord): Record<string, string> {
  const o: Record<string, string> = { address: r.email, reason: r.reason, source: r.source ?? '', time: r.updatedAt.toISOString(), scope: r.scope };
  if (r.detail !== undefined) o['detail'] = r.detail;
  return o;
}

/** A line of the file that was not imported, and why. */
export interface Refusal {
  line: number;
  problem: string;
}

interface NumberedRecord {
  cells: string[];
  /** The record's first line in the file. */
  line: number;
}

export type ImportItem = { kind: 'row'; line: number; entry: SuppressionImport } | { kind: 'refused'; refusal: Refusal };

/**
 * Reads an import file record by record. Throws a usage error (exit 64) for a header that names
 * no address column or a column it does not know (a typo must not quietly turn every reason into
 * `manual`), and for a file the CSV parser cannot read on (an unclosed or stray quote: where the
 * next record starts cannot be known, so nothing after it could be trusted), naming the line.
 * The command reads the file once to check it before importing anything.
 */
export async function* readImport(input: Readable, now: () => Date): AsyncGenerator<ImportItem> {
  // Each record's first line, worked out as the parser emits it: where the one before ended,
  // plus the blank lines skipped since (a quoted field may span lines).
  let lastLine = 0;
  let blankSeen = 0;
  const options: Options<NumberedRecord, string[]> = {
    bom: true,
    relax_column_count: true,
    skip_empty_lines: true,
    on_record: (cells: string[], ctx: InfoRecord) => {
      const line = lastLine + 1 + (ctx.empty_lines - blankSeen);
      lastLine = ctx.lines;
      blankSeen = ctx.empty_lines;
      return { cells, line };
    },
  };
  // parse()'s overloads type records as string[]; on_record makes them NumberedRecord.
  const parser = input.pipe(parse(options as unknown as Options));
  input.on('error', (err) => parser.destroy(err));
  let columns: readonly Column[] | undefined;
  try {
    for await (const { cells, line } of parser as AsyncIterable<NumberedRecord>) {
      if (columns === undefined) {
        const header = headerOf(cells);
        if (header !== undefined) {
          columns = header;
          continue;
        }
        if (!(cells[0] ?? '').includes('@')) {
          throw badArgument(`line ${line}: the first row is neither a header naming an "address" column (columns: ${CSV_COLUMNS.join(', ')}) nor an address`);
        }
        columns = CSV_COLUMNS;
      }
      yield rowItem(cells, columns, line, now);
    }
  } catch (err) {
    const e = err as Error & { code?: string; lines?: number };
    if (typeof e.code !== 'string' || !e.code.startsWith('CSV_')) throw err;
    // An unclosed quote is found at the end of the file: report the record it opened.
    const line = e.code === 'CSV_QUOTE_NOT_CLOSED' ? lastLine + 1 : (e.lines ?? lastLine + 1);
    throw badArgument(`line ${line}: ${e.message.replace(/ at line \d+/, '')}`);
  }
}

/** The columns a header names, undefined when the row is not a header; throws for a bad one. */
function headerOf(record: readonly string[]): Column[] | undefined {
  const names = record.map((c) => c.trim().toLowerCase());
  const known = (n: string): Column | undefined => ALIASES[n] ?? CSV_COLUMNS.find((c) => c === n);
  if (!names.some((n) => known(n) !== undefined)) return undefined;
  const unknown = names.filter((n) => known(n) === undefined);
  if (unknown.length > 0) throw badArgument(`line 1: unknown column${unknown.length > 1 ? 's' : ''} ${unknown.map((n) => JSON.stringify(n)).join(', ')} (known: ${CSV_COLUMNS.join(', ')})`);
  const cols = names.map((n) => known(n) as Column);
  const twice = cols.find((c, i) => cols.indexOf(c) !== i);
  if (twice !== undefined) throw badArgument(`line 1: column "${twice}" named twice`);
  if (!cols.includes('address')) throw badArgument(`line 1: the header names no "address" column (got: ${record.join(', ')})`);
  return cols;
}

function rowItem(record: readonly string[], columns: readonly Column[], line: number, now: () => Date): ImportItem {
  const refuse = (problem: string): ImportItem => ({ kind: 'refused', refusal: { line, problem } });
  // Fewer fields is a row whose last cells were left empty (some spreadsheets drop them); more
  // is a value with an unquoted comma, which would shift every column after it.
  if (record.length > columns.length) return refuse(`${record.length} fields, more than the ${columns.length} columns (${columns.join(',')}): a value with a comma must be quoted`);
  const cell = (c: Column): string => {
    const i = columns.indexOf(c);
    return i < 0 ? '' : (record[i] ?? '').trim();
  };
  const problem = addressProblem(cell('address'));
  if (problem !== undefined) return refuse(problem);
  const reason = cell('reason') || 'manual';
  if (!isReason(reason)) return refuse(`reason ${JSON.stringify(reason)} is not one of ${SUPPRESSION_REASONS.join(', ')}`);
  const source = cell('source') || 'import';
  if (CONTROL_RE.test(source) || source.length > MAX_SOURCE) return refuse(`source ${JSON.stringify(source.slice(0, 40))}: control characters or longer than ${MAX_SOURCE} characters`);
  const scope = cell('scope') || 'all';
  if (!SCOPES.includes(scope as SuppressionScope)) return refuse(`scope ${JSON.stringify(scope)} is not one of ${SCOPES.join(', ')}`);
  const time = cell('time');
  const at = time === '' ? now() : parseTime(time);
  if (at === undefined) return refuse(`time ${JSON.stringify(time)} is not an ISO 8601 date or instant (e.g. 2026-03-08T09:00:00Z)`);
  return { kind: 'row', line, entry: { email: normaliseEmail(cell('address')), reason, source, scope: scope as SuppressionScope, at } };
}

function parseTime(text: string): Date | undefined {
  if (!ISO_RE.test(text)) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : new Date(ms);
}

export function isReason(text: string): text is SuppressionReason {
  return (SUPPRESSION_REASONS as readonly string[]).includes(text);
}

/**
 * What is wrong with an address, or undefined. The sending path's own rule (validate-user.ts), so
 * an address is accepted here exactly when mailwheel could mail it: suppressing one it never
 * could would be a silent no-op.
 */
export function addressProblem(address: string): string | undefined {
  if (address === '') return 'no address';
  if (address.length > MAX_ADDRESS) return `address ${JSON.stringify(`${address.slice(0, 40)}...`)}: longer than ${MAX_ADDRESS} characters`;
  const problem = addressProblemOf(address);
  return problem === undefined ? undefined : `address ${JSON.stringify(address)}: ${problem}`;
}
