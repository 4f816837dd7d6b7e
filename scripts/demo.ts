/**
 * `npm run demo [-- --minutes N] [--users N] [--soon M]`: mailwheel end to end on this machine,
 * with nothing installed beyond `npm install`.
 *
 * 1. a MongoDB-wire server (FerretDB, see scripts/lib/mongo-server.ts), database `mailwheel_demo`;
 * 2. an SMTP server on 127.0.0.1 that writes every message to `.demo/mail/<n>-<recipient>.eml`;
 * 3. `mailwheel seed-users N --drop --soon M`: every user's first time falls in the next M minutes
 *    of their own zone (a few invalid users too, to show they are skipped, not fatal);
 * 4. `mailwheel start`, logs in `.demo/daemon.log`;
 * 5. a status line every few seconds: mail received / deliveries due so far, computed from the
 *    seeded users with the daemon's own fire-time rule, so a gap is visible at once.
 *
 * Ctrl-C (or SIGTERM, or `--minutes N`) stops it: SIGTERM to the daemon and wait for its graceful
 * exit, close SMTP, stop the database, print a summary. A second Ctrl-C forces. Exit code 0 only
 * when every delivery due was received exactly once and the daemon exited 0 (for CI-like checks).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { MongoClient } from 'mongodb';
import { loadConfig } from '../src/config/load.js';
import { scheduledKey } from '../src/core/delivery-key.js';
import { nextFire, type FireSlot } from '../src/core/fire-time.js';
import type { UserRecord } from '../src/core/types.js';
import { checkUser, type FieldMap } from '../src/core/validate-user.js';
import { headerValue, startMailCapture, type MailCapture } from './lib/mail-capture.js';
import { startMongoWire, withDbName, type MongoWire } from './lib/mongo-server.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const demoDir = path.join(root, '.demo');
const mailDir = path.join(demoDir, 'mail');
const configPath = path.join(demoDir, 'config.json');
const logPath = path.join(demoDir, 'daemon.log');
const cliEntry = path.join(root, 'src', 'cli', 'main.ts');

const STATUS_EVERY_MS = 5_000;
/** Print a status line at least this often even when nothing changed. */
const STATUS_QUIET_MS = 30_000;
/** The demo config's drain timeout; the daemon gets this plus a margin before SIGKILL. */
const DRAIN_TIMEOUT_MS = 10_000;
/**
 * One Ctrl-C can reach this process more than once: the terminal signals the whole process
 * group, and npm and tsx each relay it too. Signals this close together are one keypress.
 */
const SAME_KEYPRESS_MS = 1_000;

const say = (line: string): void => void process.stdout.write(`demo: ${line}\n`);

// ---------------------------------------------------------------------------------------------
// Options

function parseOptions(): { minutes: number | undefined; users: number; soon: number } {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string' },
      users: { type: 'string', default: '200' },
      soon: { type: 'string', default: '3' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write('usage: npm run demo [-- --minutes N] [--users N (200)] [--soon M (3)]\n');
    process.exit(0);
  }
  const int = (v: string | undefined, name: string): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) {
      process.stderr.write(`demo: --${name}: "${v}" is not a positive integer\n`);
      process.exit(64);
    }
    return n;
  };
  return { minutes: int(values.minutes, 'minutes'), users: int(values.users, 'users') ?? 200, soon: int(values.soon, 'soon') ?? 3 };
}

// ---------------------------------------------------------------------------------------------
// SMTP capture

interface CaptureStats {
  received: number;
  /** Messages per X-Mailwheel-Key header (the delivery key), to find gaps and duplicates. */
  byKey: Map<string, number>;
  withoutKey: number;
}

interface Capture extends CaptureStats {
  capture: MailCapture;
}

