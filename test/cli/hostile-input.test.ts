/**
 * Hostile and odd input to broadcasts (issue 10), against the real MongoDB-wire server and a real
 * SMTP server, the daemon in-process and the CLI as a process:
 * - a segment with a `__proto__` (or `constructor`, `prototype`) key is refused with exit 64
 *   naming the key and where it was, before anything is written (it once widened the broadcast
 *   to every user: the key set the prototype instead of a condition);
 * - users whose `unsubscribed` is not strictly false, null or absent ("true", 1, "yes", {}) are
 *   not matched by the recipient filter on the server and get no broadcast;
 * - `plan` does not schedule such users either, and counts them as invalid;
 * - `--segment-file` reads a segment too long for a command line, and names the file when it
 *   cannot be read or is not JSON.
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app/app.js';
import { recipientFilter } from '../../src/core/segment.js';
import { startTestApp } from '../helpers/app.js';
import { broadcastUsers, insertUsers, perUser, writeBodies } from '../helpers/broadcasts.js';
import { runCli, writeTestConfig } from '../helpers/cli.js';
import { testDb, type TestDb } from '../helpers/db.js';
import { TestSmtpServer } from '../helpers/smtp-server.js';
import { usersDueAt } from '../helpers/users.js';

const EX_USAGE = 64;
const OVERRIDES = {
  smtp: { poolSize: 4 },
  broadcasts: { batchSize: 50, pollMs: 200, controlPollMs: 200, maxConcurrent: 1 },
};

/** `unsubscribed` values and whether the user may be mailed (absent: the field is missing). */
const UNSUBSCRIBED: ReadonlyArray<[label: string, value: unknown, mailed: boolean]> = [
  ['absent', undefined, true],
  ['null', null, true],
  ['false', false, true],
  ['true', true, false],
  ['"true"', 'true', false],
  ['1', 1, false],
  ['"yes"', 'yes', false],
  ['{}', {}, false],
  ['0', 0, false],
  ['"false"', 'false', false],
  ['""', '', false],
];

