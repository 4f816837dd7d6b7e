/**
 * Property test of the segment translator against the real MongoDB-wire server (issue 10): for
 * random segments built from the allowed operators and random keys (among them `__proto__`,
 * `constructor` and `prototype`), either the translator refuses a forbidden key with a
 * SegmentError, or the documents the translated filter (through `recipientFilter`) matches ON THE
 * SERVER are exactly those an independent evaluator in this file says match, intersected with
 * active and subscribed. A small fixed document set is inserted once; runs are bounded.
 *
 * The evaluator implements MongoDB's query semantics for what the generator produces (array
 * fields match when any element does, `null` matches missing, comparisons only within a type,
 * sub-document equality is ordered). It reads the operator's JSON, never the translator's output.
 *
 * Left out of the generator, where FerretDB v1 (the test server) differs from MongoDB or the
 * semantics are not worth re-implementing here:
 * - `$elemMatch` with a sub-document query (`{"$elemMatch": {"c": 1}}`): FerretDB v1 matches
 *   nothing (see core/segment.ts); only `$elemMatch` with operators on the elements is generated.
 * - `$eq` / `$ne` with a sub-document operand next to other operators in the same operator
 *   document: FerretDB v1 then ignores the other operators (`{"a": {"$ne": {"c": 0}, "$size": 0}}`
 *   matches every `a` that is not `{c: 0}`, arrays or not; MongoDB requires both). Found by this
 *   test; such an operand is generated only as the sole operator.
 * - `$type` (number aliases and BSON type brackets), `$date` values (covered by unit tests).
 */
import fc from 'fast-check';
import type { Collection, Document } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FORBIDDEN_KEYS, parseSegment, recipientFilter, SegmentError } from '../../src/core/segment.js';
import { ErrorCodes } from '../../src/errors.js';
import { testDb, type TestDb } from '../helpers/db.js';
import { mwError } from '../helpers/errors.js';

// ---------------------------------------------------------------- JSON with any key

/** A JSON object as ordered entries, so `__proto__` stays a key while the segment is built. */
class Obj {
  constructor(readonly entries: ReadonlyArray<readonly [string, Json]>) {}
}
type Json = null | boolean | number | string | Json[] | Obj;

function toText(v: Json): string {
  if (v instanceof Obj) return `{${v.entries.map(([k, x]) => `${JSON.stringify(k)}:${toText(x)}`).join(',')}}`;
  if (Array.isArray(v)) return `[${v.map(toText).join(',')}]`;
  return JSON.stringify(v);
}

// ---------------------------------------------------------------- the fixed documents

const FIELDS = { active: 'active', unsubscribed: 'unsubscribed' };
const ABSENT = Symbol('absent');
const pick = <T>(xs: readonly T[], i: number): T => xs[i % xs.length] as T;

/** 60 users; the lengths are co-prime-ish so combinations vary. */
function documents(): Document[] {
  const active: unknown[] = [true, true, true, false, 'true'];
  const unsub: unknown[] = [ABSENT, null, false, true, 'true', 1, ABSENT];
  const a: unknown[] = [0, 1, 2, 3, 4, null, ABSENT, '2'];
  const b: unknown[] = ['x', 'y', 'z', 'X', ABSENT, 'xy'];
  const tags: unknown[] = [[1, 2], [3], [], ABSENT, [2, 4, 1], [0]];
  const sub: unknown[] = [{ c: 1, d: 'x' }, { d: 'y', c: 2 }, { c: 0 }, ABSENT, { c: 1, d: 'y' }];
  return Array.from({ length: 60 }, (_, i) => {
    const doc: Document = { _id: `p${String(i).padStart(2, '0')}`, email: `p${i}@example.test` };
    for (const [k, xs] of [['active', active], ['unsubscribed', unsub], ['a', a], ['b', b], ['tags', tags], ['sub', sub]] as const) {
      const v = pick(xs, i * (k.length + 1) + Math.floor(i / xs.length));
      if (v !== ABSENT) doc[k] = v;
    }
    return doc;
  });
}

