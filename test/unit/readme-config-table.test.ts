/**
 * The README's configuration table against the schema and config/default.json: every setting the
 * schema accepts has a row, every row names a real setting, and each row's default is the one in
 * default.json. Both sides are read, nothing is listed here, so a new key without a row fails.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultConfigDir } from '../../src/config/load.js';
import { configSchema } from '../../src/config/schema.js';

const readme = readFileSync(join(defaultConfigDir, '..', 'README.md'), 'utf8');
const defaults = JSON.parse(readFileSync(join(defaultConfigDir, 'default.json'), 'utf8')) as Record<string, unknown>;

/** The leaf settings of the schema, dotted (walks the object shapes). */
function leaves(node: unknown, prefix: string[] = []): string[] {
  const shape = (node as { shape?: Record<string, unknown> }).shape;
  if (shape === undefined) return [prefix.join('.')];
  return Object.entries(shape).flatMap(([k, sub]) => leaves(sub, [...prefix, k]));
}

/** Rows of the table under "## Configuration" whose header is `| key | default | meaning |`. */
function tableRows(): Array<{ keys: string[]; defaults: string[] }> {
  const section = readme.slice(readme.indexOf('## Configuration'));
  const start = section.indexOf('| key | default | meaning |');
  const lines = section.slice(start).split('\n').slice(2);
  const rows: Array<{ keys: string[]; defaults: string[] }> = [];
  for (const line of lines) {
    if (!line.startsWith('|')) break;
    const [keyCell = '', defaultCell = ''] = line.split(' | ').map((c) => c.replace(/^\| /, ''));
    // `a.b` / `c` / `d`: the later names share the first one's parent.
    const names = keyCell.split(' / ').map((n) => n.replace(/`/g, '').trim());
    const parent = (names[0] ?? '').split('.').slice(0, -1).join('.');
    const keys = names.map((n, i) => (i === 0 || n.includes('.') ? n : `${parent}.${n}`));
    rows.push({ keys, defaults: defaultCell.split(' / ').map((d) => d.replace(/`/g, '').trim()) });
  }
  return rows;
}

function defaultOf(path: string): unknown {
  return path.split('.').reduce<unknown>((o, k) => (o !== null && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined), defaults);
}

const settings = leaves(configSchema);
const rows = tableRows();
const covered = (setting: string) => rows.some((r) => r.keys.some((k) => k === setting || (k.endsWith('.*') && setting.startsWith(k.slice(0, -1)))));

describe('README configuration table', () => {
  it('has rows', () => {
    expect(rows.length).toBeGreaterThan(10);
  });

  it.each(settings)('lists %s', (setting) => {
    expect(covered(setting)).toBe(true);
  });

  it('names only settings that exist', () => {
    const unknown = rows.flatMap((r) => r.keys).filter((k) => !(k.endsWith('.*') ? settings.some((s) => s.startsWith(k.slice(0, -1))) : settings.includes(k)));
    expect(unknown).toEqual([]);
  });

  it("gives each setting the default in config/default.json ('–' for none)", () => {
    const wrong: string[] = [];
    for (const row of rows) {
      if (row.keys.some((k) => k.endsWith('.*'))) continue;
      row.keys.forEach((key, i) => {
        const want = defaultOf(key);
        const shown = row.defaults.length === row.keys.length ? row.defaults[i] : undefined;
        const expected = want === undefined ? '–' : want !== null && typeof want === 'object' ? JSON.stringify(want) : String(want);
        if (shown !== expected) wrong.push(`${key}: README ${String(shown)}, default.json ${expected}`);
      });
    }
    expect(wrong).toEqual([]);
  });
});
