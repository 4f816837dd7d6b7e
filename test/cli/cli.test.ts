/**
 * The process tier: the real `mailwheel` CLI in a child process (tsx over the current source).
 * Exit codes (78 bad config, 64 bad command line), help, secrets kept out of the output, and
 * `schedule show` against the real MongoDB-wire server.
 */
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, writeTestConfig } from '../helpers/cli.js';
import { testDb, type TestDb } from '../helpers/db.js';

const EX_USAGE = 64;
const EX_CONFIG = 78;
/** No daemon is started by these commands, but keep them away from any real server anyway. */
const QUIET = { LOG_LEVEL: 'warn', MONGODB_URI: 'mongodb://127.0.0.1:9/unused', SMTP_URL: 'smtp://127.0.0.1:9' };

describe('mailwheel config check', () => {
  it('exits 78 and names the field for a bad value', async () => {
    const file = writeTestConfig({ smtp: { poolSize: 0 } });
    const r = await runCli(['config', 'check', '--config', file], QUIET);
    expect(r.code).toBe(EX_CONFIG);
    expect(r.stderr).toContain('smtp.poolSize');
    expect(r.stdout).not.toContain('config OK');
  });

  it('exits 78 for a file that is not JSON, naming the file', async () => {
    const file = writeTestConfig({});
    writeFileSync(file, '{ "smtp": ');
    const r = await runCli(['config', 'check'], { ...QUIET, MAILWHEEL_CONFIG: file });
    expect(r.code).toBe(EX_CONFIG);
    expect(r.stderr).toContain(file);
  });

  it('exits 78 for a bad environment value, naming the field', async () => {
    const r = await runCli(['config', 'check'], { ...QUIET, SMTP_URL: 'not-a-url' });
    expect(r.code).toBe(EX_CONFIG);
    expect(r.stderr).toContain('smtp.url');
  });

  it('exits 0 for a good config, prints the effective values and no credentials', async () => {
    const file = writeTestConfig({ smtp: { poolSize: 7 } });
    const r = await runCli(['config', 'check', '--config', file], {
      LOG_LEVEL: 'info',
      SMTP_URL: 'smtp://user:s3cr3t-smtp@127.0.0.1:2525',
      MONGODB_URI: 'mongodb://dbuser:s3cr3t-db@127.0.0.1:27017/mailwheel',
      MAILWHEEL_UNSUBSCRIBE_SECRET: 's3cr3t-unsubscribe-key',
    });
    expect(r.code).toBe(0);
    const all = r.stdout + r.stderr;
    expect(all).not.toContain('s3cr3t');
    expect(all).not.toContain('dbuser');
    // stdout is the JSON alone (a script can pipe it to jq); the verdict goes to stderr.
    expect(r.stderr).toContain('config OK');
    const printed = JSON.parse(r.stdout) as {
      sources: string[];
      config: { smtp: { url: string; poolSize: number }; mongodb: { uri: string } };
    };
    expect(printed.config.smtp.poolSize).toBe(7);
    expect(printed.config.smtp.url).toContain('127.0.0.1:2525');
    expect(printed.config.mongodb.uri).toContain('127.0.0.1:27017/mailwheel');
    expect(printed.sources).toContain(file);
  });
});

// Independent short-lived processes: run them side by side.
describe.concurrent('command line errors and help', () => {
  it('run-minute --at with a bad instant exits 64 and names --at', async () => {
    const r = await runCli(['run-minute', '--at', 'not-a-date'], QUIET);
    expect(r.code).toBe(EX_USAGE);
    expect(r.stderr).toContain('--at');
  });

  it('run-minute without --at exits 64', async () => {
    const r = await runCli(['run-minute'], QUIET);
    expect(r.code).toBe(EX_USAGE);
    expect(r.stderr).toContain('--at');
  });

  it('an unknown subcommand exits 64', async () => {
    const r = await runCli(['frobnicate'], QUIET);
    expect(r.code).toBe(EX_USAGE);
  });

  it.each([
    [['start'], 'start'],
    [['run-minute'], 'run-minute'],
    [['seed-users'], 'seed-users'],
    [['schedule', 'show'], 'show'],
    [['config', 'check'], 'check'],
  ])('%j --help exits 0 and prints its usage', async (args, name) => {
    const r = await runCli([...args, '--help'], QUIET);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`Usage: mailwheel .*${name}`));
  });
});