describe('broadcasts and odd unsubscribed values (real MongoDB-wire server, real SMTP server)', () => {
  let db: TestDb;
  let smtp: TestSmtpServer;
  let app: App | undefined;
  let env: Record<string, string>;
  let bodies: { textFile: string; htmlFile: string };
  // Two users per value, all in the segment, plus users outside it.
  const users = UNSUBSCRIBED.flatMap(([, value], v) =>
    broadcastUsers(2, `u${v}_`, () => ({ plan: 'pro', ...(value === undefined ? {} : { unsubscribed: value }) })),
  );
  const outside = broadcastUsers(5, 'out', () => ({ plan: 'free' }));
  const expected = new Set(UNSUBSCRIBED.flatMap(([, , mailed], v) => (mailed ? [`u${v}_000000`, `u${v}_000001`] : [])));

  beforeAll(async () => {
    db = await testDb('hostile_unsub');
    smtp = await TestSmtpServer.start();
    await insertUsers(db.db, [...users, ...outside]);
    const config = writeTestConfig({ ...OVERRIDES, http: { enabled: false }, rate: { perSecond: null, perDay: null } });
    env = { MONGODB_URI: db.uri, SMTP_URL: smtp.url, MAILWHEEL_CONFIG: config, LOG_LEVEL: 'warn' };
    bodies = writeBodies(config);
  });

  afterAll(async () => {
    await app?.close();
    await smtp?.close();
    await db?.cleanup();
  });

  it('the recipient filter matches on the server exactly the users whose unsubscribed is false, null or absent', async () => {
    const filter = recipientFilter({ plan: 'pro' }, { active: 'active', unsubscribed: 'unsubscribed' });
    const ids = (await db.db.collection('users').find(filter, { projection: { _id: 1 } }).toArray()).map((d) => String(d._id));
    expect(new Set(ids)).toEqual(expected);
    expect(ids).toHaveLength(expected.size);
  });

  it('--dry-run counts only them', async () => {
    const r = await runCli(['broadcast', 'send', '--subject', 'S', '--text-file', bodies.textFile, '--segment', '{"plan": "pro"}', '--dry-run', '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ matching: expected.size, recipients: expected.size, skipped: 0 });
  });

  it('a broadcast mails only them, each once', { timeout: 120_000 }, async () => {
    ({ app } = await startTestApp(db.uri, smtp.url, OVERRIDES));
    await app.start();
    const send = await runCli(['broadcast', 'send', '--subject', 'News', '--text-file', bodies.textFile, '--segment', '{"plan": "pro"}', '--wait'], env);
    expect(send.code, send.stderr).toBe(0);
    const id = send.stdout.trim();
    const got = perUser(smtp, id);
    expect(new Set(got.keys())).toEqual(expected);
    expect([...got.values()].every((n) => n === 1)).toBe(true);
  });
});

describe('plan and odd unsubscribed values (CLI, real MongoDB-wire server)', () => {
  let db: TestDb;
  let env: Record<string, string>;

  beforeAll(async () => {
    db = await testDb('hostile_plan');
    const users = usersDueAt(UNSUBSCRIBED.length, '2027-03-01T10:00:00Z', 'q').map((u, i) => {
      const value = UNSUBSCRIBED[i]?.[1];
      return value === undefined ? u : { ...u, unsubscribed: value };
    });
    await db.db.collection('users').insertMany(users);
    const config = writeTestConfig({ http: { enabled: false } });
    env = { MONGODB_URI: db.uri, SMTP_URL: 'smtp://127.0.0.1:9', MAILWHEEL_CONFIG: config, LOG_LEVEL: 'warn' };
  });

  afterAll(async () => {
    await db?.cleanup();
  });

  it('schedules only users whose unsubscribed is false, null or absent; non-booleans count as invalid', async () => {
    const r = await runCli(['plan', '--json', '--from', '2027-03-01T09:00:00Z', '--hours', '2'], env);
    expect(r.code, r.stderr).toBe(0);
    const plan = JSON.parse(r.stdout) as { total: number; users: Record<string, number> };
    const mailed = UNSUBSCRIBED.filter(([, , m]) => m).length;
    const notBoolean = UNSUBSCRIBED.filter(([, v]) => v !== undefined && v !== null && typeof v !== 'boolean').length;
    expect(plan.users).toMatchObject({ read: UNSUBSCRIBED.length, scheduled: mailed, inactive: 1, invalid: notBoolean });
    expect(plan.total).toBe(mailed);
  });
});

describe('segments refused before anything is written (CLI, real MongoDB-wire server)', () => {
  let db: TestDb;
  let env: Record<string, string>;
  let bodies: { textFile: string; htmlFile: string };
  let dir: string;

  beforeAll(async () => {
    db = await testDb('hostile_segment');
    await insertUsers(db.db, broadcastUsers(40, 'p', (i) => ({ plan: i < 10 ? 'pro' : 'free', n: i })));
    const config = writeTestConfig({ ...OVERRIDES, http: { enabled: false } });
    dir = dirname(config);
    env = { MONGODB_URI: db.uri, SMTP_URL: 'smtp://127.0.0.1:9', MAILWHEEL_CONFIG: config, LOG_LEVEL: 'warn' };
    bodies = writeBodies(config);
  });

  afterAll(async () => {
    await db?.cleanup();
  });

  const collections = async (): Promise<string[]> => (await db.db.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name).filter((n) => n.startsWith('mailwheel_broadcast'));
  const send = (...args: string[]) => runCli(['broadcast', 'send', '--subject', 'S', '--text-file', bodies.textFile, ...args], env);

  it.each([
    ['{"__proto__": {"plan": "pro"}}', '__proto__', '(at __proto__)'],
    ['{"$or": [{"plan": "team"}, {"__proto__": {"plan": "pro"}}]}', '__proto__', '(at $or[1].__proto__)'],
    ['{"orders": {"$elemMatch": {"constructor": {"state": "paid"}}}}', 'constructor', '(at orders.$elemMatch.constructor)'],
    ['{"address": {"prototype": {"city": "Berlin"}}}', 'prototype', '(at address.prototype)'],
  ])('--dry-run --json --segment %s exits 64 naming %s and where', async (segment, key, where) => {
    for (const dry of [['--dry-run', '--json'], []]) {
      const r = await send('--segment', segment, ...dry);
      expect(r.code, r.stderr).toBe(EX_USAGE);
      expect(r.stderr).toContain(`"${key}" is not allowed`);
      expect(r.stderr).toContain(where);
      expect(r.stdout).toBe('');
    }
    expect(await collections()).toEqual([]);
  });

  it('--segment-file reads a segment longer than a command line allows', async () => {
    // 200 KB: more than Linux's 128 KiB limit for one command-line argument.
    const ids = Array.from({ length: 20_000 }, (_, i) => `nobody-${String(i).padStart(6, '0')}`);
    ids.push('p000003', 'p000007');
    const file = join(dir, 'long-segment.json');
    writeFileSync(file, JSON.stringify({ _id: { $in: ids } }));
    const r = await send('--segment-file', file, '--dry-run', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ matching: 2, recipients: 2 });
    expect(await collections()).toEqual([]);
  });

  it('--segment-file: an unreadable file, a file that is not JSON, a refused segment, or both options exit 64 naming the problem', async () => {
    const missing = join(dir, 'no-such-segment.json');
    const r1 = await send('--segment-file', missing);
    expect(r1.code).toBe(EX_USAGE);
    expect(r1.stderr).toContain(`--segment-file: cannot read ${missing}: ENOENT`);

    const notJson = join(dir, 'not-json.json');
    writeFileSync(notJson, '{"plan": pro}');
    const r2 = await send('--segment-file', notJson);
    expect(r2.code).toBe(EX_USAGE);
    expect(r2.stderr).toContain(`--segment-file ${notJson}: segment: not valid JSON`);

    const proto = join(dir, 'proto.json');
    writeFileSync(proto, '{"__proto__": {"plan": "pro"}}');
    const r3 = await send('--segment-file', proto, '--dry-run');
    expect(r3.code).toBe(EX_USAGE);
    expect(r3.stderr).toContain(`--segment-file ${proto}: segment: field name "__proto__" is not allowed`);

    const r4 = await send('--segment', '{}', '--segment-file', proto);
    expect(r4.code).toBe(EX_USAGE);
    expect(r4.stderr).toContain('--segment and --segment-file: give one of them, not both');

    const r5 = await send('--segment-file', dir);
    expect(r5.code).toBe(EX_USAGE);
    expect(r5.stderr).toContain(`--segment-file: cannot read ${dir}: EISDIR`);
    expect(await collections()).toEqual([]);
  });
});
