/**
 * Loads the configuration: `config/default.json`, then the operator's file (`--config` or
 * MAILWHEEL_CONFIG), then the environment. The result is validated and frozen; any problem
 * becomes a `ConfigError` naming the field, which the CLI turns into exit code 78.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import cron from 'node-cron';
import { ConfigError, ErrorCodes, MailwheelError, type ConfigProblem } from '../errors.js';
import { isValidZone } from '../core/fire-time.js';
import { loadTemplates, type TemplateSet } from '../core/templates.js';
import { registerSecrets } from '../log.js';
import { loadDkimKeys, type DkimKey } from './dkim-keys.js';
import { configSchema, retiredSettings, schedulesSchema, type Config, type Schedules } from './schema.js';
import { redactUri, uriSecrets } from './urls.js';

/** The folder holding default.json, schedules.json and templates/ shipped with the package. */
export const defaultConfigDir = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'config');

export interface LoadedConfig {
  config: Config;
  schedules: Schedules;
  /** The scheduled-mail templates from `templates.dir`, read and compiled once. */
  templates: { scheduled: TemplateSet };
  /** Files that contributed, in order, for `config check`. */
  sources: string[];
  /** The `dkim[]` keys, read and parsed once (config/dkim-keys.ts); empty: messages go unsigned. */
  dkim: readonly DkimKey[];
}

type Json = Record<string, unknown>;

function isPlainObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Objects merge key by key; arrays and scalars replace. */
export function deepMerge(base: Json, over: Json): Json {
  const out: Json = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = Object.hasOwn(out, k) ? out[k] : undefined;
    // defineProperty, not assignment: a "__proto__" key from JSON stays an own (unknown, so
    // refused) key instead of replacing the object's prototype.
    Object.defineProperty(out, k, { value: isPlainObject(b) && isPlainObject(v) ? deepMerge(b, v) : v, enumerable: true, writable: true, configurable: true });
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
    if (!isPlainObject(parsed)) throw new MailwheelError(ErrorCodes.CONFIG_INVALID, 'top level must be an object');
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
  if (env.MAILWHEEL_REDIS_URL) o.cluster = { redisUrl: env.MAILWHEEL_REDIS_URL };
  const feedback: Json = {};
  if (env.MAILWHEEL_VERP_SECRET) feedback.verp = { secret: env.MAILWHEEL_VERP_SECRET };
  const webhooks: Json = {};
  if (env.MAILWHEEL_MAILGUN_SIGNING_KEY) webhooks.mailgun = { signingKey: env.MAILWHEEL_MAILGUN_SIGNING_KEY };
  if (env.MAILWHEEL_POSTMARK_PASSWORD) webhooks.postmark = { password: env.MAILWHEEL_POSTMARK_PASSWORD };
  if (Object.keys(webhooks).length > 0) feedback.webhooks = webhooks;
  if (Object.keys(feedback).length > 0) o.feedback = feedback;
  return o;
}

interface Issue {
  path: PropertyKey[];
  message: string;
  code?: string;
  keys?: string[];
}

/** Every validation problem, each naming its exact field (an unknown key by name, with a suggestion). */
function problemsOf(error: { issues: readonly Issue[] }, schema: unknown, prefix = ''): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  for (const issue of error.issues) {
    const path = issue.path.map(String);
    if (issue.code === 'unrecognized_keys' && issue.keys !== undefined) {
      for (const key of issue.keys) out.push({ field: prefix + [...path, key].join('.'), message: `unknown setting${suggestion(schema, path, key)}` });
      continue;
    }
    out.push({ field: prefix + (path.join('.') || '(root)'), message: issue.message });
  }
  return out;
}

/** The keys of the (strict) object schema at `path`, or undefined. */
function shapeAt(schema: unknown, path: readonly string[]): Record<string, unknown> | undefined {
  let node = schema as { shape?: Record<string, unknown> } | undefined;
  for (const key of path) node = node?.shape?.[key] as typeof node;
  return node?.shape;
}

/** Every dotted key path of the schema's objects (leaves and sections alike). */
function allPaths(schema: unknown, prefix: string[] = []): string[][] {
  const shape = shapeAt(schema, []);
  if (shape === undefined) return [];
  return Object.entries(shape).flatMap(([k, sub]) => [[...prefix, k], ...allPaths(sub, [...prefix, k])]);
}

