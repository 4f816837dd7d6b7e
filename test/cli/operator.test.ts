/**
 * Issue 11, as an operator meets the CLI (processes over the current source, real FerretDB):
 * - every exit code the README states, in one table;
 * - one line, not a stack trace, for a file that cannot be written (`plan --svg`), and a closed
 *   pipe (`schedule show ... | head -2`) is not an error;
 * - `seed-users --drop` refuses to drop documents it did not create unless `--yes`;
 * - `--json` on seed-users and preview carries JSON values.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliArgv, repoRoot, runCli, writeTestConfig, type CliResult } from '../helpers/cli.js';
import { testDb, type TestDb } from '../helpers/db.js';

/** No server is needed for these: keep them away from any real one. */
const QUIET = { LOG_LEVEL: 'warn', MONGODB_URI: 'mongodb://127.0.0.1:9/unused', SMTP_URL: 'smtp://127.0.0.1:9' };
/** A stack trace line, which an operator should never see for an expected failure. */
const STACK = /^\s+at /m;

describe.concurrent('exit codes as the README states them (0, 1, 64, 73, 78)', () => {
  const badConfig = writeTestConfig({ smtp: { poolSize: 0 } });
  it.each<[string, string[], number]>([
    ['--help', ['--help'], 0],
    ['--version', ['--version'], 0],
    ['a subcommand --help', ['broadcast', 'send', '--help'], 0],
    ['an unknown command', ['frobnicate'], 64],
    ['an unknown subcommand', ['broadcast', 'frobnicate'], 64],
    ['an unknown nested subcommand', ['schedule', 'frobnicate'], 64],
    ['an unknown option', ['plan', '--bogus'], 64],
    ['a missing argument', ['seed-users'], 64],
    ['an extra argument', ['plan', 'extra'], 64],
    ['a missing required option', ['schedule', 'show'], 64],
    ['a bad option value', ['plan', '--hours', 'many'], 64],
    ['a bad ratio', ['seed-users', '10', '--inactive-ratio', '2'], 64],
    ['a bad config value', ['config', 'check', '--config', badConfig], 78],
    ['an --svg that cannot be created', ['plan', '--svg', '/nonexistent/dir/x.svg'], 73],
  ])('%s (%j) exits %i, in one line', async (_what, args, code) => {
    const r = await runCli(args, QUIET);
    expect(r.code, r.stderr).toBe(code);
    expect(r.stderr).not.toMatch(STACK);
    if (code !== 0) expect(r.stderr).toMatch(/^(mailwheel: |error: )/);
  });

  it('plan --svg into a missing folder names the path and the cause, before reading any user', async () => {
    const r = await runCli(['plan', '--svg', '/nonexistent/dir/x.svg'], QUIET);
    expect(r.code).toBe(73);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('/nonexistent/dir/x.svg');
    expect(r.stderr).toContain('ENOENT');
  });
});

