/**
 * Broadcast segments: a MongoDB filter over the users collection, written by an operator as JSON
 * (`--segment '{"plan": "pro"}'`), checked here against an allow-list of query operators before
 * anything is written. Pure: no I/O, no driver types.
 *
 * Why an allow-list and not a deny-list: the server runs whatever operator it is given, and some
 * run code (`$where`, `$function`, `$accumulator`) or evaluate aggregation expressions (`$expr`)
 * with their own, larger surface; a new server version may add more. Only plain comparisons,
 * logic and array/element tests pass; anything else is refused naming the operator and where it
 * was found.
 *
 * Decisions:
 * - `$regex` is allowed (segments by email domain are common), as a string of at most
 *   {@link MAX_REGEX} characters with options from `imsx` only; it must compile as a JavaScript
 *   regular expression, which catches typos early (MongoDB's PCRE accepts a little more).
 * - Dates: JSON has none, so `{"$date": "2026-01-01T00:00:00Z"}` (MongoDB Extended JSON) is read
 *   as a date value; the stored text keeps the `$date` form and is parsed again at run time.
 * - Every filter is combined with `active: true` and `unsubscribed != true` (mapped field names)
 *   by {@link recipientFilter}; the suppression list is applied per user while sending.
 * - FerretDB v1 (the test server) evaluates `$elemMatch` with a sub-document query wrongly (it
 *   matches nothing); MongoDB is right. `--dry-run` shows the count the server gives.
 * - `__proto__`, `constructor` and `prototype` are refused as field names (or parts of a dotted
 *   one) anywhere, naming the key and where: written into a plain object, `__proto__` sets the
 *   prototype instead of a condition, so `{"__proto__": {"plan": "pro"}}` once became the empty
 *   filter (everyone). Every object built here also comes from `Object.fromEntries`, which
 *   defines own properties whatever the key, so no key can reach a prototype even if the
 *   refusal were removed.
 * - Unsubscribed means anything but `false`, `null` or absent (see {@link recipientFilter}).
 */
import { ErrorCodes, MailwheelError } from '../errors.js';

/** A validated filter document; values may hold `Date`s (from `$date`). */
export type SegmentFilter = Record<string, unknown>;

export interface Segment {
  filter: SegmentFilter;
  /** Canonical JSON of the segment as given (with `$date` wrappers): what is stored. */
  json: string;
}

/** A refused segment: `operator` (when one is to blame) and `path` say what and where. */
export class SegmentError extends MailwheelError {
  readonly operator: string | undefined;
  readonly path: string;
  constructor(message: string, path: string, operator?: string) {
    super(ErrorCodes.BAD_ARGUMENT, `segment: ${message}${path === '' ? '' : ` (at ${path})`}`);
    this.name = 'SegmentError';
    this.path = path;
    this.operator = operator;
  }
}

/** Combine filters at the top level of a query. */
const LOGICAL = new Set(['$and', '$or', '$nor']);
/** Apply to one field's value. */
const FIELD_OPERATORS = new Set(['$eq', '$ne', '$gt', '$gte', '$lt', '$lte', '$in', '$nin', '$exists', '$not', '$regex', '$options', '$elemMatch', '$size', '$all', '$type']);
/** Mentioned by name in the refusal, since they are the ones people try. */
const CODE_RUNNING = new Set(['$where', '$function', '$accumulator', '$expr']);
const BSON_TYPES = new Set([
  'double', 'string', 'object', 'array', 'binData', 'objectId', 'bool', 'date', 'null', 'regex', 'int', 'timestamp', 'long', 'decimal', 'number',
]);

export const ALLOWED_OPERATORS: readonly string[] = [...LOGICAL, ...FIELD_OPERATORS];
/**
 * Longest accepted segment text: above a command line's 128 KiB per argument (Linux), so a long
 * `$in` list fits through `--segment-file`, and far below MongoDB's 16 MB document limit (the
 * broadcast document stores it, the query carries it).
 */
export const MAX_SEGMENT_CHARS = 1024 * 1024;
export const MAX_DEPTH = 16;
export const MAX_REGEX = 256;

/**
 * Parses and validates an operator's segment. An empty string or `{}` means every active user.
 * @throws SegmentError (code BAD_ARGUMENT) naming the operator or the problem.
 */
