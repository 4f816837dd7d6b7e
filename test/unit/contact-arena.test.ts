/**
 * ContactArena: the registry's packed email and name store. Contents survive growth, changes and
 * compactions; writing the same contact again appends nothing; garbage stays bounded.
 */
import { describe, expect, it } from 'vitest';
import { ContactArena } from '../../src/core/contact-arena.js';

describe('ContactArena', () => {
  it('stores email and name per row, with and without a name, in any script', () => {
    const a = new ContactArena();
    a.set(0, 'ann@example.test', 'Ann');
    a.set(5, 'zoë@exämple.test', 'Zoë 山田 🙂');
    a.set(2, 'no-name@example.test', undefined);
    expect([a.email(0), a.name(0)]).toEqual(['ann@example.test', 'Ann']);
    expect([a.email(5), a.name(5)]).toEqual(['zoë@exämple.test', 'Zoë 山田 🙂']);
    expect([a.email(2), a.name(2)]).toEqual(['no-name@example.test', undefined]);
    expect(a.has(1)).toBe(false);
    expect([a.email(1), a.name(1)]).toEqual(['', undefined]);
    expect(a.has(10_000)).toBe(false);
    // An empty name is a name, not "no name".
    a.set(3, 'e@example.test', '');
    expect(a.name(3)).toBe('');
  });

  it('writing the same contact again appends nothing; a change appends and replaces', () => {
    const a = new ContactArena();
    a.set(0, 'ann@example.test', 'Ann');
    const used = a.usedBytes;
    a.set(0, 'ann@example.test', 'Ann');
    expect(a.usedBytes).toBe(used);
    a.set(0, 'ann@example.test', undefined);
    expect(a.name(0)).toBeUndefined();
    // A change appends the new bytes; the old ones are garbage until a compaction.
    expect(a.usedBytes).toBe(used + 'ann@example.test'.length);
    expect(a.liveBytes).toBe('ann@example.test'.length);
    a.set(0, 'ann@example.test', 'Anne');
    expect([a.email(0), a.name(0)]).toEqual(['ann@example.test', 'Anne']);
    expect(a.liveBytes).toBe('ann@example.test'.length + 4);
  });

  it('clear forgets a row; its bytes are garbage', () => {
    const a = new ContactArena();
    a.set(1, 'b@example.test', 'B');
    a.clear(1);
    expect(a.has(1)).toBe(false);
    expect(a.liveBytes).toBe(0);
    a.clear(1);
    a.clear(99);
    expect(a.liveBytes).toBe(0);
  });

  it('keeps every contact through growth and compactions, with garbage bounded by the live bytes', () => {
    const a = new ContactArena();
    const rows = 5_000;
    const expected = new Map<number, [string, string | undefined]>();
    let maxRatio = 0;
    for (let round = 0; round < 20; round++) {
      for (let row = 0; row < rows; row++) {
        // Every round changes a third of the rows and clears a tenth, so garbage keeps accruing.
        if (round > 0 && row % 3 !== round % 3) continue;
        if (row % 10 === round % 10) {
          a.clear(row);
          expected.delete(row);
          continue;
        }
        const c: [string, string | undefined] = [`user${row}.r${round}@example.test`, row % 7 === 0 ? undefined : `Name ${row} ${'é'.repeat(round % 4)}`];
        a.set(row, c[0], c[1]);
        expected.set(row, c);
      }
      maxRatio = Math.max(maxRatio, a.usedBytes / Math.max(1, a.liveBytes));
    }
    expect(a.compactions).toBeGreaterThan(0);
    for (let row = 0; row < rows; row++) {
      const c = expected.get(row);
      if (c === undefined) expect(a.has(row)).toBe(false);
      else expect([a.email(row), a.name(row)]).toEqual(c);
    }
    // Compaction runs once garbage outgrows the live bytes, so appended bytes stay near twice them.
    expect(maxRatio).toBeLessThan(2.5);
  });
});