// ---------------------------------------------------------------- the independent evaluator

type Raw = unknown;
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const MISSING = undefined;

function valueAt(doc: Record<string, unknown>, path: string): unknown {
  let cur: unknown = doc;
  for (const part of path.split('.')) {
    if (!isObj(cur) || !Object.hasOwn(cur, part)) return MISSING;
    cur = cur[part];
  }
  return cur;
}

function deepEq(x: unknown, v: unknown): boolean {
  if (Array.isArray(x) || Array.isArray(v)) return Array.isArray(x) && Array.isArray(v) && x.length === v.length && x.every((e, i) => deepEq(e, v[i]));
  if (isObj(x) || isObj(v)) {
    if (!isObj(x) || !isObj(v)) return false;
    const kx = Object.keys(x);
    const kv = Object.keys(v);
    return kx.length === kv.length && kx.every((k, i) => k === kv[i] && deepEq(x[k], v[k]));
  }
  return x === v;
}

/** `{field: v}`: null matches missing; an array field matches when it or one element equals v. */
function eq(x: unknown, v: unknown): boolean {
  if (v === null && (x === MISSING || x === null)) return true;
  if (deepEq(x, v)) return true;
  return Array.isArray(x) && x.some((e) => deepEq(e, v));
}

function cmpScalar(x: unknown, op: string, v: unknown): boolean {
  if (!((typeof x === 'number' && typeof v === 'number') || (typeof x === 'string' && typeof v === 'string'))) return false;
  switch (op) {
    case '$gt':
      return x > v;
    case '$gte':
      return x >= v;
    case '$lt':
      return x < v;
    default:
      return x <= v;
  }
}

function regexMatch(x: unknown, pattern: string, options: string): boolean {
  const re = new RegExp(pattern, options);
  const one = (e: unknown): boolean => typeof e === 'string' && re.test(e);
  return one(x) || (Array.isArray(x) && x.some(one));
}

function isOperatorDoc(v: unknown): v is Record<string, unknown> {
  return isObj(v) && Object.keys(v).length > 0 && Object.keys(v).every((k) => k.startsWith('$'));
}

function operatorMatch(x: unknown, ops: Record<string, unknown>): boolean {
  return Object.entries(ops).every(([op, v]) => {
    switch (op) {
      case '$eq':
        return eq(x, v);
      case '$ne':
        return !eq(x, v);
      case '$gt':
      case '$gte':
      case '$lt':
      case '$lte':
        return cmpScalar(x, op, v) || (Array.isArray(x) && x.some((e) => cmpScalar(e, op, v)));
      case '$in':
        return (v as unknown[]).some((e) => eq(x, e));
      case '$nin':
        return !(v as unknown[]).some((e) => eq(x, e));
      case '$exists':
        return (x !== MISSING) === v;
      case '$not':
        return !operatorMatch(x, v as Record<string, unknown>);
      case '$regex':
        return regexMatch(x, v as string, typeof ops['$options'] === 'string' ? ops['$options'] : '');
      case '$options':
        return true;
      case '$size':
        return Array.isArray(x) && x.length === v;
      case '$all':
        return (v as unknown[]).every((e) => eq(x, e));
      case '$elemMatch':
        // Operators on the elements themselves (the only form generated); no array expansion.
        return Array.isArray(x) && x.some((e) => Object.entries(v as Record<string, unknown>).every(([o, w]) => (o === '$in' ? (w as unknown[]).some((y) => deepEq(e, y)) : o === '$eq' ? deepEq(e, w) : cmpScalar(e, o, w))));
      default:
        throw new Error(`evaluator: no ${op}`);
    }
  });
}

function matches(doc: Record<string, unknown>, filter: Raw): boolean {
  return Object.entries(filter as Record<string, unknown>).every(([key, value]) => {
    if (key === '$and') return (value as Raw[]).every((f) => matches(doc, f));
    if (key === '$or') return (value as Raw[]).some((f) => matches(doc, f));
    if (key === '$nor') return !(value as Raw[]).some((f) => matches(doc, f));
    const x = valueAt(doc, key);
    return isOperatorDoc(value) ? operatorMatch(x, value) : eq(x, value);
  });
}