export function parseSegment(text: string): Segment {
  const trimmed = text.trim();
  if (trimmed.length > MAX_SEGMENT_CHARS) throw new SegmentError(`longer than ${MAX_SEGMENT_CHARS} characters`, '');
  if (trimmed === '') return { filter: {}, json: '{}' };
  let raw: unknown;
  try {
    raw = JSON.parse(trimmed);
  } catch (err) {
    throw new SegmentError(`not valid JSON: ${(err as Error).message}`, '');
  }
  return { filter: validateSegment(raw), json: JSON.stringify(raw) };
}

/** Validates a parsed segment and returns it with `$date` wrappers turned into dates. */
export function validateSegment(raw: unknown): SegmentFilter {
  return filterDoc(raw, '', 0);
}

/**
 * The query a broadcast runs: the segment, only active users, never the unsubscribed (mapped
 * field names). An empty segment adds nothing. Subscribed is `unsubscribed` false, null or
 * missing (`$in: [false, null]` matches a missing field too, on MongoDB and FerretDB): a value
 * such as `"true"`, `1` or `{}` keeps the user from mail (`$ne: true` once let them through).
 */
export function recipientFilter(segment: SegmentFilter, fields: { active: string; unsubscribed: string }): SegmentFilter {
  const base: SegmentFilter[] = [{ [fields.active]: true }, { [fields.unsubscribed]: { $in: [false, null] } }];
  return { $and: Object.keys(segment).length === 0 ? base : [...base, segment] };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function at(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path === '' ? key : `${path}.${key}`;
}

function depth(path: string, d: number): void {
  if (d > MAX_DEPTH) throw new SegmentError(`nested deeper than ${MAX_DEPTH} levels`, path);
}

function refuse(op: string, path: string): never {
  if (CODE_RUNNING.has(op)) throw new SegmentError(`operator ${op} is not allowed: it evaluates code or expressions on the server`, path, op);
  throw new SegmentError(`operator ${op} is not allowed (allowed: ${ALLOWED_OPERATORS.join(' ')})`, path, op);
}

/** A query document: field conditions and top-level `$and` / `$or` / `$nor`. */
function filterDoc(raw: unknown, path: string, d: number): SegmentFilter {
  depth(path, d);
  if (!isPlainObject(raw)) throw new SegmentError('must be a JSON object (a MongoDB filter)', path);
  const out: Array<[string, unknown]> = [];
  for (const [key, value] of Object.entries(raw)) {
    const here = at(path, key);
    if (key.startsWith('$')) {
      if (!LOGICAL.has(key)) refuse(key, here);
      if (!Array.isArray(value) || value.length === 0) throw new SegmentError(`${key} needs a non-empty array of filters`, here, key);
      out.push([key, value.map((v, i) => filterDoc(v, at(here, i), d + 1))]);
      continue;
    }
    fieldName(key, here);
    out.push([key, condition(value, here, d + 1)]);
  }
  return Object.fromEntries(out);
}

/** Names that mean something to a JavaScript object rather than to the query. */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

function fieldName(name: string, path: string): void {
  const parts = name.split('.');
  if (name === '' || name.includes('\0') || parts.some((p) => p === '' || p.startsWith('$'))) {
    throw new SegmentError(`bad field name ${JSON.stringify(name)}`, path);
  }
  if (parts.some((p) => FORBIDDEN_KEYS.has(p))) {
    throw new SegmentError(`field name ${JSON.stringify(name)} is not allowed (${[...FORBIDDEN_KEYS].join(', ')} are refused anywhere in a segment)`, path);
  }
}

/** A field's condition: an operator document (`{"$gt": 3}`) or a value to match exactly. */
function condition(raw: unknown, path: string, d: number): unknown {
  if (isOperatorDoc(raw, path)) return operatorDoc(raw, path, d);
  return literal(raw, path, d);
}

/** An object whose keys are all operators; a mix of operators and fields is refused. */
function isOperatorDoc(raw: unknown, path: string): raw is Record<string, unknown> {
  if (!isPlainObject(raw) || isDateWrapper(raw)) return false;
  const keys = Object.keys(raw);
  const ops = keys.filter((k) => k.startsWith('$')).length;
  if (ops > 0 && ops < keys.length) throw new SegmentError(`mixes operators and field names: ${keys.join(', ')}`, path);
  return ops > 0;
}

function operatorDoc(raw: Record<string, unknown>, path: string, d: number): SegmentFilter {
  depth(path, d);
  const out: Array<[string, unknown]> = [];
  for (const [op, value] of Object.entries(raw)) {
    const here = at(path, op);
    if (!FIELD_OPERATORS.has(op)) refuse(op, here);
    out.push([op, operand(op, value, raw, here, d + 1)]);
  }
  return Object.fromEntries(out);
}

function operand(op: string, value: unknown, doc: Record<string, unknown>, path: string, d: number): unknown {
  switch (op) {
    case '$eq':
    case '$ne':
    case '$gt':
    case '$gte':
    case '$lt':
    case '$lte':
      return literal(value, path, d);
    case '$in':
    case '$nin':
    case '$all':
      if (!Array.isArray(value)) throw new SegmentError(`${op} needs an array`, path, op);
      return value.map((v, i) => literal(v, at(path, i), d + 1));
    case '$exists':
      if (typeof value !== 'boolean') throw new SegmentError('$exists needs true or false', path, op);
      return value;
    case '$size':
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) throw new SegmentError('$size needs a non-negative integer', path, op);
      return value;
    case '$type':
      for (const t of Array.isArray(value) ? value : [value]) {
        if (!(typeof t === 'string' && BSON_TYPES.has(t)) && !(typeof t === 'number' && Number.isInteger(t))) {
          throw new SegmentError(`$type: unknown type ${JSON.stringify(t)}`, path, op);
        }
      }
      return value;
    case '$regex':
      return regex(value, Object.hasOwn(doc, '$options') ? doc['$options'] : undefined, path);
    case '$options':
      if (!Object.hasOwn(doc, '$regex')) throw new SegmentError('$options only goes with $regex', path, op);
      return value;
    case '$not':
      if (!isOperatorDoc(value, path)) throw new SegmentError('$not needs an operator document, e.g. {"$not": {"$gt": 5}}', path, op);
      return operatorDoc(value, path, d);
    case '$elemMatch':
      // Either conditions on the elements themselves ({"$gte": 80}) or a query on sub-documents.
      if (isOperatorDoc(value, path)) return operatorDoc(value, path, d);
      return filterDoc(value, path, d);
    default:
      return refuse(op, path);
  }
}