/** ` (did you mean "X"?)` for a misspelt or misplaced key, else ''. */
function suggestion(schema: unknown, path: readonly string[], key: string): string {
  const here = Object.keys(shapeAt(schema, path) ?? {});
  const lower = key.toLowerCase();
  const near = here
    .map((k) => ({ k, d: editDistance(lower, k.toLowerCase()) }))
    .filter(({ k, d }) => d <= (k.length >= 5 ? 2 : 1))
    .sort((a, b) => a.d - b.d)[0];
  if (near !== undefined) return ` (did you mean "${[...path, near.k].join('.')}"?)`;
  // The right name in the wrong section (e.g. smtp.spreadSeconds for send.spreadSeconds).
  const elsewhere = allPaths(schema).find((p) => p[p.length - 1]?.toLowerCase() === lower);
  return elsewhere === undefined ? '' : ` (did you mean "${elsewhere.join('.')}"?)`;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

/** Runs `fn`, turning a ConfigError it throws into problems (other errors pass through). */
function collect<T>(problems: ConfigProblem[], fn: () => T): T | undefined {
  try {
    return fn();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems);
    return undefined;
  }
}

/**
 * A relative path from the config: one the operator's file sets is resolved against that file's
 * folder (and only there: a missing file is an error naming that path, never a silent fallback);
 * the packaged default is looked for in the operator's folder first, then in the packaged one.
 */
function resolveConfigPath(value: string, setByOperator: boolean, operatorDir: string | undefined, exists: (p: string) => boolean): string {
  if (isAbsolute(value)) return value;
  if (operatorDir !== undefined && setByOperator) return join(operatorDir, value);
  if (operatorDir !== undefined && exists(join(operatorDir, value))) return join(operatorDir, value);
  return join(defaultConfigDir, value);
}

export function loadConfig(opts: { file?: string; env?: NodeJS.ProcessEnv } = {}): LoadedConfig {
  const env = opts.env ?? process.env;
  const sources: string[] = [];
  const defaultsFile = join(defaultConfigDir, 'default.json');
  let merged = readJson(defaultsFile, 'default.json');
  sources.push(defaultsFile);

  const file = opts.file ?? env.MAILWHEEL_CONFIG;
  let operatorDir: string | undefined;
  let operator: Json = {};
  if (file) {
    const abs = resolve(file);
    operator = readJson(abs, '--config');
    merged = deepMerge(merged, operator);
    sources.push(abs);
    operatorDir = dirname(abs);
  }
  merged = deepMerge(merged, envOverrides(env));
  registerConfigSecrets(merged);

  // Every problem is collected and reported at once: an operator fixes them in one pass.
  const problems: ConfigProblem[] = [];
  for (const { path, message } of retiredSettings) {
    let node: unknown = merged;
    for (const key of path) node = isPlainObject(node) && Object.hasOwn(node, key) ? node[key] : undefined;
    if (node !== undefined) problems.push({ field: path.join('.'), message });
  }
  const parsed = configSchema.safeParse(merged);
  // A retired key is named once, with its replacement, not also as an unknown setting.
  const retired = new Set(problems.map((p) => p.field));
  if (!parsed.success) problems.push(...problemsOf(parsed.error, configSchema).filter((p) => !retired.has(p.field)));

  // schedules.json and the templates are checked even when other fields are bad.
  let schedules: Schedules | undefined;
  const schedulesFile = merged.schedulesFile;
  if (typeof schedulesFile === 'string' && schedulesFile !== '') {
    const schedFile = resolveConfigPath(schedulesFile, operator.schedulesFile !== undefined, operatorDir, existsSync);
    schedules = collect(problems, () => {
      const sched = schedulesSchema.safeParse(readJson(schedFile, 'schedulesFile'));
      if (!sched.success) throw ConfigError.of(problemsOf(sched.error, schedulesSchema, 'schedules.'));
      const bad: ConfigProblem[] = [];
      for (const [name, entry] of Object.entries(sched.data)) {
        if (entry === undefined) continue;
        if (!cron.validate(entry.cron)) bad.push({ field: `schedules.${name}.cron`, message: `invalid cron expression "${entry.cron}"` });
        if (!isValidZone(entry.timezone)) bad.push({ field: `schedules.${name}.timezone`, message: `unknown IANA zone "${entry.timezone}"` });
      }
      if (bad.length > 0) throw ConfigError.of(bad);
      return sched.data;
    });
    sources.push(schedFile);
  }

  // templates/: the whole folder from one place, never a mix of files from both. The config
  // then names the folder actually used.
  let templates: { scheduled: TemplateSet } | undefined;
  let tplDir: string | undefined;
  const tplValue = isPlainObject(merged.templates) ? merged.templates.dir : undefined;
  if (typeof tplValue === 'string' && tplValue !== '') {
    const setByOperator = isPlainObject(operator.templates) && operator.templates.dir !== undefined;
    tplDir = resolveConfigPath(tplValue, setByOperator, operatorDir, isDirectory);
    const dir = tplDir;
    templates = collect(problems, () => ({ scheduled: loadTemplates(dir, 'scheduled') }));
  }

  // DKIM keys are read here, once, so a bad key stops start-up (and `config check`) naming its field.
  const dkimEntries = parsed.success ? parsed.data.dkim : [];
  const dkim = collect(problems, () => loadDkimKeys(dkimEntries, operatorDir ?? defaultConfigDir));

  if (problems.length > 0 || !parsed.success || schedules === undefined || templates === undefined || tplDir === undefined || dkim === undefined) {
    throw ConfigError.of(problems);
  }
  const config = parsed.data;
  config.templates.dir = tplDir;
  // Certificate files are named relative to the operator's config folder (the packaged one without it).
  const certs = config.feedback.webhooks.ses.certificates;
  for (const [url, file] of Object.entries(certs)) certs[url] = isAbsolute(file) ? file : join(operatorDir ?? defaultConfigDir, file);
  return { config: deepFreeze(config), schedules: deepFreeze(schedules), templates, sources, dkim };
}

