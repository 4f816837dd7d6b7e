/**
 * `mailwheel suppression add | remove | list | import | export` through the real CLI on the real
 * MongoDB-wire server: exit codes, what each says about a running daemon's reload, refused import
 * rows named by line while every other row is imported, and files the parser cannot read or
 * whose header is wrong imported not at all.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCli, writeTestConfig } from '../helpers/cli.js';
import { testDb, type TestDb } from '../helpers/db.js';

let db: TestDb;
let env: Record<string, string>;
const dir = mkdtempSync(join(tmpdir(), 'mailwheel-suppression-'));
const suppressions = () => db.db.collection<{ _id: string; suppressed: boolean; reason?: string; source?: string; scope?: string; hardBounces: number; updatedAt: Date }>('mailwheel_suppressions');

beforeAll(async () => {
  db = await testDb('suppression_cli');
  env = { MONGODB_URI: db.uri, SMTP_URL: 'smtp://127.0.0.1:9', MAILWHEEL_CONFIG: writeTestConfig({ http: { enabled: false } }), LOG_LEVEL: 'warn' };
});
afterAll(async () => {
  await db?.cleanup();
});

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

it('add, list, remove: source operator, scope, the reload note, and an address left alone when already suppressed', async () => {
  const added = await runCli(['suppression', 'add', 'Op@Example.com', '--reason', 'complaint', '--scope', 'marketing'], env);
  expect(added.code, added.stderr).toBe(0);
  expect(added.stdout).toContain('suppressed op@example.com (complaint from operator, broadcasts only');
  expect(added.stdout).toContain('a running daemon skips it from its next suppression reload (schedules.json userSync "*/5 * * * *" UTC)');
  expect(await suppressions().findOne({ _id: 'op@example.com' })).toMatchObject({ suppressed: true, reason: 'complaint', source: 'operator', scope: 'marketing' });

  const again = await runCli(['suppression', 'add', 'op@example.com', '--scope', 'marketing', '--json'], env);
  expect(again.code, again.stderr).toBe(0);
  expect(JSON.parse(again.stdout)).toMatchObject({ result: 'unchanged', suppression: { address: 'op@example.com', reason: 'complaint', source: 'operator', scope: 'marketing' } });

  const listed = await runCli(['suppression', 'list', '--reason', 'complaint', '--json'], env);
  expect(listed.code, listed.stderr).toBe(0);
  expect(listed.stdout.trim().split('\n').map((l) => JSON.parse(l) as { address: string })).toEqual([expect.objectContaining({ address: 'op@example.com', reason: 'complaint' })]);

  const removed = await runCli(['suppression', 'remove', 'OP@example.com'], env);
  expect(removed.code, removed.stderr).toBe(0);
  expect(removed.stdout).toContain('lifted the suppression of op@example.com (was: complaint from operator');
  expect(removed.stdout).toContain('a running daemon mails it again from its next suppression reload');
  expect(removed.stdout).toContain('note: it was a complaint');
  expect(await suppressions().findOne({ _id: 'op@example.com' })).toMatchObject({ suppressed: false });

  const none = await runCli(['suppression', 'remove', 'op@example.com'], env);
  expect(none.code, none.stderr).toBe(0);
  expect(none.stdout).toContain('op@example.com is not suppressed; nothing to do');
});

it('bad usage exits 64 naming what is wrong: an invalid address, an unknown reason', async () => {
  const bad = await runCli(['suppression', 'add', 'not an address'], env);
  expect(bad.code).toBe(64);
  expect(bad.stderr).toContain('address "not an address": not a valid address');
  const reason = await runCli(['suppression', 'add', 'x@example.com', '--reason', 'bounced'], env);
  expect(reason.code).toBe(64);
  expect(reason.stderr).toMatch(/--reason.*bounced.*(unsubscribe|Allowed choices)/s);
  expect(await suppressions().countDocuments({ _id: 'x@example.com' })).toBe(0);
});