describe('mailwheel schedule show (real MongoDB-wire server)', () => {
  let db: TestDb;
  let env: Record<string, string>;

  beforeAll(async () => {
    db = await testDb('cli_schedule');
    // String ids, as many applications use (the Document type defaults _id to ObjectId).
    await db.db.collection<{ _id: string } & Record<string, unknown>>('users').insertMany([
      { _id: 'ny-spring', email: 'spring@example.test', active: true, timezone: 'America/New_York', emailTimes: ['02:30'] },
      { _id: 'ny-fall', email: 'fall@example.test', active: true, timezone: 'America/New_York', emailTimes: ['01:30'] },
      { _id: 'gone', email: 'gone@example.test', active: false, emailTimes: ['09:00'] },
    ]);
    env = { LOG_LEVEL: 'warn', MONGODB_URI: db.uri, SMTP_URL: 'smtp://127.0.0.1:9', MAILWHEEL_CONFIG: writeTestConfig({ http: { enabled: false } }) };
  });

  afterAll(async () => {
    await db?.cleanup();
  });

  it('a slot inside the spring-forward gap fires when the gap ends, then at its local time', async () => {
    // New York, 2026-03-08: 02:00 EST (UTC-5) jumps to 03:00 EDT (UTC-4), so 02:30 does not exist
    // that day and fires at 03:00 EDT = 07:00Z. The next day 02:30 EDT = 06:30Z.
    // (On 2026-03-07, 02:30 EST = 07:30Z, before --from: not listed.)
    const r = await runCli(['schedule', 'show', '--user', 'ny-spring', '--json', '--from', '2026-03-07T12:00:00Z', '--count', '2'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([
      { utc: '2026-03-08T07:00:00.000Z', local: '2026-03-08T03:00:00.000-04:00' },
      { utc: '2026-03-09T06:30:00.000Z', local: '2026-03-09T02:30:00.000-04:00' },
    ]);
  });

  it('an ambiguous slot on the fall-back day fires once, at its first occurrence', async () => {
    // New York, 2026-11-01: 02:00 EDT falls back to 01:00 EST, so 01:30 happens twice; the first
    // (EDT, UTC-4) is 05:30Z. The next days are on EST (UTC-5): 06:30Z.
    const r = await runCli(['schedule', 'show', '--user', 'ny-fall', '--json', '--from', '2026-10-31T12:00:00Z', '--count', '3'], env);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([
      { utc: '2026-11-01T05:30:00.000Z', local: '2026-11-01T01:30:00.000-04:00' },
      { utc: '2026-11-02T06:30:00.000Z', local: '2026-11-02T01:30:00.000-05:00' },
      { utc: '2026-11-03T06:30:00.000Z', local: '2026-11-03T01:30:00.000-05:00' },
    ]);
  });

  it('an unknown user exits non-zero with a message naming the user', async () => {
    const r = await runCli(['schedule', 'show', '--user', 'nobody-here', '--json'], env);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('nobody-here');
  });

  it('an inactive user exits non-zero and says so', async () => {
    const r = await runCli(['schedule', 'show', '--user', 'gone'], env);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/inactive/);
  });

  it('a bad --from exits 64 naming --from', async () => {
    const r = await runCli(['schedule', 'show', '--user', 'ny-spring', '--from', 'yesterday'], env);
    expect(r.code).toBe(EX_USAGE);
    expect(r.stderr).toContain('--from');
  });
});
