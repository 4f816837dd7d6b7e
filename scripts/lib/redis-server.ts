/**
 * A private Redis for tests and development (the shared rate windows of issue 13), started the way
 * FerretDB is (scripts/lib/mongo-server.ts): Debian's `redis-server` on a free loopback port, with
 * a fresh temp folder as its working directory and NO persistence (`--save ""`, `--appendonly no`),
 * so every start, and every restart after `down()`, begins empty: that is what a Redis without
 * persistence does after a crash, and what the outage tests must survive.
 *
 * The binary is `/usr/bin/redis-server` (Debian package `redis-server`; `.ci/run` installs it);
 * `MAILWHEEL_REDIS_SERVER` names another one (e.g. Homebrew's). A missing binary is one clear error
 * ({@link RedisServerMissingError}) naming the install command, never a hang.
 *
 * Only node built-ins: the readiness probe speaks RESP itself (`PING` -> `+PONG`), so a client's
 * reconnect backoff never slows the start, and this module works without the app's dependencies.
 * It is shared by the vitest global setup, tests that take Redis down and up again, and
 * `npm run dev-servers`; it must not import vitest.
 */
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freeLoopbackPort } from './mongo-server.js';

/** How long redis-server gets to answer PING. It is normally up in a few milliseconds. */
const READY_TIMEOUT_MS = 15_000;
/** Grace period between SIGTERM and SIGKILL. Without persistence a SIGTERM exits at once. */
const STOP_GRACE_MS = 5_000;
const OUTPUT_TAIL_CHARS = 4_096;

export const DEFAULT_REDIS_SERVER = '/usr/bin/redis-server';
export const REDIS_INSTALL_HINT = 'apt-get install -y --no-install-recommends redis-server';

/** The redis-server binary: `MAILWHEEL_REDIS_SERVER` if set, else Debian's. */
export function redisServerBinary(): string {
  const override = process.env['MAILWHEEL_REDIS_SERVER'];
  return override !== undefined && override !== '' ? override : DEFAULT_REDIS_SERVER;
}

export class RedisServerMissingError extends Error {
  constructor(readonly binary: string) {
    super(`redis-server is not installed (no executable ${binary}): run \`${REDIS_INSTALL_HINT}\` (Debian), or set MAILWHEEL_REDIS_SERVER to its path`);
    this.name = 'RedisServerMissingError';
  }
}

