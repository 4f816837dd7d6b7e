/**
 * Segment validation: allowed operators pass (and come back as the same filter, `$date` turned
 * into a Date); code-running and unknown operators are refused with code MW_BAD_ARGUMENT, naming
 * the operator and where it was; the recipient filter always adds active and not-unsubscribed.
 */
import { describe, expect, it } from 'vitest';
import { MAX_SEGMENT_CHARS, parseSegment, recipientFilter, SegmentError, validateSegment } from '../../src/core/segment.js';
import { ErrorCodes } from '../../src/errors.js';
import { mwError } from '../helpers/errors.js';

function refusal(text: string): SegmentError {
  try {
    parseSegment(text);
  } catch (err) {
    if (err instanceof SegmentError) return err;
    throw err;
  }
  throw new Error(`expected ${text} to be refused`);
}

describe('parseSegment: accepted', () => {
  it.each([
    ['{}'],
    [''],
    ['{"plan": "pro"}'],
    ['{"plan": {"$eq": "pro"}, "age": {"$gte": 18, "$lt": 65}}'],
    ['{"country": {"$in": ["DE", "AT"]}, "tier": {"$nin": [0]}}'],
    ['{"$or": [{"plan": "pro"}, {"credits": {"$gt": 100}}], "beta": {"$exists": true}}'],
    ['{"$and": [{"a": 1}], "$nor": [{"b": {"$ne": null}}]}'],
    ['{"email": {"$regex": "@example\\\\.com$", "$options": "i"}}'],
    ['{"age": {"$not": {"$gt": 65}}}'],
    ['{"tags": {"$all": ["a", "b"]}, "devices": {"$size": 2}, "score": {"$type": ["int", "double"]}}'],
    ['{"scores": {"$elemMatch": {"$gte": 80, "$lt": 90}}}'],
    ['{"orders": {"$elemMatch": {"total": {"$gt": 10}, "state": "paid"}}}'],
    ['{"profile.country": "DE", "address": {"city": "Berlin", "zip": "10115"}}'],
  ])('%s', (text) => {
    const s = parseSegment(text);
    expect(typeof s.json).toBe('string');
    expect(JSON.parse(s.json)).toEqual(text.trim() === '' ? {} : JSON.parse(text));
  });

  it('reads {"$date": ISO} as a Date and keeps the $date form in the stored text', () => {
    const s = parseSegment('{"createdAt": {"$gte": {"$date": "2026-01-01T00:00:00Z"}}}');
    expect(s.filter).toEqual({ createdAt: { $gte: new Date('2026-01-01T00:00:00Z') } });
    expect(s.json).toBe('{"createdAt":{"$gte":{"$date":"2026-01-01T00:00:00Z"}}}');
    expect(parseSegment(s.json).filter).toEqual(s.filter);
  });
});

describe('parseSegment: refused, naming the operator', () => {
  it.each([
    ['{"$where": "this.a > 1"}', '$where', '$where'],
    ['{"$expr": {"$gt": ["$a", "$b"]}}', '$expr', '$expr'],
    ['{"$or": [{"a": 1}, {"$where": "sleep(1000)"}]}', '$where', '$or[1].$where'],
    ['{"a": {"$function": {"body": "return 1", "args": [], "lang": "js"}}}', '$function', 'a.$function'],
    ['{"a": {"$accumulator": {}}}', '$accumulator', 'a.$accumulator'],
    ['{"a": {"$not": {"$where": "1"}}}', '$where', 'a.$not.$where'],
    ['{"a": {"$elemMatch": {"$where": "1"}}}', '$where', 'a.$elemMatch.$where'],
    ['{"a": {"$elemMatch": {"b": {"$function": {}}}}}', '$function', 'a.$elemMatch.b.$function'],
    ['{"$text": {"$search": "x"}}', '$text', '$text'],
    ['{"loc": {"$near": [0, 0]}}', '$near', 'loc.$near'],
    ['{"a": {"$foo": 1}}', '$foo', 'a.$foo'],
    ['{"a": {"$in": [{"$where": "1"}]}}', '$where', 'a.$in[0].$where'],
    ['{"a": {"b": {"$where": "1"}}}', '$where', 'a.b.$where'],
  ])('%s', (text, operator, path) => {
    const err = refusal(text);
    expect(err.code).toBe(ErrorCodes.BAD_ARGUMENT);
    expect(err.operator).toBe(operator);
    expect(err.path).toBe(path);
    expect(err.message).toContain(operator);
  });

  it('says why code-running operators are refused', () => {
    expect(refusal('{"$where": "1"}')).toEqual(mwError(ErrorCodes.BAD_ARGUMENT, /\$where is not allowed: it evaluates code/));
  });

  it.each([
    ['not json', /not valid JSON/],
    ['[]', /must be a JSON object/],
    ['"plan"', /must be a JSON object/],
    ['{"$or": []}', /\$or needs a non-empty array/],
    ['{"$and": {"a": 1}}', /\$and needs a non-empty array/],
    ['{"a": {"$in": 3}}', /\$in needs an array/],
    ['{"a": {"$exists": 1}}', /\$exists needs true or false/],
    ['{"a": {"$size": -1}}', /\$size needs a non-negative integer/],
    ['{"a": {"$type": "banana"}}', /\$type: unknown type/],
    ['{"a": {"$regex": "("}}', /\$regex does not compile/],
    ['{"a": {"$regex": "x", "$options": "g"}}', /\$options may only hold/],
    ['{"a": {"$options": "i"}}', /\$options only goes with \$regex/],
    ['{"a": {"$not": 5}}', /\$not needs an operator document/],
    ['{"a": {"$gt": 1, "b": 2}}', /mixes operators and field names/],
    ['{"": 1}', /bad field name/],
    ['{"a..b": 1}', /bad field name/],
    ['{"a": {"$date": "yesterday"}}', /\$date needs an ISO-8601/],
  ])('%s', (text, message) => {
    const err = refusal(text);
    expect(err.code).toBe(ErrorCodes.BAD_ARGUMENT);
    expect(err.message).toMatch(message);
  });

  it('refuses filters nested deeper than the limit and texts longer than the limit', () => {
    let deep: unknown = { a: 1 };
    for (let i = 0; i < 20; i++) deep = { $and: [deep] };
    expect(() => validateSegment(deep)).toThrow(mwError(ErrorCodes.BAD_ARGUMENT, /nested deeper/));
    expect(refusal(`{"a": "${'x'.repeat(MAX_SEGMENT_CHARS)}"}`)).toEqual(mwError(ErrorCodes.BAD_ARGUMENT, /longer than/));
  });
});

