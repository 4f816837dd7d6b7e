/**
 * The string form of user ids: unambiguous across types, unchanged (as before the encoding) for
 * ObjectIds and ordinary strings, decodable back to the typed `_id`, and bounded for headers.
 */
import { ObjectId } from 'mongodb';
import { describe, expect, it } from 'vitest';
import { compactUserId, decodeUserId, encodeUserId } from '../../src/core/user-id.js';
import { mongoUserId } from '../../src/adapters/mongo/user-source.js';

const HEX = '65f0a1b2c3d4e5f6a7b8c9d0';
const SAMPLES: unknown[] = [
  1, '1', 0, '0', -3, '-3', 1.5, '1.5', 1e21, '1e+21',
  new ObjectId(HEX), HEX, HEX.toUpperCase(),
  'alice', 'n:1', 's:1', 'h:abc', 'a:b', 'A:b', 'user:1', 'x', ' 1', '1 ',
];

describe('encodeUserId', () => {
  it('never gives two different ids the same text', () => {
    const seen = new Map<string, unknown>();
    for (const v of SAMPLES) {
      const e = encodeUserId(v);
      expect(e, String(v)).toBeDefined();
      expect(seen.has(e ?? ''), `${String(v)} and ${String(seen.get(e ?? ''))} both encode to ${e}`).toBe(false);
      seen.set(e ?? '', v);
    }
  });

  it('keeps the old text for ObjectIds and for strings that cannot be mistaken for another type', () => {
    expect(encodeUserId(new ObjectId(HEX))).toBe(HEX);
    for (const s of ['alice', '1', 'user:1', 'A:b', HEX.toUpperCase(), 'alice@example.com']) expect(encodeUserId(s)).toBe(s);
  });

  it('tags numbers and the strings that would read as another type', () => {
    expect([1, -3, 1.5].map(encodeUserId)).toEqual(['n:1', 'n:-3', 'n:1.5']);
    expect([HEX, 'n:1', 'h:abc', 's:x'].map(encodeUserId)).toEqual([`s:${HEX}`, 's:n:1', 's:h:abc', 's:s:x']);
  });

  it('refuses what is not an id', () => {
    for (const v of [undefined, null, '', NaN, Infinity, true, {}, [], new Date(0)]) expect(encodeUserId(v), String(v)).toBeUndefined();
  });
});

describe('decodeUserId / mongoUserId', () => {
  it('turns every encoding back into the typed _id', () => {
    for (const v of SAMPLES) {
      const typed = mongoUserId(encodeUserId(v) ?? '');
      if (v instanceof ObjectId) expect(typed instanceof ObjectId && typed.equals(v)).toBe(true);
      else expect(typed).toStrictEqual(v);
    }
  });

  it('refuses a digest, an unknown tag or a bad number', () => {
    for (const s of ['h:abc', 'z:1', 'n:x', 'n:01', 'n:', 's:', '']) expect(decodeUserId(s), s).toBeUndefined();
  });
});

describe('compactUserId', () => {
  it('keeps ids up to 128 bytes and digests longer ones, stably and distinctly', () => {
    expect(compactUserId('x'.repeat(128))).toBe('x'.repeat(128));
    const a = compactUserId('x'.repeat(129));
    expect(a).toMatch(/^h:[\w-]{43}$/);
    expect(compactUserId('x'.repeat(129))).toBe(a);
    expect(compactUserId('x'.repeat(130))).not.toBe(a);
    // Bytes, not characters: 64 three-byte characters are 192 bytes.
    expect(compactUserId('日'.repeat(64))).toMatch(/^h:/);
  });
});
