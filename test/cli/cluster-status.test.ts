/**
 * `mailwheel cluster status [--json]` (issue 13), as an operator runs it (processes over the
 * current source, real FerretDB, real Redis, real SMTP server):
 * - no Redis: "one instance (no cluster.redisUrl)", the live daemon from MongoDB's instance
 *   directory (host, pid), the sends recorded in each window; exit 0; `--json` machine-readable;
 * - Redis unreachable (a free port, nothing listening): one line naming redis and its address,
 *   never the URL's password, exit 69;
 * - Redis: the partition table with a running daemon in it.
 */
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, spawnCli, writeTestConfig, type CliProcess } from '../helpers/cli.js';
import { testDb, type TestDb } from '../helpers/db.js';
import { redisKeyPrefix, sharedRedisUrl } from '../helpers/redis.js';
import { TestSmtpServer } from '../helpers/smtp-server.js';
import { usersDueAt } from '../helpers/users.js';

const STACK = /^\s+at /m;
const SENT = 12;
/** Two minutes ago: inside the hour and day windows the status counts. */
const MINUTE = new Date(Math.floor(Date.now() / 60_000) * 60_000 - 2 * 60_000).toISOString();

let db: TestDb;
let smtp: TestSmtpServer;
const daemons: CliProcess[] = [];

beforeAll(async () => {
  db = await testDb('cluster_status');
  smtp = await TestSmtpServer.start();
  await db.db.collection('users').insertMany(usersDueAt(SENT, MINUTE, 'cs'));
});

afterAll(async () => {
  for (const d of daemons) {
    d.child.kill('SIGTERM');
    await d.done;
  }
  await smtp?.close();
  await db?.cleanup();
});

const env = (configFile: string) => ({ MONGODB_URI: db.uri, SMTP_URL: smtp.url, MAILWHEEL_CONFIG: configFile, LOG_LEVEL: 'warn' });

async function daemon(configFile: string): Promise<CliProcess> {
  const d = spawnCli(['start'], { ...env(configFile), LOG_LEVEL: 'info' });
  daemons.push(d);
  await d.waitForLog('mailwheel started', 90_000);
  return d;
}

/** A loopback port with nothing listening on it (bound, then released). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('one instance (no cluster.redisUrl)', () => {
  it('names the mode, lists the live daemon with host and pid, counts the recorded sends; --json carries the same', { timeout: 180_000 }, async () => {
    const config = writeTestConfig({ http: { enabled: false }, rate: { perSecond: 50, perMinute: null, perHour: 1_000, perDay: 5_000 } });
    const sent = await runCli(['run-minute', '--at', MINUTE, '--json'], env(config));
    expect(sent.code, sent.stderr).toBe(0);
    expect(smtp.messages.length).toBe(SENT);
    const d = await daemon(config);

    const text = await runCli(['cluster', 'status'], env(config));
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain('one instance (no cluster.redisUrl)');
    expect(text.stdout).toContain('live instances (MongoDB): 1');
    expect(text.stdout).toContain(`pid ${d.child.pid}`);
    expect(text.stdout).toMatch(new RegExp(`perHour +${SENT} of 1,000 used`));
    expect(text.stdout).toMatch(new RegExp(`perDay +${SENT} of 5,000 used`));

    const json = await runCli(['cluster', 'status', '--json'], env(config));
    expect(json.code, json.stderr).toBe(0);
    const r = JSON.parse(json.stdout) as Record<string, unknown>;
    expect(r).toEqual({
      mode: 'solo',
      partitions: 256,
      instances: [{ id: expect.stringContaining(`:${d.child.pid}:`), host: expect.any(String), pid: d.child.pid, startedAt: expect.any(String), heartbeatAgeMs: expect.any(Number) }],
      rateWindows: {
        perHour: { limit: 1_000, used: SENT, windowMs: 3_600_000, scope: 'local', state: 'up' },
        perDay: { limit: 5_000, used: SENT, windowMs: 86_400_000, scope: 'local', state: 'up' },
      },
    });
  });
});

describe('Redis unreachable', () => {
  it('one line naming redis and its address (not the password), exit 69', { timeout: 60_000 }, async () => {
    const port = await freePort();
    const config = writeTestConfig({ http: { enabled: false }, cluster: { redisUrl: `redis://mw:s3cret-pw@127.0.0.1:${port}` } });
    for (const args of [['cluster', 'status'], ['cluster', 'status', '--json']]) {
      const r = await runCli(args, env(config));
      expect(r.code, r.stderr).toBe(69);
      expect(r.stdout).toBe('');
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^mailwheel: redis at 127\.0\.0\.1:\d+ \(cluster\.redisUrl\) does not answer/);
      expect(r.stderr).toContain(`127.0.0.1:${port}`);
      expect(r.stderr).not.toContain('s3cret-pw');
      expect(r.stderr).not.toMatch(STACK);
    }
  });
});

describe('with Redis', () => {
  it('a partitioned daemon: itself the one member with every partition, host and pid, lease ages, shared windows', { timeout: 180_000 }, async () => {
    const cluster = { redisUrl: sharedRedisUrl(), keyPrefix: redisKeyPrefix('clusterstatus'), leaseTtlMs: 5_000 };
    const config = writeTestConfig({ http: { enabled: false }, cluster, rate: { perSecond: 50, perMinute: 600, perHour: null, perDay: null } });
    const d = await daemon(config);

    const json = await runCli(['cluster', 'status', '--json'], env(config));
    expect(json.code, json.stderr).toBe(0);
    const r = JSON.parse(json.stdout) as { mode: string; members: Array<Record<string, unknown>>; leases: Record<string, unknown>; rateWindows: Record<string, Record<string, unknown>> };
    expect(r).toMatchObject({ mode: 'partitioned', redis: expect.stringMatching(/^127\.0\.0\.1:\d+$/), partitions: 256, free: 0, leaseTtlMs: 5_000 });
    expect(r.members).toEqual([expect.objectContaining({ partitions: 256, pid: d.child.pid, host: expect.any(String), heartbeatAgeMs: expect.any(Number) })]);
    expect(r.leases).toMatchObject({ held: 256, oldestAgeMs: expect.any(Number), newestAgeMs: expect.any(Number) });
    expect(r.rateWindows['perMinute']).toMatchObject({ limit: 600, scope: 'shared', state: 'up', used: expect.any(Number) });

    const text = await runCli(['cluster', 'status'], env(config));
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^partitioned over redis 127\.0\.0\.1:\d+: 256 partitions, 1 member\(s\), 0 free/);
    expect(text.stdout).toContain(`pid ${d.child.pid}`);
    expect(text.stdout).toContain('shared by every instance (redis)');
  });
});
