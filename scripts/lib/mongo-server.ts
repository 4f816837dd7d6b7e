/**
 * Starts a real MongoDB-wire server for tests and the demo.
 *
 * Order (see docs/ARCHITECTURE.md "Real parts, and how they start"):
 *   1. env MONGODB_URI set       -> use it as is; stop() is a no-op (we do not own that server).
 *   2. FerretDB v1.24.2 (SQLite) -> built by scripts/build-ferretdb.sh into .cache/bin/ferretdb,
 *                                    started on a free loopback port with a fresh temp data folder.
 *   3. mongodb-memory-server     -> only when Go/FerretDB is unavailable (it needs a `mongod` on
 *                                    PATH or a download, neither of which this machine has).
 *
 * `MAILWHEEL_MONGO_BACKEND=ferretdb|memory-server` forces step 2 or 3 (useful to exercise the
 * fallback on a machine that has both). Without it the order above applies.
 *
 * This module is shared by the vitest global setup and `npm run demo`, so it must not import
 * vitest, and it only uses node built-ins plus the `mongodb` driver (a runtime dependency).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MongoClient } from 'mongodb';

export type MongoWireKind = 'external' | 'ferretdb' | 'memory-server';

export interface MongoWire {
  /** Server URI without a database name, e.g. `mongodb://127.0.0.1:PORT/`. Use {@link withDbName}. */
  uri: string;
  kind: MongoWireKind;
  /** Stops the server we started and removes its data; idempotent; no-op for 'external'. */
  stop(): Promise<void>;
}

export interface StartMongoWireOptions {
  /** Progress lines (which backend, port, timing). Defaults to silence. */
  log?: (line: string) => void;
}

/** Repo root, resolved from this file so it works from vitest, tsx and any cwd. */
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
export const ferretdbBinary = path.join(repoRoot, '.cache', 'bin', 'ferretdb');
const buildScript = path.join(repoRoot, 'scripts', 'build-ferretdb.sh');

/** How long FerretDB gets to answer `ping`. It is normally up in well under a second. */
const READY_TIMEOUT_MS = 30_000;
/** Grace period between SIGTERM and SIGKILL in stop(). */
const STOP_GRACE_MS = 5_000;
/** Keep the tail of the server's output for error messages, not all of it. */
const OUTPUT_TAIL_BYTES = 8_192;

export async function startMongoWire(opts: StartMongoWireOptions = {}): Promise<MongoWire> {
  const log = opts.log ?? (() => {});

  const external = process.env['MONGODB_URI'];
  if (external !== undefined && external !== '') {
    log(`mongo: using MONGODB_URI (external server, not started or stopped by us)`);
    return { uri: external, kind: 'external', stop: async () => {} };
  }

  const forced = process.env['MAILWHEEL_MONGO_BACKEND'];
  if (forced !== undefined && forced !== '' && forced !== 'ferretdb' && forced !== 'memory-server') {
    throw new Error(`MAILWHEEL_MONGO_BACKEND must be 'ferretdb' or 'memory-server', got '${forced}'`);
  }

  if (forced !== 'memory-server') {
    const binary = ensureFerretdbBinary(log);
    if (binary !== undefined) {
      return startFerretdb(binary, log);
    }
    if (forced === 'ferretdb') {
      throw new Error('MAILWHEEL_MONGO_BACKEND=ferretdb but FerretDB could not be built (see log above)');
    }
    log('mongo: FerretDB unavailable, falling back to mongodb-memory-server');
  }
  return startMemoryServer(log);
}

/** A private FerretDB that a test can take down and bring back (same port, same data). */
export interface RestartableMongoWire extends MongoWire {
  port: number;
  readonly isUp: boolean;
  /**
   * Stops the server process, keeping its data: clients see connections refused. By default a
   * crash (SIGKILL, effective at once); `{ graceful: true }` sends SIGTERM, and FerretDB then
   * keeps serving open connections for a few seconds while it shuts down.
   */
  down(opts?: { graceful?: boolean }): Promise<void>;
  /** Starts it again on the same port with the same data. */
  up(): Promise<void>;
}

/**
 * Starts a FerretDB of its own (not the shared test server) for outage tests: `down()` and `up()`
 * stop and restart it on the same port and data folder, so a connected driver reconnects to the
 * same data. `stop()` stops it for good and removes the data. Resolves undefined when FerretDB is
 * not available here (no binary and no Go toolchain): the caller skips its test.
 */