/** Active, and unsubscribed false, null or absent: the audience of every broadcast. */
function audience(doc: Record<string, unknown>): boolean {
  const u = valueAt(doc, 'unsubscribed');
  return doc['active'] === true && (u === MISSING || u === null || u === false);
}

/** Whether any key anywhere (or a part of a dotted one) is a forbidden name. */
function hasForbiddenKey(v: Raw): boolean {
  if (Array.isArray(v)) return v.some(hasForbiddenKey);
  if (!isObj(v)) return false;
  return Object.entries(v).some(([k, x]) => k.split('.').some((p) => FORBIDDEN_KEYS.has(p)) || hasForbiddenKey(x));
}

// ---------------------------------------------------------------- the generator

const FORBIDDEN = ['__proto__', 'constructor', 'prototype'];
const key = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom('a', 'b', 'tags', 'sub', 'sub.c', 'sub.d', 'zz') },
  { weight: 1, arbitrary: fc.constantFrom(...FORBIDDEN, 'sub.__proto__', 'constructor.name') },
);
const scalar: fc.Arbitrary<Json> = fc.oneof(fc.integer({ min: 0, max: 4 }), fc.constantFrom<Json>('x', 'y', 'z', 'X', '2', null, true));
const subKey = fc.oneof({ weight: 6, arbitrary: fc.constantFrom('c', 'd') }, { weight: 1, arbitrary: fc.constantFrom(...FORBIDDEN) });
const subDoc: fc.Arbitrary<Json> = fc
  .uniqueArray(fc.tuple(subKey, fc.oneof(fc.integer({ min: 0, max: 2 }), fc.constantFrom('x', 'y'))), { minLength: 1, maxLength: 2, selector: ([k]) => k })
  .map((e) => new Obj(e));
const literal: fc.Arbitrary<Json> = fc.oneof({ weight: 5, arbitrary: scalar }, { weight: 1, arbitrary: fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 }) }, { weight: 1, arbitrary: subDoc });
const ordered: fc.Arbitrary<Json> = fc.oneof(fc.integer({ min: 0, max: 4 }), fc.constantFrom('x', 'y', 'z', 'X'));
const cmpOp = fc.constantFrom('$gt', '$gte', '$lt', '$lte');

type Entry = readonly [string, Json];
const opEntries = (depth: number): fc.Arbitrary<Entry[]> => {
  const one: Array<fc.Arbitrary<Entry[]>> = [
    // A sub-document operand only alone (see the note at the top: FerretDB v1 ignores the rest).
    fc.tuple(fc.constantFrom('$eq', '$ne'), fc.oneof(scalar, fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 }))).map((e) => [e]),
    fc.tuple(cmpOp, ordered).map((e) => [e]),
    fc.tuple(fc.constantFrom('$in', '$nin'), fc.array(scalar, { maxLength: 3 })).map((e) => [e]),
    fc.tuple(fc.constant('$exists'), fc.boolean()).map((e) => [e]),
    fc.tuple(fc.constantFrom('^x', 'y$', '[xz]', '^X', '2'), fc.constantFrom('', 'i')).map(([p, o]): Entry[] => (o === '' ? [['$regex', p]] : [['$regex', p], ['$options', o]])),
    fc.tuple(fc.constant('$size'), fc.integer({ min: 0, max: 3 })).map((e) => [e]),
    fc.tuple(fc.constant('$all'), fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 2 })).map((e) => [e]),
    fc
      .uniqueArray(fc.oneof(fc.tuple(cmpOp, fc.integer({ min: 0, max: 4 })), fc.tuple(fc.constant('$in'), fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 }))), { minLength: 1, maxLength: 2, selector: ([o]) => o })
      .map((e): Entry[] => [['$elemMatch', new Obj(e)]]),
  ];
  if (depth > 0) one.push(opEntries(depth - 1).map((e): Entry[] => [['$not', new Obj(e)]]));
  // One or two operators, each at most once.
  return fc.uniqueArray(fc.oneof(...one), { minLength: 1, maxLength: 2, selector: (e) => e[0]?.[0] }).map((es) => es.flat());
};
const condition = (depth: number): fc.Arbitrary<Json> =>
  fc.oneof(literal, opEntries(depth).map((e) => new Obj(e)), fc.tuple(fc.constantFrom('$eq', '$ne'), subDoc).map((e) => new Obj([e])));

