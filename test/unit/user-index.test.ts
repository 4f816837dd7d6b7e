import { describe, expect, it } from 'vitest';
import { UserIndex } from '../../src/core/user-index.js';

// The registry's id -> user row index (src/core/user-index.ts): the registry writes idOf[row]
// before set() and clears it after delete(), as these tests do.

function indexed(): { idOf: string[]; index: UserIndex; add: (id: string) => number; remove: (id: string) => void } {
  const idOf: string[] = [];
  const free: number[] = [];
  const index = new UserIndex(idOf);
  return {
    idOf,
    index,
    add: (id) => {
      const row = free.pop() ?? idOf.length;
      idOf[row] = id;
      index.set(id, row);
      return row;
    },
    remove: (id) => {
      const row = index.get(id);
      if (row === undefined) throw new Error(`${id} not indexed`);
      expect(index.delete(id)).toBe(true);
      idOf[row] = '';
      free.push(row);
    },
  };
}

describe('UserIndex', () => {
  it('finds every id at its row through growth, deletions, reuse of rows and shrinking', () => {
    const { index, add, remove } = indexed();
    const rows = new Map<string, number>();
    // Ids of the shapes the user store produces: numbers, ObjectId hex, long strings, the empty one.
    const id = (i: number): string => (i % 3 === 0 ? String(i) : i % 3 === 1 ? i.toString(16).padStart(24, '0') : `user-${i}@example.test`);
    for (let i = 0; i < 20_000; i++) rows.set(id(i), add(id(i)));
    rows.set('', add(''));
    for (let i = 0; i < 20_000; i += 2) {
      remove(id(i));
      rows.delete(id(i));
    }
    for (let i = 20_000; i < 25_000; i++) rows.set(id(i), add(id(i)));
    expect(index.size).toBe(rows.size);
    for (const [k, row] of rows) expect(index.get(k)).toBe(row);
    for (let i = 0; i < 20_000; i += 2) expect(index.get(id(i))).toBeUndefined();
    expect(index.get('nobody')).toBeUndefined();
    expect(index.delete('nobody')).toBe(false);

    const before = index.slots;
    for (const k of [...rows.keys()]) if (k !== '') remove(k);
    expect(index.size).toBe(1);
    expect(index.get('')).toBe(rows.get(''));
    expect(index.slots).toBeLessThan(before / 8); // room given back after a mass removal
  });

  it('churn (delete then add again) keeps the table at most half full of live and deleted slots', () => {
    const { index, add, remove } = indexed();
    for (let i = 0; i < 1_000; i++) add(`u${i}`);
    const slots = index.slots;
    for (let k = 0; k < 50_000; k++) {
      const id = `u${(k * 7919) % 1_000}`;
      remove(id);
      add(id);
    }
    expect(index.size).toBe(1_000);
    expect(index.slots).toBe(slots); // rehashed in place, not grown
    for (let i = 0; i < 1_000; i++) expect(index.get(`u${i}`)).toBeDefined();
  });
});
