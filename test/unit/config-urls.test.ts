/**
 * The URLs of the configuration: a secret in SMTP_URL or MONGODB_URI is never printed or logged,
 * whatever characters it holds (every URL-special one, percent-encoded and raw); a URL Node or
 * the driver cannot parse is refused at load time naming its field (exit 78), instead of
 * hanging `start` later; one-click unsubscribe needs an https base URL.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { loadConfig, redactConfig } from '../../src/config/load.js';
import { redactUri, uriHosts } from '../../src/config/urls.js';
import { configWarnings } from '../../src/config/warnings.js';
import { unsubscribeHeaders, unsubscribeMode } from '../../src/core/unsubscribe-token.js';
import { ConfigError, ErrorCodes } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';

/** Every character with a meaning in a URL (RFC 3986 gen-delims, sub-delims, '%'), and a few more. */
const SPECIAL = [':', '/', '?', '#', '[', ']', '@', '!', '$', '&', "'", '(', ')', '*', '+', ',', ';', '=', '%', ' ', '"', '\\', '<', '>', '^', '`', '{', '|', '}'];

/** A unique marker inside each password, so a partial leak (the part after a split) is caught too. */
const password = (c: string, i: number) => `Pw${c}Zq${i}Xy${c}Mark${i}`;
const markers = (c: string, i: number) => [password(c, i), `Zq${i}Xy`, `Mark${i}`];

/** The outcome of loading with this env: the printed config, or the error text. Never both. */
function attempt(env: NodeJS.ProcessEnv): { printed?: string; error?: ConfigError } {
  try {
    return { printed: JSON.stringify(redactConfig(loadConfig({ env }).config)) };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return { error: err };
  }
}

/** The URL forms tested for each password, percent-encoded or raw. */
const FORMS: Array<[string, 'SMTP_URL' | 'MONGODB_URI', (pw: string) => string, string]> = [
  ['smtp', 'SMTP_URL', (pw) => `smtp://mailer:${pw}@smtp.example.test:587`, 'smtp.example.test:587'],
  ['smtps', 'SMTP_URL', (pw) => `smtps://apikey:${pw}@smtp.example.test:465`, 'smtp.example.test:465'],
  ['mongodb single host', 'MONGODB_URI', (pw) => `mongodb://admin:${pw}@db.example.test:27017/app?authSource=admin`, 'db.example.test:27017/app'],
  ['mongodb multi-host', 'MONGODB_URI', (pw) => `mongodb://admin:${pw}@h1.example.test:27017,h2.example.test:27017/app?replicaSet=rs0`, 'h1.example.test:27017,h2.example.test:27017/app'],
  ['mongodb+srv', 'MONGODB_URI', (pw) => `mongodb+srv://admin:${pw}@cluster0.example.test/app`, 'cluster0.example.test/app'],
];

