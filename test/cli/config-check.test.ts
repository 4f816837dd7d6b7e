/**
 * `mailwheel config check` and configuration failures as an operator meets them, through the
 * real CLI: `--json` output a script can parse, every bad field at once (78), secrets never in
 * the output, URLs that cannot be used refused before anything starts (78, no hang), MongoDB
 * unreachable in one line (69), and `--connect` against the real FerretDB and SMTP server and
 * against dead ports.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot, runCli, spawnCli, writeTestConfig, type CliProcess } from '../helpers/cli.js';
import { testDb, type TestDb } from '../helpers/db.js';
import { TestSmtpServer } from '../helpers/smtp-server.js';

const EX_CONFIG = 78;
const EX_UNAVAILABLE = 69;
/** Nothing listens on port 1 on loopback: a connection is refused at once. */
const DEAD = { MONGODB_URI: 'mongodb://127.0.0.1:1/app', SMTP_URL: 'smtp://127.0.0.1:1' };
const BASE = { LOG_LEVEL: 'warn', ...DEAD };

interface CheckDoc {
  ok: boolean;
  config: { smtp: { url: string }; mongodb: { uri: string } };
  unsubscribe: { mode: string; reason: string };
  warnings: Array<{ setting: string; message: string }>;
  checks?: Array<{ name: string; ok: boolean; detail: string }>;
}

describe.concurrent('config check output', () => {
  it('--json: stdout is exactly one JSON document, messages on stderr', async () => {
    const r = await runCli(['config', 'check', '--json'], BASE);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as CheckDoc;
    expect(doc.ok).toBe(true);
    expect(doc.unsubscribe.mode).toBe('mailto');
    expect(r.stderr).toContain('config OK');
  });

  it('says which unsubscribe mode is in force and why: a secret without baseUrl is mailto only, with a warning', async () => {
    const r = await runCli(['config', 'check', '--json'], { ...BASE, MAILWHEEL_UNSUBSCRIBE_SECRET: 'check-secret-0123456789' });
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as CheckDoc;
    expect(doc.unsubscribe.mode).toBe('mailto');
    expect(doc.unsubscribe.reason).toContain('unsubscribe.baseUrl');
    expect(doc.warnings.map((w) => w.setting)).toContain('unsubscribe.baseUrl');
    expect(r.stderr).toMatch(/unsubscribe: mailto only/);
    expect(r.stderr).toMatch(/warning: unsubscribe\.baseUrl/);

    const https = writeTestConfig({ unsubscribe: { baseUrl: 'https://mail.example.test' } });
    const one = await runCli(['config', 'check', '--json', '--config', https], { ...BASE, MAILWHEEL_UNSUBSCRIBE_SECRET: 'check-secret-0123456789' });
    expect((JSON.parse(one.stdout) as CheckDoc).unsubscribe.mode).toBe('one-click');
  });

  it('an http unsubscribe.baseUrl is refused with 78, naming the field', async () => {
    const file = writeTestConfig({ unsubscribe: { baseUrl: 'http://mail.example.test' } });
    const r = await runCli(['config', 'check', '--config', file], BASE);
    expect(r.code).toBe(EX_CONFIG);
    expect(r.stderr).toContain('unsubscribe.baseUrl');
  });

  it('a URI without a database name is warned about, naming mongodb.uri', async () => {
    const r = await runCli(['config', 'check', '--json'], { ...BASE, MONGODB_URI: 'mongodb://127.0.0.1:1' });
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as CheckDoc).warnings.map((w) => w.setting)).toContain('mongodb.uri (MONGODB_URI)');
    expect(r.stderr).toMatch(/warning: mongodb\.uri \(MONGODB_URI\): names no database/);
  });

  it('exits 78 naming every bad field, and a misspelt key with a suggestion', async () => {
    const file = writeTestConfig({ smtp: { poolSize: 0, poolsize: 3 }, http: { port: 70000 }, send: { maxAttempts: '5' } });
    const r = await runCli(['config', 'check', '--config', file], BASE);
    expect(r.code).toBe(EX_CONFIG);
    for (const field of ['smtp.poolSize', 'smtp.poolsize', 'http.port', 'send.maxAttempts']) expect(r.stderr).toContain(`  ${field}: `);
    expect(r.stderr).toContain('did you mean "smtp.poolSize"?');
  });

  it('the send, broadcast and readiness tunables: bad values exit 78 naming each field', async () => {
    const file = writeTestConfig({
      send: { claimBatch: 0, maxQueued: 'auto', recordBatch: 1.5, recordFlushMs: 0 },
      broadcasts: { feedAhead: -1 },
      http: { smtpCheckCacheMs: -1, smtpCheckFailedCacheMs: 'soon' },
    });
    const r = await runCli(['config', 'check', '--config', file], BASE);
    expect(r.code).toBe(EX_CONFIG);
    for (const field of ['send.claimBatch', 'send.maxQueued', 'send.recordBatch', 'send.recordFlushMs', 'broadcasts.feedAhead', 'http.smtpCheckCacheMs', 'http.smtpCheckFailedCacheMs']) {
      expect(r.stderr).toContain(`  ${field}: `);
    }
  });

  it('passwords with /, #, ? and @ never appear: encoded ones are redacted, raw ones refused (78) without the value', async () => {
    const mongoPw = 'Db/Pass#Word?1@x';
    const smtpPw = 'Sm/tp#Pa?ss@2';
    const ok = await runCli(['config', 'check', '--json'], {
      ...BASE,
      MONGODB_URI: `mongodb://admin:${encodeURIComponent(mongoPw)}@127.0.0.1:1,127.0.0.2:1/app`,
      SMTP_URL: `smtp://apikey:${encodeURIComponent(smtpPw)}@127.0.0.1:1`,
    });
    expect(ok.code, ok.stderr).toBe(0);
    const doc = JSON.parse(ok.stdout) as CheckDoc;
    expect(doc.config.mongodb.uri).toBe('mongodb://***:***@127.0.0.1:1,127.0.0.2:1/app');
    expect(doc.config.smtp.url).toBe('smtp://***:***@127.0.0.1:1');
    for (const part of ['Db/Pass', 'Word?1', 'Pa?ss', 'Sm/tp', encodeURIComponent(mongoPw), encodeURIComponent(smtpPw)]) expect(ok.stdout + ok.stderr).not.toContain(part);

    const raw = await runCli(['config', 'check'], { ...BASE, SMTP_URL: `smtp://apikey:${smtpPw}@127.0.0.1:1`, MONGODB_URI: `mongodb://admin:${mongoPw}@127.0.0.1:1/app` });
    expect(raw.code).toBe(EX_CONFIG);
    expect(raw.stderr).toContain('smtp.url');
    expect(raw.stderr).toContain('mongodb.uri');
    for (const part of ['Db/Pass', 'Word?1', 'Pa?ss', 'Sm/tp']) expect(raw.stdout + raw.stderr).not.toContain(part);
  });
});

