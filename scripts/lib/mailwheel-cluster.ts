/**
 * N real mailwheel daemons on one MongoDB (and optionally one Redis), for the multi-daemon
 * acceptance tests (test/cli/cluster*.test.ts) and the `scale` bench. Each daemon is the built CLI
 * (`node dist/cli/main.js --config <file> start`; the tests' own build, `.test-dist/`, see
 * test/helpers/cli-build.ts) in its own process, with its own HTTP port (0 in
 * the config: the kernel picks one, read back from the "http listening" log line), so the caller
 * reads its `/stats`, `/metrics` and `/readyz`. Config: a temp file per cluster, merged over
 * config/default.json by the daemon, plus MONGODB_URI, SMTP_URL and MAILWHEEL_REDIS_URL in the
 * environment. A daemon is only ever signalled by its own pid (kill -9 included); RSS is read
 * from /proc/<pid>/status.
 *
 * What this reads of `/stats` (the names issue 13 implies; see src/ports/cluster.ts ClusterStatus):
 *   - `instance` (this daemon's id), `jobs`, `users`, `sends.{submitted,sent,failed}`,
 *     `queue.{waiting,inFlight,backlog}` (exist today);
 *   - `cluster.{mode, self, partitions, leaseTtlMs, members[{id, partitions, heartbeatAgeMs}],
 *     leases[{partition, owner, ageMs, expiresInMs}]}` (added with issue 13).
 * And of `/metrics`: `mailwheel_registry_jobs` (exists today).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Set to a directory to keep each daemon's whole log there (`daemon-<pid>.log`), for a failure's post-mortem. */
const logDir = process.env['MAILWHEEL_DAEMON_LOG_DIR'];
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const builtCli = path.join(repoRoot, 'dist', 'cli', 'main.js');

/** The parts of `/stats` the harness reads; everything else is kept as is. */
export interface DaemonStats {
  instance: string;
  jobs: number;
  users: number;
  sends: { submitted: number; sent: number; failed: number };
  queue: { waiting: number; inFlight: number; backlog: number };
  /** `/stats` `cluster` (src/app/cluster-view.ts ClusterSummary): per member, never per lease. */
  cluster?: {
    mode: string;
    self: string;
    partitions: number;
    owned: number;
    /** Partitions no live lease covers. */
    free: number;
    leaseTtlMs: number;
    members: Array<{ id: string; partitions: number; heartbeatAgeMs: number }>;
  };
  /** `/stats` `rateWindows`: each configured window's use (`used` null while a shared budget is down). */
  rateWindows?: Partial<Record<'perSecond' | 'perMinute' | 'perHour' | 'perDay', { limit: number; used: number | null; scope: string; state: string }>>;
  [field: string]: unknown;
}

export interface ClusterOptions {
  /** How many daemons. */
  n: number;
  /** MongoDB URI with the database name (MONGODB_URI). */
  mongoUri: string;
  /** SMTP_URL of the capturing server. */
  smtpUrl: string;
  /** MAILWHEEL_REDIS_URL; absent: no Redis (solo daemons). */
  redisUrl?: string;
  /** mailwheel config merged over config/default.json (http is forced to 127.0.0.1:0). */
  config: Record<string, unknown>;
  /** Extra environment for every daemon. */
  env?: Record<string, string>;
  /** The built CLI entry to run (default `dist/cli/main.js`; the tests pass their build of the current source). */
  cli?: string;
  /** Progress lines. */
  log?: (line: string) => void;
}

/** Resident set size and its high-water mark of a live process, MiB; undefined once it is gone. */
export function rssOf(pid: number): { rssMiB: number; hwmMiB: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
    const r = { rssMiB: kb('VmRSS') / 1024, hwmMiB: kb('VmHWM') / 1024 };
    return Number.isFinite(r.rssMiB) ? r : undefined;
  } catch {
    return undefined;
  }
}

export class Daemon {
  readonly index: number;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly startedAt = Date.now();
  #stderr = '';
  #port: number | undefined;
  readonly #exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #peakHwmMiB = 0;
  readonly #sampler: NodeJS.Timeout;

