/**
 * Issue 14's acceptance for the operator tool, through the real CLI on the real MongoDB-wire
 * server: 100,000 suppressions (every reason, sources that need CSV quoting, distinct times to the
 * millisecond, both scopes) imported and exported again give back exactly the same rows; and
 * `broadcast send --dry-run` counts as suppressed exactly the users among them.
 * The import and export times are printed (figures for the report, not asserted).
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { writeBodies } from '../helpers/broadcasts.js';
import { runCli, writeTestConfig } from '../helpers/cli.js';
import { testDb, type TestDb } from '../helpers/db.js';

const ROWS = 100_000;
const USERS = 3_000;
const REASONS = ['unsubscribe', 'hard-bounce', 'soft-bounce', 'complaint', 'manual'];
const SOURCES = ['smtp', 'ses', 'sendgrid', 'mailgun', 'postmark', 'dsn', 'arf', 'operator', 'import', 'crm, "legacy" list', "o'brien;export", 'x'.repeat(100)];
// Characters the address syntax allows in a local part; none needs CSV quoting (quotes and commas
// are not valid in an address mailwheel mails), the sources above do.
const LOCAL_EXTRAS = ["o'hara", 'a+b', 'x!#$%&*', 'q=r?s^t', 'u_v`w{x|y}z~', 'first.last', 'dash-ed/slash'];

let db: TestDb;
let env: Record<string, string>;
const dir = mkdtempSync(join(tmpdir(), 'mailwheel-suppression-roundtrip-'));

beforeAll(async () => {
  db = await testDb('suppression_roundtrip');
  env = { MONGODB_URI: db.uri, SMTP_URL: 'smtp://127.0.0.1:9', MAILWHEEL_CONFIG: writeTestConfig({ http: { enabled: false } }), LOG_LEVEL: 'warn' };
});
afterAll(async () => {
  await db?.cleanup();
});

type Row = Record<'address' | 'reason' | 'source' | 'time' | 'scope', string>;

function generate(): Row[] {
  const base = Date.UTC(2023, 4, 6, 7, 8, 9, 10);
  return Array.from({ length: ROWS }, (_, i) => ({
    address: `${LOCAL_EXTRAS[i % LOCAL_EXTRAS.length]}.${i}@d${i % 97}.example-${i % 13}.test`,
    reason: REASONS[i % REASONS.length] ?? 'manual',
    source: SOURCES[(i * 7) % SOURCES.length] ?? 'import',
    time: new Date(base + i * 60_013 + (i % 997)).toISOString(),
    scope: i % 4 === 0 ? 'marketing' : 'all',
  }));
}

const byAddress = (a: Row, b: Row) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0);

it('100,000 suppressions round-trip exactly through import and export; a dry-run counts the users among them as suppressed', { timeout: 900_000 }, async () => {
  const rows = generate();
  const input = join(dir, 'in.csv');
  writeFileSync(input, stringify(rows, { header: true, columns: ['address', 'reason', 'source', 'time', 'scope'] }));
  expect(readFileSync(input, 'utf8')).toContain('"crm, ""legacy"" list"');

  let t = performance.now();
  const imported = await runCli(['suppression', 'import', input, '--json'], env);
  const importMs = performance.now() - t;
  expect(imported.code, imported.stderr).toBe(0);
  expect(JSON.parse(imported.stdout)).toMatchObject({ rows: ROWS, added: ROWS, widened: 0, alreadySuppressed: 0, refused: 0 });

  const output = join(dir, 'out.csv');
  t = performance.now();
  const exported = await runCli(['suppression', 'export', output], env);
  const exportMs = performance.now() - t;
  expect(exported.code, exported.stderr).toBe(0);
  expect(exported.stderr).toContain(`exported 100,000 suppressions to ${output}`);
  const back = parse(readFileSync(output, 'utf8'), { columns: true }) as Row[];
  expect(back).toHaveLength(ROWS);
  expect(back.sort(byAddress)).toEqual([...rows].sort(byAddress));
  console.log(`suppression round trip of ${ROWS} rows: import ${(importMs / 1000).toFixed(1)} s, export ${(exportMs / 1000).toFixed(1)} s (CLI processes, start-up included)`);

  // Users: every 40th address of the file is a user (some spelt in capitals), the rest are not
  // suppressed; one user is inactive and must be counted nowhere.
  const users = Array.from({ length: USERS }, (_, i) => {
    const suppressed = i % 3 === 0;
    const address = suppressed ? (rows[(i * 40) % ROWS]?.address ?? '') : `user${i}@free.example.test`;
    return { _id: `u${i}`, email: i % 2 === 0 ? address.toUpperCase() : address, name: `User ${i}`, active: i !== 3, timezone: 'UTC', emailTimes: ['09:00'], updatedAt: new Date() };
  });
  await db.db.collection<{ _id: string }>('users').insertMany(users);
  const overlap = users.filter((u, i) => u.active && i % 3 === 0).length;
  const { textFile } = writeBodies(env['MAILWHEEL_CONFIG'] ?? '');
  const dry = await runCli(['broadcast', 'send', '--subject', 'Hi', '--text-file', textFile, '--dry-run', '--json'], env);
  expect(dry.code, dry.stderr).toBe(0);
  const counts = JSON.parse(dry.stdout) as { matching: number; recipients: number; suppressed: number };
  expect(counts.suppressed).toBe(overlap);
  expect(counts.recipients).toBe(USERS - 1 - overlap);

  // A re-import of the same file changes nothing and says so.
  t = performance.now();
  const again = await runCli(['suppression', 'import', input, '--json'], env);
  const reimportMs = performance.now() - t;
  expect(again.code, again.stderr).toBe(0);
  expect(JSON.parse(again.stdout)).toMatchObject({ rows: ROWS, added: 0, widened: 0, alreadySuppressed: ROWS, refused: 0 });
  console.log(`re-import of the same ${ROWS} rows (all already suppressed): ${(reimportMs / 1000).toFixed(1)} s`);
});
