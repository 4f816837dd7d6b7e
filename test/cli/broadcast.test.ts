/**
 * Broadcasts end to end against the real MongoDB-wire server and a real SMTP server, with the
 * daemon in-process and the CLI as a process:
 * - 25,000 users: exactly one message to each active, subscribed, unsuppressed, valid user in the
 *   segment, none to anyone else; the counters say the same;
 * - a refused segment (`$where`) is rejected before anything is written;
 * - `--dry-run` counts and renders without writing;
 * - two daemons on one database: one runs it (the lease), each user gets it once.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { App } from '../../src/app/app.js';
import { startTestApp } from '../helpers/app.js';
import { broadcastUsers, getBroadcast, HANG_GUARD_MS, insertUsers, perUser, waitForStatus, waitWhileProgressing, writeBodies } from '../helpers/broadcasts.js';
import { runCli, spawnCli, writeTestConfig } from '../helpers/cli.js';
import { testDb, type TestDb } from '../helpers/db.js';
import { TestSmtpServer } from '../helpers/smtp-server.js';

const EX_USAGE = 64;
const OVERRIDES = {
  smtp: { poolSize: 10 },
  broadcasts: { batchSize: 250, pollMs: 300, controlPollMs: 200, maxConcurrent: 1 },
  send: { claimStaleMs: 5_000 },
};

describe('a 25,000-user broadcast', () => {
  const USERS = 25_000;
  let db: TestDb;
  let smtp: TestSmtpServer;
  let app: App | undefined;
  let env: Record<string, string>;
  let bodies: { textFile: string; htmlFile: string };

  beforeAll(async () => {
    db = await testDb('broadcast25k');
    smtp = await TestSmtpServer.start();
    const config = writeTestConfig({ ...OVERRIDES, http: { enabled: false }, rate: { perSecond: null, perDay: null } });
    env = { MONGODB_URI: db.uri, SMTP_URL: smtp.url, MAILWHEEL_CONFIG: config, LOG_LEVEL: 'warn' };
    bodies = writeBodies(config);
  });

  afterAll(async () => {
    await app?.close();
    await smtp?.close();
    await db?.cleanup();
  });

  // Bounded by its work: it fails when nothing moves (no message, no progress line) for a minute,
  // however long a slow machine needs for 17,500 messages.
  it('reaches every active, subscribed, unsuppressed user in the segment exactly once, and nobody else', { timeout: HANG_GUARD_MS }, async () => {
    // 1 in 10 outside the segment, 1 in 10 inactive, 1 in 10 unsubscribed, 1 in 50 suppressed
    // (mixed case: the list is case-insensitive), 1 in 100 with an unusable address.
    const kind = (i: number): 'out' | 'inactive' | 'unsubscribed' | 'suppressed' | 'invalid' | 'in' =>
      i % 10 === 0 ? 'out' : i % 10 === 1 ? 'inactive' : i % 10 === 2 ? 'unsubscribed' : i % 50 === 3 ? 'suppressed' : i % 100 === 4 ? 'invalid' : 'in';
    const users = broadcastUsers(USERS, 'b', (i) => ({
      plan: kind(i) === 'out' ? 'free' : i % 2 ? 'pro' : 'team',
      ...(kind(i) === 'inactive' ? { active: false } : {}),
      ...(kind(i) === 'unsubscribed' ? { unsubscribed: true } : {}),
      ...(kind(i) === 'invalid' ? { email: `b${i}-at-example.test` } : {}),
    }));
    await insertUsers(db.db, users);
    const suppressed = users.filter((_, i) => kind(i) === 'suppressed');
    await db.db.collection('mailwheel_suppressions').insertMany(suppressed.map((u) => ({ _id: String(u['email']), suppressed: true, reason: 'manual', hardBounces: 0, updatedAt: new Date() })) as never[]);
    const expected = new Set(users.filter((_, i) => kind(i) === 'in').map((u) => String(u['_id'])));

    ({ app } = await startTestApp(db.uri, smtp.url, { ...OVERRIDES }));
    await app.start();

    // --wait follows the broadcast to its end; not a terminal here, so progress comes as lines.
    const started = Date.now();
    const cli = spawnCli(['broadcast', 'send', '--subject', 'News for {{name}}', '--text-file', bodies.textFile, '--html-file', bodies.htmlFile, '--segment', '{"plan": {"$in": ["pro", "team"]}}', '--wait'], env);
    let exited = false;
    void cli.done.then(() => (exited = true));
    await waitWhileProgressing('broadcast send --wait', () => exited, () => smtp.messages.length + cli.stderr.length, 60_000);
    const send = await cli.done;
    const seconds = (Date.now() - started) / 1000;
    expect(send.code, send.stderr).toBe(0);
    const id = send.stdout.trim();
    expect(id).toMatch(/^\d{8}-\d{6}-[0-9a-f]{6}$/);
    expect(send.stderr).toContain(`broadcast ${id} done: 17,500 / 17,500 (100.0 %); sent ${expected.size.toLocaleString('en-US')},`);
    expect(send.stderr).toMatch(new RegExp(`${id}: (queued|running), [\\d,]+ (users|/ 17,500)`));
    const done = await getBroadcast(db.db, id);
    expect(done.status).toBe('done');

    const got = perUser(smtp, id);
    const twice = [...got].filter(([, n]) => n > 1);
    const stray = [...got.keys()].filter((u) => !expected.has(u));
    const missed = [...expected].filter((u) => !got.has(u));
    expect(twice, 'sent more than once').toEqual([]);
    expect(stray, 'sent to someone outside the audience').toEqual([]);
    expect(missed, 'missed').toEqual([]);
    expect(done.counters).toEqual({
      total: 25_000 - 2_500 - 2_500 - 2_500,
      sent: expected.size,
      failed: 0,
      skipped: users.filter((_, i) => kind(i) === 'invalid').length,
      suppressed: suppressed.length,
    });
    const sample = smtp.messages.find((m) => m.headers.get('x-mailwheel-key') === `b:${id}:b000005`);
    expect(sample?.subject).toBe('News for User 5');
    expect(sample?.raw).toContain('Hello=20User 5,');
    console.log(`25k broadcast: ${expected.size} messages in ${seconds.toFixed(1)} s (${Math.round(expected.size / seconds)} msgs/s, \`send --wait\` from start to done: CLI start, poll, segment scan included)`);

    // `status` prints the final counters.
    const status = await runCli(['broadcast', 'status', id], env);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/status\s+done/);
    expect(status.stdout).toContain(`sent       ${expected.size.toLocaleString('en-US')}`);
  });
});

describe('checks before anything is written', () => {
  let db: TestDb;
  let env: Record<string, string>;
  let bodies: { textFile: string; htmlFile: string };

  beforeAll(async () => {
    db = await testDb('broadcast_checks');
    await insertUsers(
      db.db,
      broadcastUsers(20, 'c', (i) => ({ plan: i < 15 ? 'pro' : 'free', ...(i === 1 ? { email: 'broken' } : {}) })),
    );
    await db.db.collection('mailwheel_suppressions').insertOne({ _id: 'c2@example.test', suppressed: true, reason: 'manual', hardBounces: 0, updatedAt: new Date() } as never);
    const config = writeTestConfig({ ...OVERRIDES, http: { enabled: false } });
    env = { MONGODB_URI: db.uri, SMTP_URL: 'smtp://127.0.0.1:9', MAILWHEEL_CONFIG: config, LOG_LEVEL: 'warn' };
    bodies = writeBodies(config);
  });

  afterAll(async () => {
    await db?.cleanup();
  });

  const collections = async (): Promise<string[]> => (await db.db.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name).filter((n) => n.startsWith('mailwheel_broadcast'));

  it('a segment with $where is refused naming the operator, exit 64, and nothing is written', async () => {
    const r = await runCli(['broadcast', 'send', '--subject', 'S', '--text-file', bodies.textFile, '--segment', '{"$or": [{"plan": "pro"}, {"$where": "sleep(100) || true"}]}'], env);
    expect(r.code).toBe(EX_USAGE);
    expect(r.stderr).toContain('operator $where is not allowed');
    expect(r.stderr).toContain('$or[1].$where');
    expect(r.stdout).toBe('');
    expect(await collections()).toEqual([]);
  });

  it.each([
    ['{"age": {"$expr": 1}}', '$expr'],
    ['{"a": {"$function": {"body": "x"}}}', '$function'],
    ['{"a": {"$accumulator": {}}}', '$accumulator'],
    ['{"a": {"$bogus": 1}}', '$bogus'],
  ])('%s is refused too, naming %s', async (segment, operator) => {
    const r = await runCli(['broadcast', 'send', '--subject', 'S', '--text-file', bodies.textFile, '--segment', segment], env);
    expect(r.code).toBe(EX_USAGE);
    expect(r.stderr).toContain(operator);
    expect(await collections()).toEqual([]);
  });

  it('a template mistake and a missing file are refused before anything is written', async () => {
    const badSubject = await runCli(['broadcast', 'send', '--subject', 'Hi {{nmae}}', '--text-file', bodies.textFile], env);
    expect(badSubject.code).toBe(EX_USAGE);
    expect(badSubject.stderr).toContain('unknown variable "nmae"');
    const missing = await runCli(['broadcast', 'send', '--subject', 'S', '--text-file', '/nonexistent/body.txt'], env);
    expect(missing.code).toBe(EX_USAGE);
    expect(missing.stderr).toContain('--text-file');
    expect(await collections()).toEqual([]);
  });

  it('{{time}} and {{date}} (scheduled mail only) are refused in a broadcast, exit 64 naming the placeholder', async () => {
    const r = await runCli(['broadcast', 'send', '--subject', 'Your {{time}} news', '--text-file', bodies.textFile], env);
    expect(r.code).toBe(EX_USAGE);
    expect(r.stderr).toContain('template subject: {{time}} at offset 5: variable "time" is not available in a broadcast');
    const date = await runCli(['broadcast', 'send', '--subject', 'S', '--text-file', writeBodies(env['MAILWHEEL_CONFIG'] ?? '', 'Sent {{date}}').textFile, '--dry-run'], env);
    expect(date.code).toBe(EX_USAGE);
    expect(date.stderr).toContain('variable "date" is not available in a broadcast');
    expect(await collections()).toEqual([]);
    writeBodies(env['MAILWHEEL_CONFIG'] ?? '');
  });

  it('--dry-run counts the audience and renders a sample, writing nothing', async () => {
    const r = await runCli(['broadcast', 'send', '--subject', 'Hi {{name}}', '--text-file', bodies.textFile, '--html-file', bodies.htmlFile, '--segment', '{"plan": "pro"}', '--dry-run', '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { matching: number; recipients: number; suppressed: number; skipped: number; sample: { subject: string; to: { address: string } } };
    // 15 "pro" users: c1 has a broken address, c2 is suppressed.
    expect(out).toMatchObject({ matching: 15, recipients: 13, suppressed: 1, skipped: 1 });
    expect(out.sample.subject).toBe('Hi User 0');
    expect(out.sample.to.address).toBe('c0@example.test');
    const text = await runCli(['broadcast', 'send', '--subject', 'Hi {{name}}', '--text-file', bodies.textFile, '--dry-run'], env);
    expect(text.stdout).toContain('dry run: nothing was written');
    expect(text.stdout).toMatch(/would send\s+18/);
    expect(await collections()).toEqual([]);
  });

  it('unknown ids: status, pause, resume and cancel exit non-zero naming the id', async () => {
    for (const cmd of ['status', 'pause', 'resume', 'cancel']) {
      const r = await runCli(['broadcast', cmd, 'no-such-broadcast'], env);
      expect(r.code, cmd).toBe(1);
      expect(r.stderr).toContain('no broadcast with id "no-such-broadcast"');
    }
  });
});

describe('send with no daemon running', () => {
  let db: TestDb;
  let env: Record<string, string>;
  let bodies: { textFile: string; htmlFile: string };

  beforeAll(async () => {
    db = await testDb('broadcast_nodaemon');
    await insertUsers(db.db, broadcastUsers(5, 'n', () => ({ plan: 'pro' })));
    const config = writeTestConfig({ ...OVERRIDES, http: { enabled: false } });
    env = { MONGODB_URI: db.uri, SMTP_URL: 'smtp://127.0.0.1:9', MAILWHEEL_CONFIG: config, LOG_LEVEL: 'warn' };
    bodies = writeBodies(config);
  });

  afterAll(async () => {
    await db?.cleanup();
  });

  it('queues it, says no daemon is running instead of "starts it within seconds", exit 0', async () => {
    const r = await runCli(['broadcast', 'send', '--subject', 'S', '--text-file', bodies.textFile], env);
    expect(r.code, r.stderr).toBe(0);
    const id = r.stdout.trim();
    expect(r.stderr).toContain(`warning: no mailwheel daemon is running`);
    expect(r.stderr).toContain(`broadcast ${id} is queued and starts when one runs`);
    expect(r.stderr).not.toContain('within seconds');
    expect((await getBroadcast(db.db, id)).status).toBe('queued');
  });

  it('with --wait, fails after --pickup-timeout (exit 1) rather than printing "queued" forever', { timeout: 120_000 }, async () => {
    const r = await runCli(['broadcast', 'send', '--subject', 'S', '--text-file', bodies.textFile, '--wait', '--pickup-timeout', '2'], env);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/broadcast \S+ is still queued \d+ s after it was due: no mailwheel daemon took it up/);
  });

  it('warns when the segment matches nobody (a typo in a field name)', async () => {
    const r = await runCli(['broadcast', 'send', '--subject', 'S', '--text-file', bodies.textFile, '--segment', '{"paln": "pro"}', '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('warning: the segment matches 0 users');
    expect(JSON.parse(r.stdout)).toMatchObject({ status: 'queued', matching: 0, daemons: 0 });
  });

  it('pause, resume and cancel take --json; status and list --json show the segment as an object', { timeout: 120_000 }, async () => {
    const sent = await runCli(['broadcast', 'send', '--subject', 'S', '--text-file', bodies.textFile, '--segment', '{"plan": {"$in": ["pro"]}}', '--json'], env);
    const { id } = JSON.parse(sent.stdout) as { id: string };
    const pause = await runCli(['broadcast', 'pause', id, '--json', '--timeout', '1'], env);
    expect(pause.code, pause.stderr).toBe(0);
    // No daemon here to apply it: recorded, not applied.
    expect(JSON.parse(pause.stdout)).toMatchObject({ id, action: 'pause', result: 'not-applied', applied: false, status: 'queued', counters: { sent: 0 } });
    const resume = await runCli(['broadcast', 'resume', id, '--json'], env);
    expect(resume.code, resume.stderr).toBe(0);
    expect(JSON.parse(resume.stdout)).toMatchObject({ id, action: 'resume', result: 'requested' });
    const cancel = await runCli(['broadcast', 'cancel', id, '--json', '--no-wait'], env);
    expect(cancel.code, cancel.stderr).toBe(0);
    expect(JSON.parse(cancel.stdout)).toMatchObject({ id, action: 'cancel', result: 'requested', applied: false });
    const status = await runCli(['broadcast', 'status', id, '--json'], env);
    expect(JSON.parse(status.stdout)).toMatchObject({ id, segment: { plan: { $in: ['pro'] } }, request: 'cancel' });
    const list = JSON.parse((await runCli(['broadcast', 'list', '--json'], env)).stdout) as Array<{ id: string; segment: unknown }>;
    expect(list.find((b) => b.id === id)?.segment).toEqual({ plan: { $in: ['pro'] } });
  });

  it('--at without a UTC offset is refused, exit 64, nothing written', async () => {
    const before = await db.db.collection('mailwheel_broadcasts').countDocuments();
    const r = await runCli(['broadcast', 'send', '--subject', 'S', '--text-file', bodies.textFile, '--at', '2030-01-01T09:00:00'], env);
    expect(r.code).toBe(EX_USAGE);
    expect(r.stderr).toContain('--at: "2030-01-01T09:00:00" has no UTC offset');
    expect(await db.db.collection('mailwheel_broadcasts').countDocuments()).toBe(before);
    const ok = await runCli(['broadcast', 'send', '--subject', 'S', '--text-file', bodies.textFile, '--at', '2030-01-01T09:00:00+01:00', '--json'], env);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ at: '2030-01-01T08:00:00.000Z' });
  });
});

describe('two daemons on one database', () => {
  const USERS = 3_000;
  let db: TestDb;
  let smtp: TestSmtpServer;
  const apps: App[] = [];

  beforeAll(async () => {
    db = await testDb('broadcast_two');
    smtp = await TestSmtpServer.start();
    await insertUsers(db.db, broadcastUsers(USERS, 't'));
  });

  afterAll(async () => {
    for (const a of apps) await a.close();
    await smtp?.close();
    await db?.cleanup();
  });

  async function daemon(): Promise<App> {
    const { app } = await startTestApp(db.uri, smtp.url, { ...OVERRIDES, rate: { perSecond: 1_000, perDay: null } });
    apps.push(app);
    await app.start();
    return app;
  }

  it('one runs it (the lease), each user gets it once; when that one stops, the other finishes it', { timeout: 120_000 }, async () => {
    const [a, b] = await Promise.all([daemon(), daemon()]);
    const doc = await a.broadcasts.store.create({ subject: 'Two daemons', text: 'Hi {{name}}', segment: '{}' });
    await Promise.all([a.broadcasts.poll(), b.broadcasts.poll()]);
    await vi.waitFor(() => expect(smtp.messages.length).toBeGreaterThan(USERS * 0.3), { timeout: 30_000, interval: 20 });
    // Exactly one of them took the run.
    const running = [a, b].filter((x) => x.broadcasts.running().length > 0);
    expect(running).toHaveLength(1);
    const [first] = running as [App];
    const other = first === a ? b : a;
    expect(other.broadcasts.stats.started).toBe(0);

    // The runner stops gracefully (queued messages handed back, lease released); the other
    // daemon takes over at its next poll.
    await first.close();
    const done = await waitForStatus(db.db, doc._id, ['done'], 60_000);
    expect(other.broadcasts.stats.started).toBe(1);
    expect(done.gen).toBe(2);

    const got = perUser(smtp, doc._id);
    expect(got.size).toBe(USERS);
    expect([...got].filter(([, n]) => n > 1)).toEqual([]);
    expect(done.counters).toMatchObject({ sent: USERS, failed: 0, skipped: 0, suppressed: 0, total: USERS });
    expect((await getBroadcast(db.db, doc._id)).owner).toBe(other.instances.id);
  });
});