  constructor(index: number, configFile: string, env: Record<string, string>, cli: string = builtCli) {
    this.index = index;
    if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
    this.child = spawn(process.execPath, [cli, '--config', configFile, 'start'], { cwd: repoRoot, env: { ...process.env, LOG_LEVEL: 'info', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    this.pid = this.child.pid ?? -1;
    this.child.stderr?.on('data', (b: Buffer) => {
      const text = b.toString();
      if (this.#port === undefined) {
        const m = /"port":(\d+),"msg":"http listening"/.exec(this.#stderr + text);
        if (m) this.#port = Number(m[1]);
      }
      this.#stderr = (this.#stderr + text).slice(-100_000);
      if (logDir) appendFileSync(path.join(logDir, `daemon-${this.pid}.log`), text);
    });
    this.#exited = new Promise((res) => this.child.once('exit', (code, signal) => res({ code, signal })));
    this.#sampler = setInterval(() => {
      const r = rssOf(this.pid);
      if (r !== undefined && Number.isFinite(r.hwmMiB)) this.#peakHwmMiB = Math.max(this.#peakHwmMiB, r.hwmMiB);
    }, 500);
    void this.#exited.then(() => clearInterval(this.#sampler));
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  get stderr(): string {
    return this.#stderr;
  }

  get port(): number {
    if (this.#port === undefined) throw new Error(`daemon ${this.index} (pid ${this.pid}) has not logged its HTTP port yet; stderr tail:\n${this.#stderr.slice(-2000)}`);
    return this.#port;
  }

  /** Highest VmHWM seen while it ran (MiB). */
  get peakRssMiB(): number {
    return Math.round(this.#peakHwmMiB * 10) / 10;
  }

  rss(): { rssMiB: number; hwmMiB: number } | undefined {
    return rssOf(this.pid);
  }

  exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    return this.#exited;
  }

  /** Resolves once the daemon logged "mailwheel started" and its HTTP port (rejects if it exits first). */
  async waitStarted(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(this.#port !== undefined && this.#stderr.includes('"msg":"mailwheel started"'))) {
      if (!this.alive) throw new Error(`daemon ${this.index} (pid ${this.pid}) exited before it started; stderr tail:\n${this.#stderr.slice(-3000)}`);
      if (Date.now() > deadline) throw new Error(`daemon ${this.index} (pid ${this.pid}) did not start within ${timeoutMs} ms; stderr tail:\n${this.#stderr.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async #get(pathname: string): Promise<Response> {
    return fetch(`http://127.0.0.1:${this.port}${pathname}`, { signal: AbortSignal.timeout(10_000) });
  }

  async stats(): Promise<DaemonStats> {
    return (await (await this.#get('/stats')).json()) as DaemonStats;
  }

  async metricsText(): Promise<string> {
    return (await this.#get('/metrics')).text();
  }

  /** One sample of a metric without labels (undefined when absent). */
  async metric(name: string): Promise<number | undefined> {
    const m = new RegExp(`^${name} ([0-9.eE+-]+)$`, 'm').exec(await this.metricsText());
    return m === null ? undefined : Number(m[1]);
  }

  async readyz(): Promise<{ status: number; body: unknown }> {
    const res = await this.#get('/readyz');
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, body };
  }

  /** kill -9, by pid; resolves when the process is gone. */
  async kill9(): Promise<void> {
    if (this.alive) process.kill(this.pid, 'SIGKILL');
    await this.#exited;
  }

  /** SIGTERM (graceful stop), SIGKILL after `graceMs`; resolves when gone. */
  async stop(graceMs = 30_000): Promise<void> {
    if (!this.alive) return;
    process.kill(this.pid, 'SIGTERM');
    const t = setTimeout(() => {
      if (this.alive) process.kill(this.pid, 'SIGKILL');
    }, graceMs);
    await this.#exited;
    clearTimeout(t);
  }
}

export class MailwheelCluster {
  readonly daemons: Daemon[] = [];
  readonly configFile: string;
  readonly #env: Record<string, string>;
  readonly #log: (line: string) => void;
  readonly #cli: string;

  constructor(opts: ClusterOptions) {
    const dir = mkdtempSync(path.join(tmpdir(), 'mailwheel-cluster-'));
    this.configFile = path.join(dir, 'config.json');
    const http = { ...((opts.config['http'] as Record<string, unknown> | undefined) ?? {}), enabled: true, host: '127.0.0.1', port: 0 };
    writeFileSync(this.configFile, JSON.stringify({ ...opts.config, http }, null, 2));
    this.#env = { MONGODB_URI: opts.mongoUri, SMTP_URL: opts.smtpUrl, ...(opts.redisUrl === undefined ? {} : { MAILWHEEL_REDIS_URL: opts.redisUrl }), ...opts.env };
    this.#log = opts.log ?? (() => undefined);
    this.#cli = opts.cli ?? builtCli;
    for (let i = 0; i < opts.n; i++) this.add();
  }

  /** Starts one more daemon (not waited for). */
  add(): Daemon {
    const d = new Daemon(this.daemons.length, this.configFile, this.#env, this.#cli);
    this.#log(`daemon ${d.index}: pid ${d.pid}`);
    this.daemons.push(d);
    return d;
  }

  get live(): Daemon[] {
    return this.daemons.filter((d) => d.alive);
  }

  /** Waits until every live daemon logged its start (its first user sync is done). */
  async waitStarted(timeoutMs = 180_000): Promise<void> {
    await Promise.all(this.live.map((d) => d.waitStarted(timeoutMs)));
  }

  /**
   * What each daemon says about itself, for a failure's message: the `/stats` fields that tell a
   * stalled run apart (jobs, queue, sends, claims, catch-up, breaker, redis, partitions) and the
   * last log lines. Never throws (a daemon that does not answer says so).
   */
  async diagnose(tailLines = 8): Promise<string> {
    const parts = await Promise.all(
      this.daemons.map(async (d) => {
        let stats: string;
        try {
          const s = (await d.stats()) as DaemonStats & Record<string, unknown>;
          const pick = (k: string): unknown => s[k];
          stats = JSON.stringify({ jobs: s.jobs, nextFire: pick('nextFire'), queue: s.queue, sends: s.sends, claims: pick('claims'), catchUp: pick('catchUp'), analytics: pick('analytics'), breaker: pick('breaker'), redis: pick('redis'), owned: s.cluster?.owned, free: s.cluster?.free, members: s.cluster?.members.length });
        } catch (err) {
          stats = `no /stats: ${(err as Error).message}`;
        }
        const tail = d.stderr.trimEnd().split('\n').slice(-tailLines).map((l) => `    ${l.slice(0, 400)}`).join('\n');
        return `daemon ${d.index} (pid ${d.pid}, ${d.alive ? 'alive' : 'exited'}): ${stats}\n${tail}`;
      }),
    );
    return parts.join('\n');
  }

  /** `/stats` of every live daemon. */
  stats(): Promise<DaemonStats[]> {
    return Promise.all(this.live.map((d) => d.stats()));
  }

  /** Stops every daemon still running (SIGTERM, then SIGKILL) and removes the config. */
  async stopAll(graceMs = 20_000): Promise<void> {
    await Promise.all(this.daemons.map((d) => d.stop(graceMs).catch(() => undefined)));
    rmSync(path.dirname(this.configFile), { recursive: true, force: true });
  }
}

/**
 * Partitions owned by the daemons `ids`, as these `/stats` show them (each daemon's own leases
 * table; a partition counts once, whoever of `ids` holds it). undefined when no `/stats` has
 * `cluster` (the daemon does not report partitions).
 */
export function partitionsOwnedBy(stats: readonly DaemonStats[], ids: ReadonlySet<string>): { owned: number; total: number } | undefined {
  const views = stats.filter((s) => s.cluster !== undefined);
  if (views.length === 0) return undefined;
  // Every survivor's view must agree that nothing is free and that the survivors hold it all
  // (the dead member's leases, until they expire, are neither free nor the survivors').
  let owned = Number.POSITIVE_INFINITY;
  for (const s of views) {
    const c = s.cluster as NonNullable<DaemonStats['cluster']>;
    const held = c.members.filter((m) => ids.has(m.id)).reduce((n, m) => n + m.partitions, 0);
    owned = Math.min(owned, c.free === 0 ? held : Math.min(held, c.partitions - c.free));
  }
  return { owned, total: views[0]?.cluster?.partitions ?? Number.NaN };
}

/**
 * When `daemons` together held all `total` partitions again after `sinceMs`, by their own log
 * lines ("partitions moved" carries the time of the move and what the daemon owns after it): ms
 * from `sinceMs`, or undefined when their logs never add up to `total`. A daemon's own clock at the
 * move, not when a busy daemon next answers `/stats` (on a loaded machine that answer lags by
 * seconds behind the move it reports).
 */
export function ownedAgainFromLogs(daemons: readonly Pick<Daemon, 'stderr'>[], sinceMs: number, total: number): number | undefined {
  const events: Array<{ at: number; daemon: number; owned: number }> = [];
  const owned = daemons.map(() => 0);
  daemons.forEach((d, i) => {
    for (const line of d.stderr.split('\n')) {
      if (!line.includes('"msg":"partitions moved"')) continue;
      const at = Number(/"time":(\d+)/.exec(line)?.[1]);
      const n = Number(/"owned":(\d+)/.exec(line)?.[1]);
      if (!Number.isFinite(at) || !Number.isFinite(n)) continue;
      if (at < sinceMs) owned[i] = n;
      else events.push({ at, daemon: i, owned: n });
    }
  });
  events.sort((a, b) => a.at - b.at);
  for (const e of events) {
    owned[e.daemon] = e.owned;
    if (owned.reduce((a, b) => a + b, 0) === total) return e.at - sinceMs;
  }
  return undefined;
}

/** Every live daemon idle: nothing queued, in flight or claimed-but-not-queued. */
export function idle(stats: readonly DaemonStats[]): boolean {
  return stats.every((s) => s.queue.waiting === 0 && s.queue.inFlight === 0 && s.queue.backlog === 0);
}

/**
 * Resolves once every daemon `stats()` reads is idle twice in a row (one poll apart), so a late
 * send (a retry, a takeover) is not cut off; rejects after `timeoutMs`.
 */
export async function untilIdleTwice(stats: () => Promise<readonly DaemonStats[]>, timeoutMs: number): Promise<void> {
  let idleOnce = false;
  await until(
    async () => {
      const now = idle(await stats());
      const done = now && idleOnce;
      idleOnce = now;
      return done ? true : undefined;
    },
    timeoutMs,
    () => 'daemons still busy',
    1_000,
  );
}

/** Resolves when `check()` returns a value other than undefined; polls every `intervalMs`; rejects after `timeoutMs` with `describe()`. */
export async function until<T>(check: () => Promise<T | undefined> | T | undefined, timeoutMs: number, describe: () => string | Promise<string>, intervalMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let value: T | undefined;
    try {
      value = await check();
    } catch {
      value = undefined; // a daemon busy or restarting: try again
    }
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${await describe()}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