async function startCapture(): Promise<Capture> {
  const stats: CaptureStats = { received: 0, byKey: new Map(), withoutKey: 0 };
  const capture = await startMailCapture({
    port: 0,
    dir: mailDir,
    banner: 'mailwheel demo capture',
    onMessage: ({ raw }) => {
      stats.received++;
      const key = headerValue(raw.toString('utf8'), 'x-mailwheel-key');
      if (key === undefined) stats.withoutKey++;
      else stats.byKey.set(key, (stats.byKey.get(key) ?? 0) + 1);
    },
  });
  // A live view: the counters keep moving after this returns.
  return Object.assign(stats, { capture });
}

function closeCapture(capture: Capture): Promise<void> {
  return capture.capture.close();
}

// ---------------------------------------------------------------------------------------------
// What should have arrived: the daemon's own fire-time rule applied to the seeded users

interface Expected {
  key: string;
  at: number;
}

/** Walks each (user, slot) forward in time; `advance(t)` returns the deliveries due up to t. */
class ExpectedFires {
  readonly #pending: Array<{ user: UserRecord; time: string; slot: FireSlot | undefined }> = [];
  readonly due: Expected[] = [];

  constructor(users: readonly UserRecord[], fromMs: number) {
    for (const user of users) {
      for (const time of user.times) this.#pending.push({ user, time, slot: nextFire(user.timezone, time, user.days, fromMs) });
    }
  }

  advance(toMs: number): void {
    for (const p of this.#pending) {
      while (p.slot !== undefined && p.slot.at <= toMs) {
        this.due.push({ key: scheduledKey(p.user.id, p.time, p.slot.localDate), at: p.slot.at });
        p.slot = nextFire(p.user.timezone, p.time, p.user.days, p.slot.at, p.slot.localDate);
      }
    }
  }

  /** The earliest fire not yet due, for the status line. */
  next(): number | undefined {
    let min: number | undefined;
    for (const p of this.#pending) if (p.slot !== undefined && (min === undefined || p.slot.at < min)) min = p.slot.at;
    return min;
  }
}

interface SeededUsers {
  valid: UserRecord[];
  inactive: number;
  invalid: number;
}

async function readUsers(uri: string, fields: FieldMap, collection: string): Promise<SeededUsers> {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 10_000 });
  const out: SeededUsers = { valid: [], inactive: 0, invalid: 0 };
  try {
    for await (const doc of client.db().collection(collection).find({})) {
      const check = checkUser(doc, fields);
      if (check.kind === 'valid') out.valid.push(check.user);
      else if (check.kind === 'inactive') out.inactive++;
      else out.invalid++;
    }
  } finally {
    await client.close();
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Child processes

/** Runs the mailwheel CLI through tsx, as `npm run mailwheel` would, without npm in between. */
function spawnCli(args: string[], env: NodeJS.ProcessEnv, opts: { detached?: boolean; stdio: 'inherit' | 'pipe' }): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', cliEntry, ...args], {
    cwd: root,
    env,
    stdio: opts.stdio === 'inherit' ? ['ignore', 'inherit', 'inherit'] : ['ignore', 'pipe', 'pipe'],
    detached: opts.detached ?? false,
  });
}

function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', () => resolve({ code: null, signal: null }));
  });
}

/** Facts read from the daemon's pino lines (JSON on stderr), for the status line and summary. */
interface DaemonWatch {
  startedAt: number | undefined;
  invalidSkipped: number;
  errorLines: number;
  tail: string[];
}

function watchDaemon(child: ChildProcess, watch: DaemonWatch, onStarted: () => void): void {
  const log = createWriteStream(logPath, { flags: 'w' });
  let partial = '';
  const onChunk = (chunk: Buffer): void => {
    log.write(chunk);
    const lines = (partial + chunk.toString('utf8')).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (line.trim() === '') continue;
      watch.tail.push(line);
      if (watch.tail.length > 20) watch.tail.shift();
      let entry: { level?: unknown; msg?: unknown; time?: unknown };
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        continue; // not pino: a stack trace or tsx output; kept in the log and the tail
      }
      if (typeof entry.level === 'number' && entry.level >= 50) watch.errorLines++;
      if (entry.msg === 'invalid user skipped') watch.invalidSkipped++;
      if (entry.msg === 'mailwheel started' && watch.startedAt === undefined) {
        watch.startedAt = typeof entry.time === 'number' ? entry.time : Date.now();
        onStarted();
      }
    }
  };
  child.stdout?.on('data', onChunk);
  child.stderr?.on('data', onChunk);
  child.once('exit', () => log.end());
}