export async function startRestartableFerretdb(opts: StartMongoWireOptions = {}): Promise<RestartableMongoWire | undefined> {
  const log = opts.log ?? (() => {});
  const binary = ensureFerretdbBinary(log);
  if (binary === undefined) return undefined;
  const port = await freeLoopbackPort();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'mailwheel-ferretdb-private-'));
  const place = { port, dataDir };
  const removeData = (): void => rmSync(dataDir, { recursive: true, force: true });
  process.once('exit', removeData);
  let current: FerretdbProcess | undefined = await startFerretdbOnce(binary, log, place);
  let stopping: Promise<void> | undefined;
  return {
    uri: current.uri,
    kind: 'ferretdb',
    port,
    get isUp() {
      return current !== undefined;
    },
    async down(downOpts = {}) {
      const server = current;
      current = undefined;
      if (downOpts.graceful === true) await server?.stop();
      else await server?.kill();
    },
    async up() {
      if (current !== undefined) return;
      current = await startFerretdbOnce(binary, log, place);
    },
    stop() {
      stopping ??= (async () => {
        await current?.stop();
        current = undefined;
        process.removeListener('exit', removeData);
        await rm(dataDir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
}

/**
 * FerretDB on a fixed loopback port with a data folder that outlives it (`npm run dev-servers`):
 * the operator's shell keeps one `MONGODB_URI` across restarts, and seeded users stay. Throws
 * when FerretDB cannot be had (no binary and no Go toolchain), or the port is taken.
 */
export async function startFerretdbAt(place: { port: number; dataDir: string }, opts: StartMongoWireOptions = {}): Promise<MongoWire & { pid: number | undefined }> {
  const log = opts.log ?? (() => {});
  const binary = ensureFerretdbBinary(log);
  if (binary === undefined) throw new Error('FerretDB is not available: install Go (it is built once into .cache/, scripts/build-ferretdb.sh)');
  return startFerretdbOnce(binary, log, place);
}

/**
 * Returns `uri` with its database path replaced by `dbName`, keeping credentials, hosts and
 * query options. Done on the string because mongodb URIs may list several `host:port` pairs,
 * which WHATWG `URL` cannot parse.
 */
export function withDbName(uri: string, dbName: string): string {
  const schemeEnd = uri.indexOf('://');
  if (schemeEnd < 0) throw new Error(`not a mongodb URI: ${uri}`);
  const authorityStart = schemeEnd + 3;
  const queryStart = uri.indexOf('?', authorityStart);
  const beforeQuery = queryStart < 0 ? uri : uri.slice(0, queryStart);
  const query = queryStart < 0 ? '' : uri.slice(queryStart);
  // Credentials must be percent-encoded in a mongodb URI, so the first '/' after the scheme
  // ends the host list.
  const slash = beforeQuery.indexOf('/', authorityStart);
  const authority = slash < 0 ? beforeQuery : beforeQuery.slice(0, slash);
  return `${authority}/${encodeURIComponent(dbName)}${query}`;
}

// ---------------------------------------------------------------------------------------------
// FerretDB

/** Returns the binary path, building it first if needed; undefined when it cannot be had. */
function ensureFerretdbBinary(log: (line: string) => void): string | undefined {
  if (isExecutable(ferretdbBinary)) return ferretdbBinary;
  const go = spawnSync('go', ['version'], { encoding: 'utf8' });
  if (go.error !== undefined || go.status !== 0) {
    log('mongo: FerretDB binary missing and no Go toolchain on PATH');
    return undefined;
  }
  log(`mongo: building FerretDB (${buildScript}); this takes a few minutes the first time`);
  const started = Date.now();
  // Synchronous on purpose: nothing else can happen before the server exists, and inheriting
  // stdio shows Go's progress instead of a silent multi-minute pause.
  const build = spawnSync('bash', [buildScript], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (build.status !== 0 || !isExecutable(ferretdbBinary)) {
    log(`mongo: FerretDB build failed (exit ${String(build.status)})`);
    return undefined;
  }
  log(`mongo: FerretDB built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return ferretdbBinary;
}

function isExecutable(file: string): boolean {
  if (!existsSync(file)) return false;
  const r = spawnSync(file, ['--version'], { encoding: 'utf8' });
  return r.status === 0;
}

async function startFerretdb(binary: string, log: (line: string) => void): Promise<MongoWire> {
  // Between closing our probe socket and FerretDB binding the port another process may take
  // it; that shows up as an early exit with "address already in use", so retry a few times.
  const attempts = 3;
  let lastError: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      return await startFerretdbOnce(binary, log);
    } catch (err) {
      lastError = err;
      if (!(err instanceof FerretdbStartError) || !err.portInUse || attempt === attempts) throw err;
      log(`mongo: port taken before FerretDB could bind it, retrying (${attempt}/${attempts})`);
    }
  }
  throw lastError;
}

class FerretdbStartError extends Error {
  constructor(
    message: string,
    readonly portInUse: boolean,
  ) {
    super(message);
    this.name = 'FerretdbStartError';
  }
}

/** A fixed port and data folder, for a server that is stopped and started again (outage tests). */
interface FixedPlace {
  port: number;
  dataDir: string;
}

/** A FerretDB process we started; `kill()` ends it at once (SIGKILL), keeping a fixed place's data. */
type FerretdbProcess = MongoWire & { kill(): Promise<void>; pid: number | undefined };

async function startFerretdbOnce(binary: string, log: (line: string) => void, place?: FixedPlace): Promise<FerretdbProcess> {
  const started = Date.now();
  const port = place?.port ?? (await freeLoopbackPort());
  const dataDir = place?.dataDir ?? (await mkdtemp(path.join(os.tmpdir(), 'mailwheel-ferretdb-')));
  // A fixed place belongs to its caller, who removes the folder; a stop keeps the data.
  const ownsData = place === undefined;
  const uri = `mongodb://127.0.0.1:${port}/`;

  const args = [
    '--handler=sqlite',
    // The trailing slash matters: FerretDB's SQLite URL names a directory (one file per db).
    `--sqlite-url=file:${dataDir}/`,
    `--listen-addr=127.0.0.1:${port}`,
    // Telemetry would POST to beacon.ferretdb.com; this machine must not talk to the network.
    '--telemetry=disable',
    // '-' disables the debug HTTP listener (FerretDB main.go: `addr != "" && addr != "-"`);
    // its default 127.0.0.1:8088 would collide between concurrent servers. For profiling one
    // server (Go pprof at /debug/pprof), MAILWHEEL_FERRETDB_DEBUG_ADDR=127.0.0.1:PORT sets it.
    `--debug-addr=${process.env['MAILWHEEL_FERRETDB_DEBUG_ADDR'] ?? '-'}`,
    '--log-level=WARN',
    // state.json (instance UUID, telemetry decision) goes to the temp folder, not the cwd.
    `--state-dir=${dataDir}`,
  ];
  const child = spawn(binary, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group: a terminal Ctrl-C reaches the demo (which stops the daemon first and
    // the database last), not the database directly while the daemon is still draining into it.
    detached: true,
    // DO_NOT_TRACK is FerretDB's other telemetry opt-out; belt and braces with the flag above.
    env: { ...process.env, DO_NOT_TRACK: '1' },
  });
  const output = new OutputTail(OUTPUT_TAIL_BYTES);
  // Always drain both pipes: an unread pipe fills up and blocks the server's logging.
  child.stdout?.on('data', (chunk: Buffer) => output.push(chunk));
  child.stderr?.on('data', (chunk: Buffer) => output.push(chunk));

  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  let hasExited = false;
  void exited.then(() => {
    hasExited = true;
  });
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));

  // If the parent exits without calling stop() (a crash, an unhandled rejection in the demo),
  // do not leave an orphan server and its temp folder behind. Only synchronous work is
  // possible in an 'exit' handler, hence kill + rmSync.
  const onParentExit = (): void => {
    if (!hasExited) child.kill('SIGKILL');
    if (ownsData) rmSync(dataDir, { recursive: true, force: true });
  };
  process.once('exit', onParentExit);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      process.removeListener('exit', onParentExit);
      await terminate(child, exited, () => hasExited);
      if (ownsData) await rm(dataDir, { recursive: true, force: true });
      log(`mongo: FerretDB on port ${port} stopped`);
    })();
    return stopping;
  };

  try {
    await waitUntilReady(uri, port, exited, spawnError);
  } catch (err) {
    await stop();
    const text = output.text();
    const portInUse = /address already in use/i.test(text);
    const reason = err instanceof Error ? err.message : String(err);
    throw new FerretdbStartError(
      `FerretDB (${binary}) did not become ready on 127.0.0.1:${port}: ${reason}\n` +
        `--- FerretDB output (tail) ---\n${text || '(none)'}`,
      portInUse,
    );
  }

  log(`mongo: FerretDB ready at ${uri} in ${Date.now() - started} ms (pid ${String(child.pid)}, data ${dataDir})`);
  const kill = async (): Promise<void> => {
    process.removeListener('exit', onParentExit);
    if (!hasExited) child.kill('SIGKILL');
    await exited;
    log(`mongo: FerretDB on port ${port} killed`);
  };
  return { uri, kind: 'ferretdb', stop, kill, pid: child.pid };
}

/** Polls `ping` until it succeeds, the process exits, or READY_TIMEOUT_MS passes. */
async function waitUntilReady(
  uri: string,
  port: number,
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>,
  spawnError: Promise<Error>,
): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let failed: Error | undefined;
  void exited.then(({ code, signal }) => {
    failed ??= new Error(`process exited early (code ${String(code)}, signal ${String(signal)})`);
  });
  void spawnError.then((err) => {
    failed ??= new Error(`could not spawn: ${err.message}`);
  });

  let lastPingError = 'no attempt yet';
  while (Date.now() < deadline) {
    if (failed !== undefined) throw failed;
    // Probe the port with a plain TCP connect first: the driver's monitor waits ~500 ms
    // (minHeartbeatFrequencyMS) before retrying a refused connection, which would more than
    // double FerretDB's start time.
    if (!(await canConnect(port))) {
      lastPingError = 'connection refused';
      await sleep(25);
      continue;
    }
    // A short server selection timeout per attempt, so an early exit is noticed quickly
    // instead of waiting out the driver's default 30 s.
    const client = new MongoClient(uri, {
      serverSelectionTimeoutMS: 1_000,
      connectTimeoutMS: 1_000,
      directConnection: true,
    });
    try {
      await client.db('admin').command({ ping: 1 });
      return;
    } catch (err) {
      lastPingError = err instanceof Error ? err.message : String(err);
    } finally {
      await client.close().catch(() => {});
    }
    await sleep(100);
  }
  throw new Error(`ping did not succeed within ${READY_TIMEOUT_MS} ms (last error: ${lastPingError})`);
}

