/**
 * Loads the configuration: `config/default.json`, then the operator's file (`--config` or
 * MAILWHEEL_CONFIG), then the environment. The result is validated and frozen; any problem
 * becomes a `ConfigError` naming the field, which the CLI turns into exit code 78.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import cron from 'node-cron';
import { ConfigError } from '../errors.js';
import { isValidZone } from '../core/fire-time.js';
import { loadTemplates, type TemplateSet } from '../core/templates.js';
import { maskUri } from '../log.js';
import { configSchema, schedulesSchema, type Config, type Schedules } from './schema.js';

/** The folder holding default.json, schedules.json and templates/ shipped with the package. */
export const defaultConfigDir = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'config');

export interface LoadedConfig {
  config: Config;
  schedules: Schedules;
  /** The scheduled-mail templates from `templates.dir`, read and compiled once. */
  templates: { scheduled: TemplateSet };
  /** Files that contributed, in order, for `config check`. */
  sources: string[];
}

type Json = Record<string, unknown>;

function isPlainObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Objects merge key by key; arrays and scalars replace. */
export function deepMerge(base: Json, over: Json): Json {
  const out: Json = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isPlainObject(b) && isPlainObject(v) ? deepMerge(b, v) : v;
  }
  return out;
}

function readJson(file: string, label: string): Json {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(label, `cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (!isPlainObject(parsed)) throw new Error('top level must be an object');
    return parsed;
  } catch (err) {
    throw new ConfigError(label, `${file} is not valid JSON: ${(err as Error).message}`);
  }
}

/** Environment variables that override the file (docs/ARCHITECTURE.md "Environment"). */
function envOverrides(env: NodeJS.ProcessEnv): Json {
  const o: Json = {};
  if (env.MONGODB_URI) o.mongodb = { uri: env.MONGODB_URI };
  if (env.SMTP_URL) o.smtp = { url: env.SMTP_URL };
  if (env.LOG_LEVEL) o.log = { level: env.LOG_LEVEL };
  if (env.MAILWHEEL_UNSUBSCRIBE_SECRET) o.unsubscribe = { secret: env.MAILWHEEL_UNSUBSCRIBE_SECRET };
  if (env.MAILWHEEL_HTTP_TOKEN) o.http = { token: env.MAILWHEEL_HTTP_TOKEN };
  return o;
}

interface Issue {
  path: PropertyKey[];
  message: string;
  code?: string;
  keys?: string[];
}

/** The first validation problem as a ConfigError naming the exact field (an unknown key by name). */
function firstIssue(error: { issues: readonly Issue[] }, prefix = ''): ConfigError {
  const issue = error.issues[0];
  if (!issue) return new ConfigError(prefix || '(root)', 'invalid');
  const path = issue.path.map(String);
  if (issue.code === 'unrecognized_keys' && issue.keys?.[0] !== undefined) {
    return new ConfigError(prefix + [...path, issue.keys[0]].join('.'), 'unknown setting (check the spelling)');
  }
  return new ConfigError(prefix + (path.join('.') || '(root)'), issue.message);
}

export function loadConfig(opts: { file?: string; env?: NodeJS.ProcessEnv } = {}): LoadedConfig {
  const env = opts.env ?? process.env;
  const sources: string[] = [];
  const defaultsFile = join(defaultConfigDir, 'default.json');
  let merged = readJson(defaultsFile, 'default.json');
  sources.push(defaultsFile);

  const file = opts.file ?? env.MAILWHEEL_CONFIG;
  let configDir = defaultConfigDir;
  if (file) {
    const abs = resolve(file);
    merged = deepMerge(merged, readJson(abs, '--config'));
    sources.push(abs);
    configDir = dirname(abs);
  }
  merged = deepMerge(merged, envOverrides(env));

  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) throw firstIssue(parsed.error);
  const config = parsed.data;

  // schedules.json: the operator's folder first, then the packaged one.
  const schedPath = isAbsolute(config.schedulesFile) ? config.schedulesFile : join(configDir, config.schedulesFile);
  const schedFile = file && existsSync(schedPath) ? schedPath : join(defaultConfigDir, config.schedulesFile);
  const sched = schedulesSchema.safeParse(readJson(schedFile, 'schedulesFile'));
  if (!sched.success) throw firstIssue(sched.error, 'schedules.');
  for (const [name, entry] of Object.entries(sched.data)) {
    if (entry === undefined) continue;
    if (!cron.validate(entry.cron)) throw new ConfigError(`schedules.${name}.cron`, `invalid cron expression "${entry.cron}"`);
    if (!isValidZone(entry.timezone)) throw new ConfigError(`schedules.${name}.timezone`, `unknown IANA zone "${entry.timezone}"`);
  }
  sources.push(schedFile);

  // templates/: the operator's folder first, then the packaged one (the whole folder, never a
  // mix of files from both). The config then names the folder actually used.
  const tplPath = isAbsolute(config.templates.dir) ? config.templates.dir : join(configDir, config.templates.dir);
  const tplDir = isAbsolute(config.templates.dir) || (file && isDirectory(tplPath)) ? tplPath : join(defaultConfigDir, config.templates.dir);
  config.templates.dir = tplDir;
  const templates = { scheduled: loadTemplates(tplDir, 'scheduled') };
  return { config: deepFreeze(config), schedules: deepFreeze(sched.data), templates, sources };
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function deepFreeze<T>(o: T): T {
  if (isPlainObject(o)) for (const v of Object.values(o)) deepFreeze(v);
  return Object.freeze(o);
}

/** A copy of the config safe to print: credentials in URIs replaced. */
export function redactConfig(config: Config): Json {
  const clone = JSON.parse(JSON.stringify(config)) as Json;
  (clone.mongodb as Json).uri = maskUri(config.mongodb.uri);
  (clone.smtp as Json).url = maskUri(config.smtp.url);
  if (config.unsubscribe.secret !== null) (clone.unsubscribe as Json).secret = '[redacted]';
  if (config.http.token !== null) (clone.http as Json).token = '[redacted]';
  return clone;
}

/** The database name in the MongoDB URI (default "mailwheel"). */
export function databaseName(uri: string): string {
  const m = /^mongodb(?:\+srv)?:\/\/[^/]+\/([^?]*)/.exec(uri);
  return m?.[1] ? decodeURIComponent(m[1]) : 'mailwheel';
}