describe('secrets in URLs are never printed', () => {
  describe.each(FORMS)('%s', (_label, variable, url, host) => {
    it.each(SPECIAL.map((c, i) => [c, i] as const))('percent-encoded %j: accepted, hidden, host shown', (c, i) => {
      const r = attempt({ [variable]: url(encodeURIComponent(password(c, i))) });
      expect(r.error?.message).toBeUndefined();
      for (const m of [...markers(c, i), encodeURIComponent(password(c, i))]) expect(r.printed).not.toContain(m);
      expect(r.printed).toContain(host);
    });

    it.each(SPECIAL.map((c, i) => [c, i] as const))('raw %j: either refused naming the field, or accepted and hidden', (c, i) => {
      const r = attempt({ [variable]: url(password(c, i)) });
      const text = r.printed ?? r.error?.message ?? '';
      for (const m of markers(c, i)) expect(text).not.toContain(m);
      if (r.error) expect(r.error.field).toBe(variable === 'SMTP_URL' ? 'smtp.url' : 'mongodb.uri');
    });
  });

  it.each(['/', '?', '#'])("a raw %j in an SMTP password is refused (the URL would mean another host), the value not shown", (c) => {
    const r = attempt({ SMTP_URL: `smtp://mailer:1${c}Secret9@smtp.example.test:587` });
    expect(r.error?.field).toBe('smtp.url');
    expect(r.error?.message).not.toContain('Secret9');
  });

  it('redactUri hides secret query parameters and the credentials of an unparseable value', () => {
    expect(redactUri('mongodb://u:p@h/db?authSource=admin&tlsCertificateKeyFilePassword=Hidden1')).toBe('mongodb://***:***@h/db?authSource=admin&tlsCertificateKeyFilePassword=***');
    expect(redactUri('smtp://u:a/b?c#d@host:25')).toBe('smtp://***:***@host:25');
    expect(uriHosts('mongodb://u:p%2F@h1:27017,h2:27017/db')).toBe('h1:27017,h2:27017');
  });

  it('a log line never shows a configured secret, even quoted in a message or an error', () => {
    const pw = 'Log/Secret#1?x';
    const uri = `mongodb://admin:${encodeURIComponent(pw)}@db.example.test:27017/app`;
    const smtp = `smtp://mailer:${encodeURIComponent('Smtp$Secret/2')}@smtp.example.test:587`;
    loadConfig({ env: { MONGODB_URI: uri, SMTP_URL: smtp, MAILWHEEL_UNSUBSCRIBE_SECRET: 'unsub-Secret-0123456789' } });
    const lines: string[] = [];
    const log = createLogger('info', new Writable({ write: (chunk: Buffer, _enc, cb) => (lines.push(chunk.toString()), cb()) }));
    log.error({ err: new Error(`failed to connect to ${uri} (${pw})`), target: smtp }, `cannot reach ${uri} or ${smtp}; token unsub-Secret-0123456789`);
    const text = lines.join('');
    expect(text).toContain('cannot reach');
    for (const s of [pw, encodeURIComponent(pw), 'Smtp$Secret/2', encodeURIComponent('Smtp$Secret/2'), 'unsub-Secret-0123456789']) expect(text).not.toContain(s);
  });
});

describe('URLs Node or the driver cannot parse are refused at load (exit 78), naming the field', () => {
  it.each<[string, NodeJS.ProcessEnv | object, string]>([
    ['an SMTP port out of range', { SMTP_URL: 'smtp://127.0.0.1:99999' }, 'smtp.url'],
    ['a space in the SMTP host', { SMTP_URL: 'smtp://mail example.test:25' }, 'smtp.url'],
    ['an SMTP URL with no host', { SMTP_URL: 'smtp://:25' }, 'smtp.url'],
    ['a MongoDB port out of range', { MONGODB_URI: 'mongodb://127.0.0.1:99999/app' }, 'mongodb.uri'],
    ['a port on mongodb+srv', { MONGODB_URI: 'mongodb+srv://cluster0.example.test:27017/app' }, 'mongodb.uri'],
    ['an unencoded "/" in a MongoDB password (multi-host)', { MONGODB_URI: 'mongodb://u:p/ss@h1:27017,h2:27017/db' }, 'mongodb.uri'],
  ])('%s', (_label, env, field) => {
    const r = attempt(env as NodeJS.ProcessEnv);
    expect(r.error?.field).toBe(field);
    expect(r.error?.message).not.toContain('p/ss');
  });
});

