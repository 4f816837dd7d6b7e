/**
 * loadConfig: defaults, operator file, environment, and the errors that stop start-up (exit 78),
 * each naming the field. Every test passes an explicit env so the runner's environment never
 * leaks in.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultConfigDir, loadConfig, redactConfig } from '../../src/config/load.js';
import { feedAheadOf, maxQueuedOf } from '../../src/config/schema.js';
import { ConfigError, ErrorCodes } from '../../src/errors.js';
import { mwError } from '../helpers/errors.js';

const defaultsJson = JSON.parse(readFileSync(join(defaultConfigDir, 'default.json'), 'utf8')) as Record<string, unknown>;
const schedulesJson = JSON.parse(readFileSync(join(defaultConfigDir, 'schedules.json'), 'utf8')) as Record<string, unknown>;

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Writes files into a fresh folder; returns the folder and the path of `config.json` if given. */
function tempConfig(files: Record<string, string | object>): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'mailwheel-config-'));
  dirs.push(dir);
  for (const [name, content] of Object.entries(files)) {
    writeFileSync(join(dir, name), typeof content === 'string' ? content : JSON.stringify(content));
  }
  return { dir, file: join(dir, 'config.json') };
}

/** The ConfigError loadConfig throws for this operator config (and optional extra files). */
function configError(config: string | object, extra: Record<string, string | object> = {}, env: NodeJS.ProcessEnv = {}): ConfigError {
  const { file } = tempConfig({ 'config.json': config, ...extra });
  try {
    loadConfig({ file, env });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(config)}`);
}

describe('loadConfig: sources and overrides', () => {
  it('loads config/default.json and schedules.json as they are when nothing overrides them', () => {
    const loaded = loadConfig({ env: {} });
    // templates.dir is the one value loading changes: it names the folder actually used.
    expect(loaded.config).toEqual({ ...defaultsJson, templates: { dir: join(defaultConfigDir, 'templates') } });
    expect(loaded.schedules).toEqual(schedulesJson);
    expect(loaded.sources).toEqual([join(defaultConfigDir, 'default.json'), join(defaultConfigDir, 'schedules.json')]);
  });

  it('returns a frozen config', () => {
    const { config } = loadConfig({ env: {} });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.smtp)).toBe(true);
    expect(() => {
      (config.smtp as { poolSize: number }).poolSize = 1;
    }).toThrow(TypeError);
  });

  it('MONGODB_URI, SMTP_URL and LOG_LEVEL override the files', () => {
    const { file } = tempConfig({ 'config.json': { mongodb: { uri: 'mongodb://file-host/filedb' }, log: { level: 'warn' } } });
    const { config } = loadConfig({
      file,
      env: { MONGODB_URI: 'mongodb://env-host:27018/envdb', SMTP_URL: 'smtps://u:p@mail.example.test:465', LOG_LEVEL: 'debug' },
    });
    expect(config.mongodb.uri).toBe('mongodb://env-host:27018/envdb');
    expect(config.smtp.url).toBe('smtps://u:p@mail.example.test:465');
    expect(config.log.level).toBe('debug');
    // Sibling keys of an overridden object keep their file/default values.
    expect(config.mongodb.batchSize).toBe((defaultsJson.mongodb as { batchSize: number }).batchSize);
  });

  it('an operator file merges key by key over the defaults, arrays and scalars replace', () => {
    const { file } = tempConfig({ 'config.json': { smtp: { poolSize: 3 }, rate: { perSecond: null, perMinute: 100 } } });
    const loaded = loadConfig({ file, env: {} });
    expect(loaded.config.smtp.poolSize).toBe(3);
    expect(loaded.config.smtp.from).toBe((defaultsJson.smtp as { from: string }).from);
    expect(loaded.config.rate).toEqual({ perSecond: null, perMinute: 100, perDay: (defaultsJson.rate as { perDay: number }).perDay });
    expect(loaded.sources[1]).toBe(file);
  });

  it('MAILWHEEL_CONFIG names the file when no file option is given', () => {
    const { file } = tempConfig({ 'config.json': { smtp: { poolSize: 4 } } });
    expect(loadConfig({ env: { MAILWHEEL_CONFIG: file } }).config.smtp.poolSize).toBe(4);
  });

  it('rate.perSecond: null turns the window off and is accepted', () => {
    const { file } = tempConfig({ 'config.json': { rate: { perSecond: null } } });
    expect(loadConfig({ file, env: {} }).config.rate.perSecond).toBeNull();
  });

  it('reads schedules.json from the operator folder when it has one', () => {
    const { file, dir } = tempConfig({
      'config.json': { schedulesFile: 'my-schedules.json' },
      'my-schedules.json': { userSync: { cron: '*/2 * * * *', timezone: 'Europe/Paris' } },
    });
    const loaded = loadConfig({ file, env: {} });
    expect(loaded.schedules).toEqual({ userSync: { cron: '*/2 * * * *', timezone: 'Europe/Paris' } });
    expect(loaded.sources).toContain(join(dir, 'my-schedules.json'));
  });

  it('falls back to the packaged schedules.json when the operator folder has none', () => {
    const { file } = tempConfig({ 'config.json': {} });
    expect(loadConfig({ file, env: {} }).schedules).toEqual(schedulesJson);
  });
});

describe('loadConfig: templates', () => {
  /** An operator folder with config.json and a templates folder holding `files`. */
  function withTemplates(files: Record<string, string>, templatesDir = 'templates'): string {
    const { dir, file } = tempConfig({ 'config.json': { templates: { dir: templatesDir } } });
    mkdirSync(join(dir, templatesDir));
    for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, templatesDir, name), content);
    return file;
  }

  it('compiles the packaged scheduled templates (subject, text and html)', () => {
    const { templates } = loadConfig({ env: {} });
    expect(templates.scheduled.subject.source).toBe('Your {{time}} note');
    expect(templates.scheduled.text.source).toContain('Hello {{name}},');
    expect(templates.scheduled.html?.source).toContain('<p>Hello {{name}},</p>');
  });

  it("reads the operator's templates folder, relative to the config file, and names it in the config", () => {
    const file = withTemplates({ 'scheduled.subject': 'Hi {{name}}\n', 'scheduled.txt': 'Body {{date}}' }, 'my-templates');
    const loaded = loadConfig({ file, env: {} });
    expect(loaded.config.templates.dir).toBe(join(file, '..', 'my-templates'));
    expect(loaded.templates.scheduled.subject.source).toBe('Hi {{name}}');
    // No html file: text-only mail.
    expect(loaded.templates.scheduled.html).toBeUndefined();
  });

  it('falls back to the packaged templates when the operator folder has none', () => {
    const { file } = tempConfig({ 'config.json': {} });
    const loaded = loadConfig({ file, env: {} });
    expect(loaded.config.templates.dir).toBe(join(defaultConfigDir, 'templates'));
  });

  it('a missing template file is a ConfigError on templates.dir naming the file', () => {
    const file = withTemplates({ 'scheduled.subject': 'Hi' });
    try {
      loadConfig({ file, env: {} });
      expect.unreachable('a missing scheduled.txt must be a ConfigError');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).field).toBe('templates.dir');
      expect((err as ConfigError).message).toContain(join(file, '..', 'templates', 'scheduled.txt'));
      expect(err).toEqual(mwError(ErrorCodes.CONFIG_INVALID, /missing template file/));
    }
  });

  it.each<[string, Record<string, string>, string, RegExp]>([
    ['an unknown variable', { 'scheduled.txt': 'Hi {{nmae}}' }, 'scheduled.txt', /unknown variable "nmae"/],
    ['unescaped output in html', { 'scheduled.txt': 't', 'scheduled.html': '<p>{{{name}}}</p>' }, 'scheduled.html', /unescaped output/],
    ['{{& name}} in html', { 'scheduled.txt': 't', 'scheduled.html': '<p>{{& name}}</p>' }, 'scheduled.html', /unescaped output/],
    ['a section', { 'scheduled.txt': '{{#name}}Hi{{/name}}' }, 'scheduled.txt', /sections and partials/],
    ['a partial', { 'scheduled.txt': '{{> footer}}' }, 'scheduled.txt', /sections and partials/],
    ['an unclosed tag', { 'scheduled.txt': 'Hi {{name' }, 'scheduled.txt', /Unclosed tag/],
    ['an empty subject', { 'scheduled.subject': '  \n', 'scheduled.txt': 't' }, 'scheduled.subject', /empty subject/],
  ])('%s is a ConfigError naming the file', (_label, files, bad, why) => {
    const file = withTemplates({ 'scheduled.subject': 'Hi', ...files });
    const err = (() => {
      try {
        loadConfig({ file, env: {} });
      } catch (e) {
        return e as ConfigError;
      }
      throw new Error('expected a ConfigError');
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.field).toBe('templates.dir');
    expect(err.message).toContain(join(file, '..', 'templates', bad));
    expect(err).toEqual(mwError(ErrorCodes.CONFIG_INVALID, why));
  });
});

describe('tunables whose null means a value derived from smtp.poolSize', () => {
  it('defaults: send.maxQueued is max(200, poolSize × 20), broadcasts.feedAhead max(100, poolSize × 10)', () => {
    const { config } = loadConfig({ env: {} });
    expect(config.send.maxQueued).toBeNull();
    expect(config.broadcasts.feedAhead).toBeNull();
    expect(maxQueuedOf(config)).toBe(200); // poolSize 10
    expect(feedAheadOf(config)).toBe(100);
    const big = { ...config, smtp: { ...config.smtp, poolSize: 50 } };
    expect(maxQueuedOf(big)).toBe(1000);
    expect(feedAheadOf(big)).toBe(500);
  });

  it('a configured value is used as it is', () => {
    const { file } = tempConfig({ 'config.json': { send: { maxQueued: 50 }, broadcasts: { feedAhead: 7 } } });
    const { config } = loadConfig({ file, env: {} });
    expect(maxQueuedOf(config)).toBe(50);
    expect(feedAheadOf(config)).toBe(7);
  });
});

describe('loadConfig: bad configuration names the field', () => {
  it.each<[string, object, string]>([
    ['smtp.poolSize = 0', { smtp: { poolSize: 0 } }, 'smtp.poolSize'],
    ['smtp.poolSize not an integer', { smtp: { poolSize: 2.5 } }, 'smtp.poolSize'],
    ['smtp.url not smtp://', { smtp: { url: 'http://mail.example.test' } }, 'smtp.url'],
    ['smtp.from with CRLF', { smtp: { from: 'a@example.test\r\nBcc: x@example.test' } }, 'smtp.from'],
    ['mongodb.uri not mongodb://', { mongodb: { uri: 'postgres://x/y' } }, 'mongodb.uri'],
    ['mongodb.batchSize negative', { mongodb: { batchSize: -1 } }, 'mongodb.batchSize'],
    ['rate.perDay = 0', { rate: { perDay: 0 } }, 'rate.perDay'],
    ['send.maxAttempts a string', { send: { maxAttempts: '5' } }, 'send.maxAttempts'],
    ['send.backoffMaxMs < send.backoffBaseMs', { send: { backoffBaseMs: 1000, backoffMaxMs: 999 } }, 'send.backoffMaxMs'],
    ['send.claimStaleMs too small', { send: { claimStaleMs: 1000 } }, 'send.claimStaleMs'],
    ['send.claimBatch = 0', { send: { claimBatch: 0 } }, 'send.claimBatch'],
    ['send.maxQueued not an integer', { send: { maxQueued: 2.5 } }, 'send.maxQueued'],
    ['send.maxQueued a string', { send: { maxQueued: 'auto' } }, 'send.maxQueued'],
    ['send.recordBatch negative', { send: { recordBatch: -1 } }, 'send.recordBatch'],
    ['send.recordFlushMs = 0', { send: { recordFlushMs: 0 } }, 'send.recordFlushMs'],
    ['send.recordFlushMs too long', { send: { recordFlushMs: 600_000 } }, 'send.recordFlushMs'],
    ['broadcasts.feedAhead = 0', { broadcasts: { feedAhead: 0 } }, 'broadcasts.feedAhead'],
    ['http.smtpCheckCacheMs negative', { http: { smtpCheckCacheMs: -1 } }, 'http.smtpCheckCacheMs'],
    ['http.smtpCheckFailedCacheMs not an integer', { http: { smtpCheckFailedCacheMs: 0.5 } }, 'http.smtpCheckFailedCacheMs'],
    ['http.port out of range', { http: { port: 70000 } }, 'http.port'],
    ['log.level unknown', { log: { level: 'loud' } }, 'log.level'],
    ['users.fields.email empty', { users: { fields: { email: '' } } }, 'users.fields.email'],
  ])('%s -> %s', (_label, config, field) => {
    const err = configError(config);
    expect(err.field).toBe(field);
    expect(err.code).toBe(ErrorCodes.CONFIG_INVALID);
    expect(err.message).toContain(field);
  });

  it('a bad environment value names the field it overrides', () => {
    expect(configError({}, {}, { SMTP_URL: 'mail.example.test:25' }).field).toBe('smtp.url');
    expect(configError({}, {}, { MONGODB_URI: 'localhost:27017' }).field).toBe('mongodb.uri');
    expect(configError({}, {}, { LOG_LEVEL: 'chatty' }).field).toBe('log.level');
  });

  it('the retired send.slowdownCooldownMs is refused naming the settings that replace it', () => {
    const err = configError({ send: { slowdownCooldownMs: 30000 } });
    expect(err.field).toBe('send.slowdownCooldownMs');
    expect(err.code).toBe(ErrorCodes.CONFIG_INVALID);
    for (const key of ['send.slowdownDecrease', 'send.slowdownWindowMs', 'send.slowdownRecoveryPerSecond', 'send.slowdownFloor']) expect(err.message).toContain(key);
  });

  it('the slowdown floor and decrease are shares (0 < x <= 1, decrease < 1)', () => {
    expect(configError({ send: { slowdownFloor: 0 } }).field).toBe('send.slowdownFloor');
    expect(configError({ send: { slowdownFloor: 1.5 } }).field).toBe('send.slowdownFloor');
    expect(configError({ send: { slowdownDecrease: 1 } }).field).toBe('send.slowdownDecrease');
  });

  it('an unknown key is rejected and the error names it', () => {
    const nested = configError({ smtp: { poolsize: 3 } });
    expect(nested.message).toContain('poolsize');
    const top = configError({ smtpp: { poolSize: 3 } });
    expect(top.message).toContain('smtpp');
  });

  it('the field of an unknown key is its full dotted path', () => {
    // An operator's typo ("poolsize") is the field to fix; its parent object ("smtp") is not.
    expect(configError({ smtp: { poolsize: 3 } }).field).toBe('smtp.poolsize');
    expect(configError({ smtpp: { poolSize: 3 } }).field).toBe('smtpp');
  });

  it('bad JSON names the file', () => {
    const err = configError('{ "smtp": { "poolSize": 3, } }');
    expect(err).toEqual(mwError(ErrorCodes.CONFIG_INVALID, /config\.json/));
    expect(err).toEqual(mwError(ErrorCodes.CONFIG_INVALID, /not valid JSON/));
  });

  it('a top level that is not an object is rejected, naming the file', () => {
    const err = configError('[1, 2]');
    expect(err).toEqual(mwError(ErrorCodes.CONFIG_INVALID, /config\.json/));
  });

  it('a missing config file names the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mailwheel-config-'));
    dirs.push(dir);
    const missing = join(dir, 'nope.json');
    try {
      loadConfig({ file: missing, env: {} });
      expect.unreachable('a missing file must be a ConfigError');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).message).toContain(missing);
    }
  });

  it('an invalid cron expression in schedules.json names schedules.userSync.cron', () => {
    const err = configError({}, { 'schedules.json': { userSync: { cron: 'every five minutes', timezone: 'UTC' } } });
    expect(err.field).toBe('schedules.userSync.cron');
  });

  it('an unknown timezone in schedules.json names schedules.userSync.timezone', () => {
    const err = configError({}, { 'schedules.json': { userSync: { cron: '*/5 * * * *', timezone: 'Mars/Base' } } });
    expect(err.field).toBe('schedules.userSync.timezone');
  });

  it('a schedules.json without userSync names schedules.userSync', () => {
    const err = configError({}, { 'schedules.json': {} });
    expect(err.field).toBe('schedules.userSync');
  });

  it('bad JSON in schedules.json names the file', () => {
    const err = configError({}, { 'schedules.json': '{ userSync: ' });
    expect(err).toEqual(mwError(ErrorCodes.CONFIG_INVALID, /schedules\.json/));
  });
});

describe('redactConfig', () => {
  it('hides the credentials of smtp.url and mongodb.uri and keeps the hosts', () => {
    const { config } = loadConfig({
      env: { SMTP_URL: 'smtp://mailer:s3cr3t-smtp@smtp.example.test:587', MONGODB_URI: 'mongodb://admin:hunter2-db@db.example.test:27017/app?authSource=admin' },
    });
    const text = JSON.stringify(redactConfig(config));
    expect(text).not.toContain('s3cr3t-smtp');
    expect(text).not.toContain('hunter2-db');
    expect(text).not.toContain('mailer:');
    expect(text).not.toContain('admin:');
    expect(text).toContain('smtp.example.test:587');
    expect(text).toContain('db.example.test:27017/app');
    // The config itself is untouched.
    expect(config.smtp.url).toBe('smtp://mailer:s3cr3t-smtp@smtp.example.test:587');
  });

  it('leaves URIs without credentials readable', () => {
    const { config } = loadConfig({ env: { SMTP_URL: 'smtp://127.0.0.1:2525', MONGODB_URI: 'mongodb://127.0.0.1:27017/mailwheel' } });
    const r = redactConfig(config) as { smtp: { url: string }; mongodb: { uri: string } };
    expect(r.smtp.url).toBe('smtp://127.0.0.1:2525');
    expect(r.mongodb.uri).toBe('mongodb://127.0.0.1:27017/mailwheel');
  });

  it("hides a password that contains an unencoded '@' (URL parsers split at the last '@')", () => {
    // nodemailer (url.parse) and WHATWG URL both take everything up to the LAST '@' of the
    // authority as credentials, so such a URL works and its whole password must be hidden.
    const url = 'smtp://mailer:p@ssw0rd@smtp.example.test:587';
    expect(new URL(url).hostname).toBe('smtp.example.test');
    const { config } = loadConfig({ env: { SMTP_URL: url } });
    const text = JSON.stringify(redactConfig(config));
    expect(text).not.toContain('ssw0rd');
    expect(text).toContain('smtp.example.test:587');
  });
});

describe('loadConfig: every problem at once, suggestions, and paths relative to the operator file', () => {
  it('reports every bad field in one error, each on its own line', () => {
    const err = configError(
      { smtp: { poolSize: 0 }, mongodb: { batchSize: -1 }, http: { port: 70000 }, sendd: {} },
      { 'schedules.json': { userSync: { cron: 'every five minutes', timezone: 'Mars/Base' } } },
      { SMTP_URL: 'smtp://127.0.0.1:99999' },
    );
    const fields = err.problems.map((p) => p.field);
    expect(fields).toEqual(expect.arrayContaining(['smtp.poolSize', 'mongodb.batchSize', 'http.port', 'sendd', 'smtp.url', 'schedules.userSync.cron', 'schedules.userSync.timezone']));
    for (const f of fields) expect(err).toEqual(mwError(ErrorCodes.CONFIG_INVALID, new RegExp(`^  ${f.replace(/\./g, '\\.')}: `, 'm')));
  });

  it.each<[string, object, string, string]>([
    ['a misspelt key', { smtp: { poolsize: 3 } }, 'smtp.poolsize', 'smtp.poolSize'],
    ['a misspelt section', { smtpp: { poolSize: 3 } }, 'smtpp', 'smtp'],
    ['a key in the wrong section', { smtp: { spreadSeconds: 5 } }, 'smtp.spreadSeconds', 'send.spreadSeconds'],
    ['a misspelt nested key', { users: { fields: { emial: 'mail' } } }, 'users.fields.emial', 'users.fields.email'],
  ])('%s: an error naming it, with "did you mean"', (_label, config, field, meant) => {
    const err = configError(config);
    expect(err.field).toBe(field);
    expect(err.message).toContain(`did you mean "${meant}"?`);
  });

  it('a "__proto__" key is an unknown setting, not a prototype', () => {
    const err = configError('{ "__proto__": { "smtp": { "poolSize": 3 } } }');
    expect(err.field).toBe('__proto__');
    const nested = configError('{ "smtp": { "__proto__": { "poolSize": 0 } } }');
    expect(nested.field).toBe('smtp.__proto__');
  });

  it("a schedulesFile the operator's file names is read from that file's folder, never the packaged one", () => {
    // The packaged folder has a schedules.json; the operator's has none: that is an error naming
    // the operator's path, not a silent switch to the packaged schedules.
    const err = configError({ schedulesFile: 'schedules.json' });
    expect(err.field).toBe('schedulesFile');
    expect(err.message).not.toContain(defaultConfigDir);
    expect(err).toEqual(mwError(ErrorCodes.CONFIG_INVALID, /mailwheel-config-[^/]+\/schedules\.json/));
  });

  it('a relative schedulesFile in a subfolder of the operator folder is read from there', () => {
    const { file, dir } = tempConfig({ 'config.json': { schedulesFile: 'ops/sched.json' } });
    mkdirSync(join(dir, 'ops'));
    writeFileSync(join(dir, 'ops', 'sched.json'), JSON.stringify({ userSync: { cron: '*/3 * * * *', timezone: 'UTC' } }));
    const loaded = loadConfig({ file, env: {} });
    expect(loaded.schedules.userSync.cron).toBe('*/3 * * * *');
    expect(loaded.sources).toContain(join(dir, 'ops', 'sched.json'));
  });

  it("a templates.dir the operator's file names is resolved against that file's folder, never the packaged one", () => {
    // The packaged folder has templates/; the operator's has none.
    const { file } = tempConfig({ 'config.json': { templates: { dir: 'templates' } } });
    try {
      loadConfig({ file, env: {} });
      expect.unreachable('a missing operator templates folder must be a ConfigError');
    } catch (err) {
      expect((err as ConfigError).field).toBe('templates.dir');
      expect((err as ConfigError).message).toContain(join(file, '..', 'templates'));
    }
  });
});