it('import refuses bad rows by line number, imports every other row, exits 1; defaults reason manual and source import', async () => {
  const csv = [
    'address,time,reason', // any column order; no source column
    'good1@example.com,2026-01-02T03:04:05.678Z,hard-bounce',
    'not-an-address,,manual',
    'good2@example.com,,bounced',
    '',
    '"good3@example.com",,',
    'good4@example.com,yesterday,manual',
    'Good5@Example.com',
    'good6@example.com,,manual,extra',
  ].join('\n');
  const r = await runCli(['suppression', 'import', file('rows.csv', `${csv}\n`)], env);
  expect(r.code, r.stderr).toBe(1);
  const refused = r.stderr.split('\n').filter((l) => l.includes('rows.csv line'));
  expect(refused).toEqual([
    expect.stringMatching(/rows\.csv line 3: address "not-an-address": not a valid address$/),
    expect.stringMatching(/rows\.csv line 4: reason "bounced" is not one of unsubscribe, hard-bounce, soft-bounce, complaint, manual$/),
    expect.stringMatching(/rows\.csv line 7: time "yesterday" is not an ISO 8601/),
    expect.stringMatching(/rows\.csv line 9: 4 fields, more than the 3 columns/),
  ]);
  expect(r.stdout).toContain('7 rows: 3 added, 0 already suppressed, 4 refused (listed above)');
  expect(await suppressions().findOne({ _id: 'good1@example.com' })).toMatchObject({ suppressed: true, reason: 'hard-bounce', source: 'import', scope: 'all', updatedAt: new Date('2026-01-02T03:04:05.678Z') });
  expect(await suppressions().findOne({ _id: 'good3@example.com' })).toMatchObject({ reason: 'manual', source: 'import' });
  expect(await suppressions().findOne({ _id: 'good5@example.com' })).toMatchObject({ reason: 'manual' });
  for (const a of ['not-an-address', 'good2@example.com', 'good4@example.com', 'good6@example.com']) expect(await suppressions().countDocuments({ _id: a })).toBe(0);

  const again = await runCli(['suppression', 'import', file('rows.csv', `${csv}\n`), '--json'], env);
  expect(again.code).toBe(1);
  expect(JSON.parse(again.stdout)).toMatchObject({ rows: 7, added: 0, widened: 0, alreadySuppressed: 3, refused: 4, refusals: [{ line: 3 }, { line: 4 }, { line: 7 }, { line: 9 }] });
});

it('a file without a header (one address a line) imports; a wrong header or an unclosed quote imports nothing and exits 64', async () => {
  const plain = await runCli(['suppression', 'import', file('plain.csv', 'plain1@example.com\nplain2@example.com,complaint\n')], env);
  expect(plain.code, plain.stderr).toBe(0);
  expect(await suppressions().findOne({ _id: 'plain2@example.com' })).toMatchObject({ reason: 'complaint', source: 'import' });

  const typo = await runCli(['suppression', 'import', file('typo.csv', 'adress,reason\ntypo@example.com,manual\n')], env);
  expect(typo.code).toBe(64);
  expect(typo.stderr).toContain('typo.csv: line 1: unknown column "adress" (known: address, reason, source, time, scope); nothing imported');

  const quote = await runCli(['suppression', 'import', file('quote.csv', 'address\nq1@example.com\n"q2@example.com\nq3@example.com\n')], env);
  expect(quote.code).toBe(64);
  expect(quote.stderr).toMatch(/quote\.csv: line 3: .*quote.*; nothing imported/i);
  for (const a of ['typo@example.com', 'q1@example.com', 'q3@example.com']) expect(await suppressions().countDocuments({ _id: a })).toBe(0);
});

it('export writes CSV a spreadsheet reads back (quoting by the library), to a file or stdout; an unwritable file exits 73', async () => {
  await runCli(['suppression', 'import', file('q.csv', 'address,reason,source\nquoted@example.com,complaint,"relay, ""east"""\n')], env);
  const out = join(dir, 'out.csv');
  const r = await runCli(['suppression', 'export', out], env);
  expect(r.code, r.stderr).toBe(0);
  const rows = parse(readFileSync(out, 'utf8'), { columns: true }) as Array<Record<string, string>>;
  expect(rows.find((x) => x['address'] === 'quoted@example.com')).toMatchObject({ reason: 'complaint', source: 'relay, "east"', scope: 'all' });
  const stdout = await runCli(['suppression', 'export', '--json'], env);
  expect(stdout.code, stdout.stderr).toBe(0);
  expect(stdout.stdout.trim().split('\n')).toHaveLength(rows.length);
  const bad = await runCli(['suppression', 'export', join(dir, 'no', 'such', 'dir.csv')], env);
  expect(bad.code).toBe(73);
  expect(bad.stderr).toContain('cannot write');
});
