/**
 * An SMTP server that records when each message arrived and for whom, for the multi-daemon
 * acceptance tests (test/cli/cluster*.test.ts) and the `scale` bench: the figures the issue asks
 * for are measured AT THE SERVER (every sliding second <= the limit, every due user exactly once).
 *
 * It runs in a child process of its own (`node --import tsx` this file), so the arrival times do
 * not depend on the load of the test or bench process that polls the daemons: the child does
 * nothing but accept mail and print one line per message. Even so, on a busy machine the child can
 * read a message late (its event loop was not scheduled), which pushes it into a later second and
 * makes a sliding second look fuller than it was. So each arrival carries two times:
 *   - `at`: when the child read the message's final "." (an upper bound of the real arrival);
 *   - `lb`: the time of the child's tick timer two ticks before that read (a lower bound: the data
 *     cannot have arrived before the loop last polled, and a 2 ms timer marks the polls).
 * scripts/lib/arrivals.ts counts a message in a window only when it certainly fell in it.
 *
 * Accepts any sender, recipient and AUTH; no TLS; 127.0.0.1 only. Stopped by its pid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export interface Arrival {
  /** Epoch ms (sub-ms) when the child read the end of the message. */
  at: number;
  /** Epoch ms no later than the real arrival (see the module comment). */
  lb: number;
  /** First envelope recipient. */
  rcpt: string;
}

export interface ArrivalCapture {
  port: number;
  url: string;
  pid: number;
  /** Every message accepted so far, in the order the child read them. */
  readonly arrivals: readonly Arrival[];
  /** Messages per recipient. */
  countByRecipient(): Map<string, number>;
  /** Stops the child (SIGTERM by pid, SIGKILL after 3 s). Idempotent. */
  stop(): Promise<void>;
}

const thisFile = fileURLToPath(import.meta.url);
const repoRoot = path.resolve(path.dirname(thisFile), '..', '..');
const CHILD_FLAG = 'MAILWHEEL_ARRIVAL_CAPTURE_CHILD';

/** Starts the capture child on a free loopback port and resolves once it listens. */
export async function startArrivalCapture(): Promise<ArrivalCapture> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', thisFile], {
    cwd: repoRoot,
    env: { ...process.env, [CHILD_FLAG]: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const pid = child.pid ?? -1;
  const arrivals: Arrival[] = [];
  let pending = '';
  let stderr = '';
  let resolvePort: (port: number) => void = () => undefined;
  const portP = new Promise<number>((res) => (resolvePort = res));
  child.stdout?.on('data', (b: Buffer) => {
    const lines = (pending + b.toString('utf8')).split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      if (line.startsWith('A ')) {
        const [, at, lb, rcpt] = line.split(' ');
        arrivals.push({ at: Number(at), lb: Number(lb), rcpt: rcpt ?? '' });
      } else if (line.startsWith('L ')) resolvePort(Number(line.slice(2)));
    }
  });
  child.stderr?.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-4000)));
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  const port = await Promise.race([
    portP,
    exited.then(() => Promise.reject(new Error(`arrival capture exited before listening: ${stderr}`))),
    new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`arrival capture did not listen within 60 s: ${stderr}`)), 60_000).unref()),
  ]);
  let stopping: Promise<void> | undefined;
  return {
    port,
    url: `smtp://127.0.0.1:${port}`,
    pid,
    arrivals,
    countByRecipient() {
      const counts = new Map<string, number>();
      for (const a of arrivals) counts.set(a.rcpt, (counts.get(a.rcpt) ?? 0) + 1);
      return counts;
    },
    stop() {
      stopping ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        process.kill(pid, 'SIGTERM');
        const t = setTimeout(() => {
          if (child.exitCode === null && child.signalCode === null) process.kill(pid, 'SIGKILL');
        }, 3_000);
        await exited;
        clearTimeout(t);
      })();
      return stopping;
    },
  };
}

/** The child: an smtp-server that prints `A <at> <lb> <rcpt>` per message and `L <port>` once listening. */
async function runChild(): Promise<void> {
  const { SMTPServer } = await import('smtp-server');
  const now = (): number => performance.timeOrigin + performance.now();
  let tick1 = now();
  let tick0 = tick1;
  setInterval(() => {
    tick0 = tick1;
    tick1 = now();
  }, 2);
  let out: string[] = [];
  const flush = (): void => {
    if (out.length === 0) return;
    process.stdout.write(out.join(''));
    out = [];
  };
  setInterval(flush, 20);
  const server = new SMTPServer({
    disableReverseLookup: true,
    authOptional: true,
    allowInsecureAuth: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    // Pools of several daemons at once; smtp-server's default is 100.
    maxClients: 1000,
    onData(stream, session, callback) {
      stream.on('data', () => undefined);
      stream.once('end', () => {
        const at = now();
        const rcpt = session.envelope.rcptTo[0]?.address ?? '';
        out.push(`A ${at.toFixed(3)} ${Math.min(tick0, at).toFixed(3)} ${rcpt}\n`);
        callback();
      });
    },
  });
  server.on('error', () => undefined);
  server.listen(0, '127.0.0.1', () => {
    const address = server.server.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    process.stdout.write(`L ${port}\n`);
  });
  process.once('SIGTERM', () => {
    flush();
    process.exit(0);
  });
}

if (process.env[CHILD_FLAG] === '1' && process.argv[1] !== undefined && path.resolve(process.argv[1]) === thisFile) void runChild();