/** Runs the CLI through bash with `set -o pipefail`, as an operator's shell would, into `| head -N`. */
function runPipedToHead(args: string[], lines: number, env: Record<string, string>): Promise<CliResult> {
  const quoted = cliArgv(args).map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const script = `set -o pipefail; "${process.execPath}" ${quoted} | head -${lines}`;
  const child = spawn('bash', ['-c', script], { cwd: repoRoot, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  return new Promise((res) => child.on('close', (code, signal) => res({ code, signal, stdout, stderr })));
}

describe('against a real MongoDB-wire server', () => {
  let db: TestDb;
  let env: Record<string, string>;

  beforeAll(async () => {
    db = await testDb('cli_operator');
    env = { LOG_LEVEL: 'warn', MONGODB_URI: db.uri, SMTP_URL: 'smtp://127.0.0.1:9', MAILWHEEL_CONFIG: writeTestConfig({ http: { enabled: false } }) };
  });

  afterAll(async () => {
    await db?.cleanup();
  });

  it('schedule show | head -2: a closed pipe exits 0 quietly', async () => {
    await db.db.collection<{ _id: string } & Record<string, unknown>>('users').insertOne({ _id: 'piped', email: 'piped@example.test', active: true, timezone: 'UTC', emailTimes: ['09:00', '21:00'] });
    const r = await runPipedToHead(['schedule', 'show', '--user', 'piped', '--count', '100000'], 2, env);
    expect(r.stdout.trim().split('\n')).toHaveLength(2);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    await db.db.collection<{ _id: string }>('users').deleteOne({ _id: 'piped' });
  });

  it('seed-users --drop refuses a collection holding documents it did not create, unless --yes', async () => {
    const users = db.db.collection<{ _id: string } & Record<string, unknown>>('users');
    // A collection of seeded users can be dropped and reseeded without asking.
    const first = await runCli(['seed-users', '30', '--seed', '3'], env);
    expect(first.code, first.stderr).toBe(0);
    const again = await runCli(['seed-users', '20', '--drop', '--seed', '4'], env);
    expect(again.code, again.stderr).toBe(0);
    expect(await users.countDocuments({})).toBe(20);

    // One real user among them: refused, named, nothing deleted.
    await users.insertOne({ _id: 'real-user', email: 'real@example.test', active: true, emailTimes: ['09:00'] });
    const refused = await runCli(['seed-users', '10', '--drop'], env);
    expect(refused.code).toBe(64);
    expect(refused.stderr).not.toMatch(STACK);
    expect(refused.stderr).toContain(`${db.dbName}.users`);
    expect(refused.stderr).toMatch(/1 document that seed-users did not create \(of 21\)/);
    expect(refused.stderr).toContain('--yes');
    expect(await users.countDocuments({})).toBe(21);
    expect(await users.findOne({ _id: 'real-user' })).not.toBeNull();

    // --yes: dropped, and the output says what went.
    const forced = await runCli(['seed-users', '10', '--drop', '--yes', '--json'], env);
    expect(forced.code, forced.stderr).toBe(0);
    expect(JSON.parse(forced.stdout)).toMatchObject({ seeded: 10, dropped: { documents: 21, foreign: 1 } });
    expect(await users.findOne({ _id: 'real-user' })).toBeNull();
    expect(await users.countDocuments({})).toBe(10);
  });

  it('seed-users --json: one object of numbers, counts equal to the documents written', async () => {
    const r = await runCli(['seed-users', '200', '--drop', '--seed', '9', '--inactive-ratio', '0.1', '--invalid-ratio', '0.05', '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(out).toMatchObject({ database: db.dbName, collection: 'users', seed: 9, seeded: 200, active: 170, inactive: 20, invalid: 10, failed: 0 });
    expect(typeof out['seconds']).toBe('number');
    const users = db.db.collection('users');
    expect(await users.countDocuments({ _seededBy: 'mailwheel' })).toBe(200);
    expect(await users.countDocuments({ $or: [{ active: { $ne: true } }, { unsubscribed: true }] })).toBe(20);
  });

  it('preview --json: the slot, envelope, headers and parts as JSON values', async () => {
    await db.db.collection<{ _id: string } & Record<string, unknown>>('users').insertOne({ _id: 'pj', email: 'pj@example.test', name: 'P J', active: true, timezone: 'Europe/Berlin', emailTimes: ['07:30'] });
    const r = await runCli(['preview', '--user', 'pj', '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { user: string; slot: string; key: string; dueAt: string; envelope: { to: string[] }; headers: Array<{ name: string; value: string }>; text: string };
    expect(out).toMatchObject({ kind: 'scheduled', user: 'pj', slot: '07:30', timezone: 'Europe/Berlin', envelope: { to: ['pj@example.test'] } });
    expect(out.key).toMatch(/^s:pj:07:30:\d{4}-\d\d-\d\d$/);
    expect(Number.isNaN(Date.parse(out.dueAt))).toBe(false);
    expect(out.headers.find((h) => h.name === 'Subject')?.value).toBe('Your 07:30 note');
    expect(out.text).toContain('Hello P J,');
  });
});