// ---------------------------------------------------------------------------------------------
// Main

type StopReason = 'Ctrl-C' | 'SIGTERM' | '--minutes' | 'daemon exited' | 'setup failed';

async function main(): Promise<number> {
  const opts = parseOptions();
  const began = Date.now();
  rmSync(mailDir, { recursive: true, force: true });
  mkdirSync(mailDir, { recursive: true });

  // Stop requests: the first signal asks for a graceful stop, a later one (a real second
  // keypress) forces: SIGKILL the daemon and leave; mongo-server's exit hook kills FerretDB.
  let requestStop: (reason: StopReason) => void = () => undefined;
  const stopRequested = new Promise<StopReason>((resolve) => (requestStop = resolve));
  let firstSignalAt: number | undefined;
  let daemon: ChildProcess | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    const now = Date.now();
    if (firstSignalAt === undefined) {
      firstSignalAt = now;
      say(`${signal}: stopping (Ctrl-C again to force)`);
      requestStop(signal === 'SIGINT' ? 'Ctrl-C' : 'SIGTERM');
    } else if (now - firstSignalAt > SAME_KEYPRESS_MS) {
      say(`${signal} again: forcing`);
      if (daemon?.exitCode === null) daemon.kill('SIGKILL');
      process.exit(130);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // The daemon runs in its own process group (see below), so it would outlive a crash of this
  // script; 'exit' handlers may only do synchronous work, and kill() is synchronous.
  process.once('exit', () => {
    if (daemon?.exitCode === null && daemon.signalCode === null) daemon.kill('SIGKILL');
  });

  let db: MongoWire | undefined;
  let capture: Capture | undefined;
  let daemonExit: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
  let statusTimer: NodeJS.Timeout | undefined;
  let seed: ChildProcess | undefined;
  const watch: DaemonWatch = { startedAt: undefined, invalidSkipped: 0, errorLines: 0, tail: [] };
  let reason: StopReason = 'setup failed';
  let seeded: SeededUsers | undefined;
  let expected: ExpectedFires | undefined;
  let stoppedAt = Date.now();

  try {
    // Races each setup step against a stop request, so Ctrl-C during a slow step is honoured.
    const STOP = Symbol('stop');
    const step = async <T>(work: Promise<T>): Promise<T> => {
      const r = await Promise.race([work, stopRequested.then((): typeof STOP => STOP)]);
      if (r === STOP) {
        reason = await stopRequested;
        throw new StopDuringSetup();
      }
      return r;
    };

    db = await step(startMongoWire({ log: (line) => say(line) }));
    const dbUri = withDbName(db.uri, 'mailwheel_demo');
    capture = await step(startCapture());
    const smtpUrl = `smtp://127.0.0.1:${capture.capture.port}`;
    say(`SMTP capture on ${smtpUrl}, messages go to ${path.relative(root, mailDir)}/`);

    writeFileSync(
      configPath,
      `${JSON.stringify(
        {
          // perSecond keeps the demo readable in the log; perDay cannot be removed (the config
          // file is merged over default.json), so it is set out of reach instead.
          rate: { perSecond: 50, perDay: 10_000_000 },
          smtp: { poolSize: 5 },
          send: { drainTimeoutMs: DRAIN_TIMEOUT_MS },
          http: { enabled: false, host: '127.0.0.1', port: 0 },
          log: { level: 'info' },
        },
        null,
        2,
      )}\n`,
    );
    const env: NodeJS.ProcessEnv = { ...process.env, MONGODB_URI: dbUri, SMTP_URL: smtpUrl, MAILWHEEL_CONFIG: configPath };
    // Fails here, with the field named, rather than in the daemon's log.
    const { config } = loadConfig({ file: configPath, env });

    say(`seeding ${opts.users} users, first times in the next ${opts.soon} minutes of each user's zone`);
    seed = spawnCli(['seed-users', String(opts.users), '--drop', '--soon', String(opts.soon), '--invalid-ratio', '0.03'], env, { stdio: 'inherit' });
    const seedExit = await step(exitOf(seed));
    if (seedExit.code !== 0) throw new Error(`seed-users failed (exit ${String(seedExit.code)}, signal ${String(seedExit.signal)})`);
    seeded = await step(readUsers(dbUri, config.users.fields, config.users.collection));

    say(`starting the daemon, log in ${path.relative(root, logPath)}`);
    // Own process group: a terminal's Ctrl-C reaches the whole foreground group, and the daemon
    // would take our SIGTERM as a second signal and skip its drain. We alone stop it.
    daemon = spawnCli(['start'], env, { detached: true, stdio: 'pipe' });
    daemonExit = exitOf(daemon);
    watchDaemon(daemon, watch, () => {
      // The daemon schedules from the start of the minute it started in; so do we.
      const from = Math.floor((watch.startedAt ?? Date.now()) / 60_000) * 60_000;
      expected = new ExpectedFires(seeded?.valid ?? [], from);
      say(`daemon started (pid ${String(daemon?.pid)}); ${seeded?.valid.length ?? 0} users to serve`);
    });

    let lastLine = '';
    let lastPrinted = 0;
    const status = (): void => {
      const now = Date.now();
      let line: string;
      if (expected === undefined) {
        line = 'daemon starting...';
      } else {
        expected.advance(now);
        const next = expected.next();
        line =
          `received ${capture?.received ?? 0} / due so far ${expected.due.length}` +
          (next === undefined ? '' : `, next fire ${new Date(next).toISOString().slice(11, 16)} UTC`) +
          (watch.invalidSkipped > 0 ? `, ${watch.invalidSkipped} invalid users skipped` : '') +
          (watch.errorLines > 0 ? `, ${watch.errorLines} error lines in the log` : '') +
          ` — read them in ${path.relative(root, mailDir)}/`;
      }
      if (line !== lastLine || now - lastPrinted >= STATUS_QUIET_MS) {
        say(`[${elapsed(now - began)}] ${line}`);
        lastLine = line;
        lastPrinted = now;
      }
    };
    statusTimer = setInterval(status, STATUS_EVERY_MS);

    const races: Array<Promise<StopReason>> = [stopRequested, daemonExit.then((): StopReason => 'daemon exited')];
    if (opts.minutes !== undefined) {
      say(`will stop by itself after ${opts.minutes} min (Ctrl-C to stop earlier)`);
      races.push(sleep(opts.minutes * 60_000).then((): StopReason => '--minutes'));
    } else {
      say('Ctrl-C to stop');
    }
    reason = await Promise.race(races);
    stoppedAt = Date.now();
    status();
  } catch (err) {
    stoppedAt = Date.now();
    if (!(err instanceof StopDuringSetup)) say(`setup failed: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    if (statusTimer !== undefined) clearInterval(statusTimer);
    // Stopped while seeding: a terminal's Ctrl-C has reached it already, a SIGTERM to us has not.
    if (seed?.exitCode === null && seed.signalCode === null) seed.kill('SIGTERM');
  }

  // Shutdown, each step even if an earlier one failed: daemon (drain), SMTP, database.
  let daemonResult: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  if (daemon !== undefined && daemonExit !== undefined) {
    if (daemon.exitCode === null && daemon.signalCode === null) {
      say(`stopping the daemon (SIGTERM to pid ${String(daemon.pid)}), waiting for its drain`);
      daemon.kill('SIGTERM');
      const timeout = sleep(DRAIN_TIMEOUT_MS + 15_000).then(() => undefined);
      daemonResult = await Promise.race([daemonExit, timeout]);
      if (daemonResult === undefined) {
        say('daemon did not exit in time: SIGKILL');
        daemon.kill('SIGKILL');
        daemonResult = await daemonExit;
      }
    } else {
      daemonResult = await daemonExit;
    }
    if (reason === 'daemon exited' || daemonResult.code !== 0) {
      say(`daemon exited with code ${String(daemonResult.code)}${daemonResult.signal ? ` (signal ${daemonResult.signal})` : ''}; last log lines:`);
      for (const line of watch.tail.slice(-12)) process.stdout.write(`    ${line}\n`);
    }
  }
  if (capture !== undefined) await closeCapture(capture).catch((err: unknown) => say(`SMTP close failed: ${String(err)}`));
  if (db !== undefined) await db.stop().catch((err: unknown) => say(`database stop failed: ${String(err)}`));

  return summary({ began, stoppedAt, reason, seeded, expected, capture, watch, daemonResult });
}

class StopDuringSetup extends Error {}

function summary(s: {
  began: number;
  stoppedAt: number;
  reason: StopReason;
  seeded: SeededUsers | undefined;
  expected: ExpectedFires | undefined;
  capture: Capture | undefined;
  watch: DaemonWatch;
  daemonResult: { code: number | null; signal: NodeJS.Signals | null } | undefined;
}): number {
  const out: string[] = [`ran ${elapsed(Date.now() - s.began)}, stopped by ${s.reason}`];
  let ok = s.reason !== 'setup failed' && s.reason !== 'daemon exited';
  if (s.seeded !== undefined) {
    const total = s.seeded.valid.length + s.seeded.inactive + s.seeded.invalid;
    out.push(`users: ${total} seeded (${s.seeded.valid.length} valid and active, ${s.seeded.inactive} inactive, ${s.seeded.invalid} invalid)`);
  }
  if (s.expected !== undefined && s.capture !== undefined) {
    s.expected.advance(s.stoppedAt);
    const received = s.capture.byKey;
    // A fire in the last minute may legitimately be cut off by the stop; older ones may not.
    const settled = s.expected.due.filter((e) => e.at <= s.stoppedAt - 60_000);
    const missing = settled.filter((e) => !received.has(e.key)).length;
    const cutOff = s.expected.due.filter((e) => e.at > s.stoppedAt - 60_000 && !received.has(e.key)).length;
    const dueKeys = new Set(s.expected.due.map((e) => e.key));
    let duplicates = 0;
    let unexpected = 0;
    for (const [key, count] of received) {
      duplicates += count - 1;
      if (!dueKeys.has(key)) unexpected += count;
    }
    out.push(
      `mail: ${s.capture.received} received, ${s.expected.due.length} due by the stop; ` +
        `${missing} missing, ${duplicates} duplicates, ${unexpected} unexpected` +
        (cutOff > 0 ? `, ${cutOff} due in the last minute not sent before the stop` : '') +
        (s.capture.withoutKey > 0 ? `, ${s.capture.withoutKey} without an X-Mailwheel-Key header` : ''),
    );
    out.push(`messages: ${path.relative(root, mailDir)}/  log: ${path.relative(root, logPath)}`);
    if (missing > 0 || duplicates > 0 || unexpected > 0) ok = false;
  } else if (s.capture !== undefined) {
    out.push(`mail: ${s.capture.received} received (the daemon never reported a start)`);
    ok = false;
  }
  if (s.daemonResult !== undefined) {
    out.push(
      `daemon: exit ${String(s.daemonResult.code)}${s.daemonResult.signal ? ` (signal ${s.daemonResult.signal})` : ''}, ` +
        `${s.watch.invalidSkipped} invalid users skipped, ${s.watch.errorLines} error lines`,
    );
    if (s.daemonResult.code !== 0) ok = false;
  }
  process.stdout.write(`\ndemo summary\n${out.map((l) => `  ${l}`).join('\n')}\n  result: ${ok ? 'OK' : 'NOT OK'}\n`);
  return ok ? 0 : 1;
}

function elapsed(ms: number): string {
  const s = Math.floor(ms / 1000);
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`demo: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