/** Secrets of the merged (possibly invalid) config, so no log line or error message shows them. */
function registerConfigSecrets(merged: Json): void {
  const get = (section: string, key: string): unknown => (isPlainObject(merged[section]) ? merged[section][key] : undefined);
  const uri = get('mongodb', 'uri');
  const url = get('smtp', 'url');
  const redis = get('cluster', 'redisUrl');
  const secrets: string[] = [];
  if (typeof uri === 'string') secrets.push(...uriSecrets(uri));
  if (typeof url === 'string') secrets.push(...uriSecrets(url));
  if (typeof redis === 'string') secrets.push(...uriSecrets(redis));
  const relays = get('smtp', 'relays');
  if (Array.isArray(relays)) for (const r of relays) if (isPlainObject(r) && typeof r.url === 'string') secrets.push(...uriSecrets(r.url));
  for (const [section, key] of [['unsubscribe', 'secret'], ['http', 'token']] as const) {
    const v = get(section, key);
    if (typeof v === 'string' && v.length >= 2) secrets.push(v);
  }
  const fb = isPlainObject(merged.feedback) ? merged.feedback : {};
  const wh = isPlainObject(fb.webhooks) ? fb.webhooks : {};
  for (const v of [isPlainObject(fb.verp) ? fb.verp.secret : undefined, isPlainObject(wh.mailgun) ? wh.mailgun.signingKey : undefined, isPlainObject(wh.postmark) ? wh.postmark.password : undefined]) {
    if (typeof v === 'string' && v.length >= 2) secrets.push(v);
  }
  registerSecrets(secrets);
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
  (clone.mongodb as Json).uri = redactUri(config.mongodb.uri);
  (clone.smtp as Json).url = redactUri(config.smtp.url);
  (clone.smtp as Json).relays = config.smtp.relays.map((r) => ({ ...r, url: redactUri(r.url) }));
  if (config.cluster.redisUrl !== null) (clone.cluster as Json).redisUrl = redactUri(config.cluster.redisUrl);
  if (config.unsubscribe.secret !== null) (clone.unsubscribe as Json).secret = '[redacted]';
  if (config.http.token !== null) (clone.http as Json).token = '[redacted]';
  const fb = clone.feedback as Json & { verp: Json; webhooks: Json & { mailgun: Json; postmark: Json } };
  if (config.feedback.verp.secret !== null) fb.verp.secret = '[redacted]';
  if (config.feedback.webhooks.mailgun.signingKey !== null) fb.webhooks.mailgun.signingKey = '[redacted]';
  if (config.feedback.webhooks.postmark.password !== null) fb.webhooks.postmark.password = '[redacted]';
  return clone;
}

/** The database name in the MongoDB URI (default "mailwheel"). */
export function databaseName(uri: string): string {
  const m = /^mongodb(?:\+srv)?:\/\/[^/]+\/([^?]*)/.exec(uri);
  return m?.[1] ? decodeURIComponent(m[1]) : 'mailwheel';
}