/** True when something accepts a TCP connection on 127.0.0.1:`port` (no protocol spoken). */
export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/** SIGTERM this child only; SIGKILL if it has not exited after STOP_GRACE_MS. */
async function terminate(
  child: ChildProcess,
  exited: Promise<unknown>,
  hasExited: () => boolean,
): Promise<void> {
  // A child that failed to spawn has no pid and never emits 'exit'.
  if (child.pid === undefined || hasExited()) return;
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const killed = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      if (!hasExited()) child.kill('SIGKILL');
      resolve();
    }, STOP_GRACE_MS);
  });
  await Promise.race([exited, killed]);
  clearTimeout(timer);
  await exited;
}

/** Binds port 0 on loopback, reads the port the kernel chose, and releases it. */
export async function freeLoopbackPort(): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('could not read the port of a loopback listener'));
        return;
      }
      const { port } = address;
      server.close(() => resolve(port));
    });
  });
}

/** Keeps the last `limit` bytes of a stream of output. */
class OutputTail {
  private chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly limit: number) {}
  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size > this.limit && this.chunks.length > 1) {
      const dropped = this.chunks.shift();
      if (dropped !== undefined) this.size -= dropped.length;
    }
  }
  text(): string {
    const all = Buffer.concat(this.chunks);
    return all.subarray(Math.max(0, all.length - this.limit)).toString('utf8').trim();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------------------------
// mongodb-memory-server (fallback)

async function startMemoryServer(log: (line: string) => void): Promise<MongoWire> {
  const started = Date.now();
  // Imported lazily: it is a devDependency, so `npm run demo` on a production-style install
  // with FerretDB available never needs it.
  const { MongoMemoryServer } = await import('mongodb-memory-server');
  // Prefer a `mongod` already on PATH over a download (docs/ARCHITECTURE.md); MONGOMS_SYSTEM_BINARY, if
  // set, still wins inside mongodb-memory-server.
  const systemBinary = findOnPath('mongod');
  const server = await MongoMemoryServer.create({
    instance: { ip: '127.0.0.1' },
    ...(systemBinary !== undefined ? { binary: { systemBinary } } : {}),
  });
  // getUri() returns `mongodb://127.0.0.1:PORT/`; normalise in case a future version adds a db.
  const uri = withDbName(server.getUri(), '');
  log(`mongo: mongodb-memory-server ready at ${uri} in ${Date.now() - started} ms`);
  let stopping: Promise<void> | undefined;
  return {
    uri,
    kind: 'memory-server',
    stop: () => {
      stopping ??= server.stop({ doCleanup: true, force: true }).then(() => undefined);
      return stopping;
    },
  };
}

function findOnPath(command: string): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, command);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}