function regex(pattern: unknown, options: unknown, path: string): string {
  if (typeof pattern !== 'string') throw new SegmentError('$regex needs a string', path, '$regex');
  if (pattern.length > MAX_REGEX) throw new SegmentError(`$regex longer than ${MAX_REGEX} characters`, path, '$regex');
  if (options !== undefined && (typeof options !== 'string' || !/^[imsx]*$/.test(options))) {
    throw new SegmentError('$options may only hold the flags i, m, s, x', path, '$options');
  }
  try {
    new RegExp(pattern, typeof options === 'string' ? options.replace('x', '') : '');
  } catch (err) {
    throw new SegmentError(`$regex does not compile: ${(err as Error).message}`, path, '$regex');
  }
  return pattern;
}

function isDateWrapper(v: Record<string, unknown>): boolean {
  const keys = Object.keys(v);
  return keys.length === 1 && keys[0] === '$date';
}

/** A value to compare with: JSON scalars, arrays, sub-documents without operators, `$date`. */
function literal(raw: unknown, path: string, d: number): unknown {
  depth(path, d);
  if (raw === null || typeof raw === 'string' || typeof raw === 'boolean') return raw;
  if (typeof raw === 'number') {
    if (!Number.isFinite(raw)) throw new SegmentError('numbers must be finite', path);
    return raw;
  }
  if (Array.isArray(raw)) return raw.map((v, i) => literal(v, at(path, i), d + 1));
  if (isPlainObject(raw)) {
    if (isDateWrapper(raw)) {
      const ms = typeof raw['$date'] === 'string' ? Date.parse(raw['$date']) : NaN;
      if (Number.isNaN(ms)) throw new SegmentError('$date needs an ISO-8601 date string', path, '$date');
      return new Date(ms);
    }
    const out: Array<[string, unknown]> = [];
    for (const [key, value] of Object.entries(raw)) {
      const here = at(path, key);
      if (key.startsWith('$')) refuse(key, here);
      fieldName(key, here);
      out.push([key, literal(value, here, d + 1)]);
    }
    return Object.fromEntries(out);
  }
  throw new SegmentError(`unsupported value ${String(raw)}`, path);
}