const filter = (depth: number): fc.Arbitrary<Obj> => {
  const clause: Array<fc.Arbitrary<Entry>> = [fc.tuple(key, condition(1))];
  if (depth > 0) clause.push(fc.tuple(fc.constantFrom('$and', '$or', '$nor'), fc.array(filter(depth - 1), { minLength: 1, maxLength: 3 })));
  return fc.uniqueArray(fc.oneof(...clause), { maxLength: 3, selector: ([k]) => k }).map((e) => new Obj(e));
};

// ---------------------------------------------------------------- the property

describe('segment translator: the server matches what the evaluator says (fast-check, real MongoDB-wire server)', () => {
  let db: TestDb;
  let users: Collection<Document>;
  const docs = documents();

  beforeAll(async () => {
    db = await testDb('segment_property');
    users = db.db.collection('users');
    await users.insertMany(docs.map((d) => ({ ...d })));
  });

  afterAll(async () => {
    await db?.cleanup();
  });

  it('the evaluator itself agrees with hand-checked cases', () => {
    const ids = (f: unknown) => docs.filter((d) => audience(d) && matches(d, f)).map((d) => d['_id'] as string);
    // Hand-counted from documents(): everyone in the audience, and those with a = 2 among them.
    const all = docs.filter(audience);
    expect(all.length).toBeGreaterThan(10);
    expect(all.length).toBeLessThan(docs.length);
    expect(ids({ a: 2 })).toEqual(all.filter((d) => d['a'] === 2).map((d) => d['_id']));
    expect(ids({ a: null })).toEqual(all.filter((d) => d['a'] === null || !('a' in d)).map((d) => d['_id']));
    expect(ids({ tags: 1 })).toEqual(all.filter((d) => Array.isArray(d['tags']) && (d['tags'] as number[]).includes(1)).map((d) => d['_id']));
  });

  it('for random segments: refused for a forbidden key, otherwise server result == evaluator result', { timeout: 300_000 }, async () => {
    let queried = 0;
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(filter(2), async (segment) => {
        const text = toText(segment);
        const raw: unknown = JSON.parse(text);
        let parsed;
        try {
          parsed = parseSegment(text);
        } catch (err) {
          // The only refusal the generator can provoke is a forbidden key.
          if (!(err instanceof SegmentError) || !hasForbiddenKey(raw)) throw err;
          expect(err).toEqual(mwError(ErrorCodes.BAD_ARGUMENT, /field name "[^"]*" is not allowed/));
          refused++;
          return;
        }
        expect(hasForbiddenKey(raw), `${text} was accepted`).toBe(false);
        // What is stored is what is queried.
        expect(parseSegment(parsed.json).filter).toEqual(parsed.filter);
        const onServer = (await users.find(recipientFilter(parsed.filter, FIELDS), { projection: { _id: 1 } }).toArray()).map((d) => String(d._id)).sort();
        const expected = docs.filter((d) => audience(d) && matches(d, raw)).map((d) => String(d['_id'])).sort();
        expect(onServer, text).toEqual(expected);
        queried++;
      }),
      { numRuns: Number(process.env['SEGMENT_PROPERTY_RUNS'] ?? 100) },
    );
    // Both branches of the property were exercised.
    expect(queried).toBeGreaterThan(20);
    expect(refused).toBeGreaterThan(0);
  });
});