describe('one-click unsubscribe needs an https base URL', () => {
  const secret = 'one-click-secret-0123456789';

  it('with a secret and no base URL (the default): mailto only, no http link, and a warning naming unsubscribe.baseUrl', () => {
    const { config } = loadConfig({ env: { MAILWHEEL_UNSUBSCRIBE_SECRET: secret } });
    const headers = unsubscribeHeaders({ userId: 'u1', email: 'a@example.test' }, config.unsubscribe, Date.now());
    expect(headers['List-Unsubscribe']).toMatch(/^<mailto:[^>]+>$/);
    expect(headers['List-Unsubscribe']).not.toContain('http');
    expect(headers['List-Unsubscribe-Post']).toBeUndefined();
    expect(unsubscribeMode(config.unsubscribe).mode).toBe('mailto');
    expect(configWarnings(config).map((w) => w.setting)).toContain('unsubscribe.baseUrl');
  });

  it('with a secret and an https base URL: one-click link on that URL, no warning', () => {
    const { config } = loadConfigWith({ unsubscribe: { baseUrl: 'https://mail.example.test/mw' } }, { MAILWHEEL_UNSUBSCRIBE_SECRET: secret });
    const headers = unsubscribeHeaders({ userId: 'u1', email: 'a@example.test' }, config.unsubscribe, Date.now());
    expect(headers['List-Unsubscribe']).toMatch(/<https:\/\/mail\.example\.test\/mw\/unsubscribe\?t=[^>]+>$/);
    expect(headers['List-Unsubscribe-Post']).toBe('List-Unsubscribe=One-Click');
    expect(configWarnings(config).map((w) => w.setting)).not.toContain('unsubscribe.baseUrl');
  });

  it.each<[string, object]>([
    ['http on a public host', { baseUrl: 'http://mail.example.test' }],
    ['http on loopback without allowInsecureBaseUrl', { baseUrl: 'http://127.0.0.1:9464' }],
    ['http on a public host even with allowInsecureBaseUrl', { baseUrl: 'http://mail.example.test', allowInsecureBaseUrl: true }],
    ['not a URL', { baseUrl: 'https://mail example.test' }],
    ['a query (the token is appended)', { baseUrl: 'https://mail.example.test/?x=1' }],
  ])('refused (78, unsubscribe.baseUrl): %s', (_label, unsubscribe) => {
    expect(() => loadConfigWith({ unsubscribe }, {})).toThrow(expect.objectContaining({ code: ErrorCodes.CONFIG_INVALID, field: 'unsubscribe.baseUrl' }) as Error);
  });

  it('http on 127.0.0.1 with allowInsecureBaseUrl is accepted, with a warning', () => {
    const { config } = loadConfigWith({ unsubscribe: { baseUrl: 'http://127.0.0.1:9464', allowInsecureBaseUrl: true } }, { MAILWHEEL_UNSUBSCRIBE_SECRET: secret });
    expect(unsubscribeMode(config.unsubscribe).mode).toBe('one-click');
    expect(configWarnings(config).map((w) => w.setting)).toContain('unsubscribe.baseUrl');
  });
});

describe('warnings', () => {
  it('a MongoDB URI without a database name is warned about, naming mongodb.uri and the database used', () => {
    const { config } = loadConfig({ env: { MONGODB_URI: 'mongodb://127.0.0.1:27017' } });
    const w = configWarnings(config).find((x) => x.setting.startsWith('mongodb.uri'));
    expect(w?.message).toContain('mailwheel.users');
    const named = loadConfig({ env: { MONGODB_URI: 'mongodb://127.0.0.1:27017/app' } }).config;
    expect(configWarnings(named).some((x) => x.setting.startsWith('mongodb.uri'))).toBe(false);
  });
});

function loadConfigWith(config: object, env: NodeJS.ProcessEnv) {
  const dir = mkdtempSync(join(tmpdir(), 'mailwheel-urls-'));
  const file = join(dir, 'config.json');
  writeFileSync(file, JSON.stringify(config));
  return loadConfig({ file, env });
}

describe('cluster.redisUrl (env MAILWHEEL_REDIS_URL)', () => {
  it('is read from the environment, and its password never reaches the printed config', () => {
    const secret = 'RedisPw#Zq9/Mark';
    const r = attempt({ MAILWHEEL_REDIS_URL: `redis://:${encodeURIComponent(secret)}@127.0.0.1:6380/2` });
    expect(r.error).toBeUndefined();
    expect(r.printed).toContain('127.0.0.1:6380');
    for (const m of [secret, encodeURIComponent(secret), 'Zq9', 'Mark']) expect(r.printed).not.toContain(m);
  });

  it.each([
    ['http://127.0.0.1:6379', 'must be a redis:// or rediss:// URL'],
    ['redis://', 'names no host'],
    ['redis://127.0.0.1:99999', 'is not a URL Node can parse'],
    ['redis://127.0.0.1:6379/cache', 'path must be empty or a database number'],
  ])('refuses %s naming cluster.redisUrl (exit 78), never echoing the value', (url, message) => {
    const r = attempt({ MAILWHEEL_REDIS_URL: url });
    expect(r.error?.code).toBe(ErrorCodes.CONFIG_INVALID);
    expect(r.error?.problems).toEqual([expect.objectContaining({ field: 'cluster.redisUrl', message: expect.stringContaining(message) })]);
  });
});