describe.concurrent('URLs the process could not use are refused before start (78), never a hang', () => {
  // A reachable MongoDB, so only the URL under test can stop the process (the old code connected,
  // then hung on `new URL(smtp.url)`).
  let db: TestDb;
  beforeAll(async () => {
    db = await testDb('badurl');
  });
  afterAll(async () => {
    await db?.cleanup();
  });

  it.each<[string, Record<string, string>, string]>([
    ['start, SMTP port out of range', { SMTP_URL: 'smtp://127.0.0.1:99999' }, 'smtp.url'],
    ['run-minute, SMTP host with a space', { SMTP_URL: 'smtp://mail example.test:25' }, 'smtp.url'],
    ['start, MongoDB port out of range', { MONGODB_URI: 'mongodb://127.0.0.1:99999/app' }, 'mongodb.uri'],
  ])('%s', { timeout: 60_000 }, async (label, env, field) => {
    const args = label.startsWith('start') ? ['start'] : ['run-minute', '--at', new Date().toISOString()];
    const http = writeTestConfig({ http: { enabled: false } });
    const r = await runCli([...args, '--config', http], { ...BASE, MONGODB_URI: db.uri, ...env });
    expect(r.code).toBe(EX_CONFIG);
    expect(r.stderr).toContain(field);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('MongoDB unreachable', () => {
  it('one line naming mongodb.uri, the host and the cause, no credentials, exit 69', { timeout: 60_000 }, async () => {
    const file = writeTestConfig({ mongodb: { serverSelectionTimeoutMs: 2000 } });
    const r = await runCli(['schedule', 'show', '--user', 'u1', '--config', file], { ...BASE, MONGODB_URI: 'mongodb://admin:Hidden%2FPw@127.0.0.1:1/app' });
    expect(r.code).toBe(EX_UNAVAILABLE);
    const lines = r.stderr.trim().split('\n');
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^mailwheel: mongodb\.uri \(MONGODB_URI\): cannot connect to 127\.0\.0\.1:1: .*ECONNREFUSED/);
    expect(r.stderr).not.toContain('Hidden');
  });

  it('README lists exit code 69', () => {
    expect(readFileSync(join(repoRoot, 'README.md'), 'utf8')).toMatch(/69[^\n]*(MongoDB|unreachable|reach)/);
  });
});

describe('config check --connect', () => {
  let db: TestDb;
  let smtp: TestSmtpServer;
  let tlsSmtp: TestSmtpServer;
  const fixtures = join(repoRoot, 'test', 'fixtures', 'tls');

  beforeAll(async () => {
    db = await testDb('configcheck');
    smtp = await TestSmtpServer.start();
    tlsSmtp = await TestSmtpServer.start({ tls: { key: readFileSync(join(fixtures, 'key.pem')), cert: readFileSync(join(fixtures, 'cert.pem')) } });
  });
  afterAll(async () => {
    await smtp?.close();
    await tlsSmtp?.close();
    await db?.cleanup();
  });

  it('reaches FerretDB and the SMTP server: exit 0, counts the users, warns on an empty collection', { timeout: 60_000 }, async () => {
    const empty = await runCli(['config', 'check', '--connect', '--json'], { LOG_LEVEL: 'warn', MONGODB_URI: db.uri, SMTP_URL: smtp.url });
    expect(empty.code, empty.stderr).toBe(0);
    const doc = JSON.parse(empty.stdout) as CheckDoc;
    expect(doc.checks?.map((c) => [c.name, c.ok])).toEqual([
      ['mongodb', true],
      ['smtp', true],
      ['unsubscribe', true],
    ]);
    expect(doc.warnings.map((w) => w.setting)).toContain('users.collection');
    expect(empty.stderr).toMatch(/warning: users\.collection: .*holds no documents/);

    await db.db.collection('users').insertMany([{ _id: 'a' as never }, { _id: 'b' as never }]);
    const two = await runCli(['config', 'check', '--connect', '--json'], { LOG_LEVEL: 'warn', MONGODB_URI: db.uri, SMTP_URL: smtp.url });
    const doc2 = JSON.parse(two.stdout) as CheckDoc;
    expect(doc2.checks?.find((c) => c.name === 'mongodb')?.detail).toContain('holds 2 documents');
    expect(doc2.warnings.map((w) => w.setting)).not.toContain('users.collection');
  });

  it('STARTTLS and AUTH: OK with the private CA, a named failure without it', { timeout: 60_000 }, async () => {
    const url = `smtp://user:${encodeURIComponent('Tls/Pass#1')}@127.0.0.1:${tlsSmtp.port}`;
    const withCa = writeTestConfig({ smtp: { ca: join(fixtures, 'cert.pem') } });
    const ok = await runCli(['config', 'check', '--connect', '--json', '--config', withCa], { LOG_LEVEL: 'warn', MONGODB_URI: db.uri, SMTP_URL: url });
    expect(ok.code, ok.stderr).toBe(0);
    expect((JSON.parse(ok.stdout) as CheckDoc).checks?.find((c) => c.name === 'smtp')?.detail).toContain('accepts the credentials');

    const noCa = await runCli(['config', 'check', '--connect'], { LOG_LEVEL: 'warn', MONGODB_URI: db.uri, SMTP_URL: url });
    expect(noCa.code).toBe(EX_UNAVAILABLE);
    expect(noCa.stderr).toMatch(/mailwheel: smtp\.url \(SMTP_URL\): cannot use 127\.0\.0\.1:\d+: .*certificate/i);
    expect(noCa.stdout + noCa.stderr).not.toContain('Tls/Pass');
    expect(noCa.stdout + noCa.stderr).not.toContain(encodeURIComponent('Tls/Pass#1'));
  });

  it('dead ports: exit 69 naming each failure, one line each, no credentials', { timeout: 60_000 }, async () => {
    const r = await runCli(['config', 'check', '--connect', '--json', '--timeout', '3000'], {
      LOG_LEVEL: 'warn',
      MONGODB_URI: 'mongodb://admin:Dead%2FPw@127.0.0.1:1/app',
      SMTP_URL: 'smtp://apikey:Dead%23Key@127.0.0.1:1',
    });
    expect(r.code).toBe(EX_UNAVAILABLE);
    const doc = JSON.parse(r.stdout) as CheckDoc;
    expect(doc.ok).toBe(false);
    expect(doc.checks?.filter((c) => !c.ok).map((c) => c.name)).toEqual(['mongodb', 'smtp']);
    expect(r.stderr).toMatch(/^mailwheel: mongodb\.uri \(MONGODB_URI\): cannot connect to 127\.0\.0\.1:1: .*ECONNREFUSED/m);
    expect(r.stderr).toMatch(/^mailwheel: smtp\.url \(SMTP_URL\): cannot use 127\.0\.0\.1:1: .*ECONNREFUSED/m);
    expect(r.stdout + r.stderr).not.toMatch(/Dead(%2F|\/)Pw|Dead(%23|#)Key/);
  });
});

describe('start warns loudly about settings that send nothing', () => {
  let db: TestDb;
  let smtp: TestSmtpServer;
  let daemon: CliProcess | undefined;

  beforeAll(async () => {
    db = await testDb('startwarn');
    smtp = await TestSmtpServer.start();
  });
  afterAll(async () => {
    if (daemon && daemon.child.exitCode === null) daemon.child.kill('SIGKILL');
    await smtp?.close();
    await db?.cleanup();
  });

  it('an empty users collection and a secret without an https baseUrl: a warning each', { timeout: 120_000 }, async () => {
    const file = writeTestConfig({ http: { enabled: false } });
    daemon = spawnCli(['start', '--config', file], { LOG_LEVEL: 'info', MONGODB_URI: db.uri, SMTP_URL: smtp.url, MAILWHEEL_UNSUBSCRIBE_SECRET: 'start-secret-0123456789' });
    await daemon.waitForLog('"msg":"users.collection: ', 90_000);
    await daemon.waitForLog('"msg":"unsubscribe.baseUrl: ', 10_000);
    expect(daemon.stderr).toMatch(/"level":40[^\n]*"msg":"users\.collection: [^"]*holds no documents/);
    daemon.child.kill('SIGTERM');
    await daemon.done;
  });
});