/** True when the redis-server binary exists and is executable. */
export function redisServerAvailable(binary = redisServerBinary()): boolean {
  try {
    accessSync(binary, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** `redis-server --version`, e.g. `Redis server v=7.0.15 sha=...`; undefined when it cannot run. */
export function redisServerVersion(binary = redisServerBinary()): string | undefined {
  const r = spawnSync(binary, ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

export interface RedisServer {
  /** `redis://127.0.0.1:PORT` (database 0, no password). */
  url: string;
  host: '127.0.0.1';
  port: number;
  /** PID of the running process; undefined while down. */
  readonly pid: number | undefined;
  readonly isUp: boolean;
  /**
   * Stops the process, ours only (by its PID): clients see connections refused. A crash (SIGKILL)
   * by default; `{ graceful: true }` sends SIGTERM. Without persistence the data is gone either way.
   */
  down(opts?: { graceful?: boolean }): Promise<void>;
  /** Starts it again on the same port (empty). No-op while up. */
  up(): Promise<void>;
  /** Stops it for good and removes its folder. Idempotent. */
  stop(): Promise<void>;
}

export interface StartRedisOptions {
  /** A fixed port (dev-servers); default a free loopback port. */
  port?: number;
  /** Progress lines (port, pid, timing). Defaults to silence. */
  log?: (line: string) => void;
}

/**
 * Starts a private redis-server; see the module comment. Rejects with {@link RedisServerMissingError}
 * when the binary is missing, or with the server's output when it does not answer PING in time.
 */
export async function startRedisServer(opts: StartRedisOptions = {}): Promise<RedisServer> {
  const log = opts.log ?? (() => {});
  const binary = redisServerBinary();
  if (!redisServerAvailable(binary)) throw new RedisServerMissingError(binary);

  const dir = await mkdtemp(path.join(os.tmpdir(), 'mailwheel-redis-'));
  const removeDir = (): void => rmSync(dir, { recursive: true, force: true });
  process.once('exit', removeDir);

  let current: RedisProcess | undefined;
  let port = opts.port ?? 0;
  // Between our probe of a free port and redis binding it another process may take the port; with
  // a chosen port, retry on a fresh one. A fixed port is the caller's choice: report it as taken.
  const attempts = opts.port === undefined ? 3 : 1;
  for (let attempt = 1; current === undefined; attempt++) {
    if (opts.port === undefined) port = await freeLoopbackPort();
    try {
      current = await startOnce(binary, port, dir, log);
    } catch (err) {
      if (!(err instanceof RedisStartError) || !err.portInUse || attempt >= attempts) {
        process.removeListener('exit', removeDir);
        removeDir();
        throw err;
      }
      log(`redis: port ${port} taken before redis-server could bind it, retrying (${attempt}/${attempts})`);
    }
  }

  let stopping: Promise<void> | undefined;
  return {
    url: `redis://127.0.0.1:${port}`,
    host: '127.0.0.1',
    port,
    get pid() {
      return current?.pid;
    },
    get isUp() {
      return current !== undefined;
    },
    async down(downOpts = {}) {
      const server = current;
      current = undefined;
      if (server === undefined) return;
      await (downOpts.graceful === true ? server.terminate() : server.kill());
    },
    async up() {
      if (stopping !== undefined) throw new Error('redis: up() after stop()');
      current ??= await startOnce(binary, port, dir, log);
    },
    stop() {
      stopping ??= (async () => {
        const server = current;
        current = undefined;
        await server?.terminate();
        process.removeListener('exit', removeDir);
        await rm(dir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
}

class RedisStartError extends Error {
  constructor(
    message: string,
    readonly portInUse: boolean,
  ) {
    super(message);
    this.name = 'RedisStartError';
  }
}

interface RedisProcess {
  pid: number | undefined;
  /** SIGKILL, effective at once. */
  kill(): Promise<void>;
  /** SIGTERM, SIGKILL after STOP_GRACE_MS. */
  terminate(): Promise<void>;
}

async function startOnce(binary: string, port: number, dir: string, log: (line: string) => void): Promise<RedisProcess> {
  const started = Date.now();
  const args = [
    '--port', String(port),
    '--bind', '127.0.0.1',
    // No RDB snapshots and no AOF: nothing is written, a restart starts empty.
    '--save', '',
    '--appendonly', 'no',
    '--dir', dir,
    '--daemonize', 'no',
    '--protected-mode', 'yes',
    // Log to stdout (kept as a tail for errors); warnings only.
    '--logfile', '',
    '--loglevel', 'warning',
  ];
  const child = spawn(binary, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group, like FerretDB: a terminal Ctrl-C reaches the parent, which stops
    // the clients first and the server last.
    detached: true,
  });
  let output = '';
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-OUTPUT_TAIL_CHARS);
  };
  // Always drain both pipes: an unread pipe fills up and blocks the server.
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);

  let exitInfo: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exitInfo = `exited (code ${String(code)}, signal ${String(signal)})`;
      resolve();
    });
  });
  child.once('error', (err) => {
    exitInfo ??= `could not spawn: ${err.message}`;
  });

  // A parent that exits without stop() (a crash) must not leave an orphan server behind. Only
  // synchronous work is possible in an 'exit' handler.
  const onParentExit = (): void => {
    if (exitInfo === undefined) child.kill('SIGKILL');
  };
  process.once('exit', onParentExit);

  const kill = async (): Promise<void> => {
    process.removeListener('exit', onParentExit);
    if (child.pid !== undefined && exitInfo === undefined) child.kill('SIGKILL');
    if (child.pid !== undefined) await exited;
  };
  const terminate = async (): Promise<void> => {
    process.removeListener('exit', onParentExit);
    if (child.pid === undefined || exitInfo !== undefined) return;
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const forced = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        if (exitInfo === undefined) child.kill('SIGKILL');
        resolve();
      }, STOP_GRACE_MS);
    });
    await Promise.race([exited, forced]);
    clearTimeout(timer);
    await exited;
    log(`redis: redis-server on port ${port} stopped`);
  };

  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = 'no attempt yet';
  for (;;) {
    if (exitInfo !== undefined || Date.now() > deadline) {
      await kill();
      const reason = exitInfo ?? `no PONG within ${READY_TIMEOUT_MS} ms (last: ${last})`;
      throw new RedisStartError(
        `redis-server (${binary}) did not become ready on 127.0.0.1:${port}: ${reason}\n--- redis-server output (tail) ---\n${output.trim() || '(none)'}`,
        /address already in use/i.test(output),
      );
    }
    last = await ping(port);
    if (last === '+PONG') break;
    // Polled because a starting process cannot notify us; a few ms apart, bounded by the deadline.
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  log(`redis: redis-server ready at redis://127.0.0.1:${port} in ${Date.now() - started} ms (pid ${String(child.pid)}, dir ${dir})`);
  return { pid: child.pid, kill, terminate };
}

/** Sends `PING` over RESP; resolves the first reply line (`+PONG` when ready) or the error. */
export function ping(port: number, timeoutMs = 1_000): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    let reply = '';
    const done = (result: string): void => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(timeoutMs, () => done('timeout'));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString('utf8');
      const end = reply.indexOf('\r\n');
      if (end >= 0) done(reply.slice(0, end));
    });
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code ?? err.message));
    socket.once('end', () => done(reply || 'closed'));
  });
}