describe('parseSegment: keys that mean something to a JavaScript object', () => {
  it.each([
    ['{"__proto__": {"plan": "pro"}}', '__proto__'],
    ['{"constructor": {"plan": "pro"}}', 'constructor'],
    ['{"prototype": 1}', 'prototype'],
    ['{"plan": "pro", "__proto__": {"plan": "pro"}}', '__proto__'],
    ['{"$or": [{"plan": "free"}, {"__proto__": {"plan": "pro"}}]}', '$or[1].__proto__'],
    ['{"$and": [{"$nor": [{"constructor": 1}]}]}', '$and[0].$nor[0].constructor'],
    ['{"orders": {"$elemMatch": {"__proto__": {"state": "paid"}}}}', 'orders.$elemMatch.__proto__'],
    ['{"address": {"__proto__": {"city": "Berlin"}}}', 'address.__proto__'],
    ['{"address": {"city": "Berlin", "constructor": "x"}}', 'address.constructor'],
    ['{"a": {"$in": [{"prototype": 1}]}}', 'a.$in[0].prototype'],
    ['{"a": {"$not": {"$eq": {"__proto__": {}}}}}', 'a.$not.$eq.__proto__'],
    ['{"profile.__proto__.plan": "pro"}', 'profile.__proto__.plan'],
  ])('%s is refused naming the key at %s', (text, path) => {
    const err = refusal(text);
    expect(err.code).toBe(ErrorCodes.BAD_ARGUMENT);
    expect(err.path).toBe(path);
    expect(err.message).toMatch(/field name "[^"]*(__proto__|constructor|prototype)[^"]*" is not allowed/);
    expect(err.message).toContain(`(at ${path})`);
  });

  it('builds every object with own properties only, whatever a key was (no prototype set)', () => {
    const { filter } = parseSegment('{"plan": "pro", "$or": [{"a": {"b": 1}}, {"c": {"$in": [{"d": 2}]}}]}');
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) return v.forEach(walk);
      if (typeof v !== 'object' || v === null || v instanceof Date) return;
      expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
      Object.values(v).forEach(walk);
    };
    walk(filter);
    expect(filter).toEqual({ plan: 'pro', $or: [{ a: { b: 1 } }, { c: { $in: [{ d: 2 }] } }] });
  });

  it('the stored text reads back to the same filter that is queried', () => {
    for (const text of ['{"plan": "pro", "plan": "team"}', '{"a": {"$gte": {"$date": "2026-01-01T00:00:00Z"}}, "$or": [{"b": [1, {"c": null}]}]}']) {
      const s = parseSegment(text);
      expect(parseSegment(s.json).filter).toEqual(s.filter);
      expect(parseSegment(s.json).json).toBe(s.json);
    }
  });
});

describe('recipientFilter', () => {
  const fields = { active: 'isActive', unsubscribed: 'prefs.optOut' };

  it('combines the segment with active and not unsubscribed, under mapped names', () => {
    expect(recipientFilter({ plan: 'pro' }, fields)).toEqual({ $and: [{ isActive: true }, { 'prefs.optOut': { $in: [false, null] } }, { plan: 'pro' }] });
  });

  it('an empty segment means every active, subscribed user', () => {
    expect(recipientFilter({}, fields)).toEqual({ $and: [{ isActive: true }, { 'prefs.optOut': { $in: [false, null] } }] });
  });
});
