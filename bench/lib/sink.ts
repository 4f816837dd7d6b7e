/**
 * Postfix's `smtp-sink` on 127.0.0.1 (accepts every message and discards it) and `smtp-source`
 * runs against it. The sink is started on a free port and stopped by its pid; its running
 * counter (`-c`) tells how many messages it really received, and /proc tells its CPU time.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { ensurePostfixTools, SMTP_SINK, SMTP_SOURCE } from './postfix.js';

const CLOCK_TICKS = (() => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(r.stdout.trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

/** A port nobody listens on right now (the kernel's choice). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves once a connection to host:port receives an SMTP greeting. */
async function waitForGreeting(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      const done = (v: boolean) => {
        s.destroy();
        resolve(v);
      };
      s.setTimeout(500, () => done(false));
      s.once('data', (b: Buffer) => done(b.toString('latin1').startsWith('220')));
      s.once('error', () => done(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`smtp-sink did not greet on 127.0.0.1:${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export class SmtpSink {
  readonly port: number;
  readonly #child: ChildProcess;
  readonly #pid: number;
  #out = '';
  #exited: Promise<void>;
  /** Unparsed end of the counter output (a number may be split across chunks). */
  #pending = '';
  readonly #arrivals: number[] = [];

  private constructor(port: number, child: ChildProcess) {
    this.port = port;
    this.#child = child;
    this.#pid = child.pid ?? -1;
    child.stdout?.on('data', (b: Buffer) => {
      const text = b.toString('latin1');
      // Keep only the tail: the counter line is rewritten in place with CR for every message.
      this.#out = (this.#out + text).slice(-4096);
      this.#count(text);
    });
    child.stderr?.on('data', (b: Buffer) => {
      this.#out = (this.#out + b.toString('latin1')).slice(-4096);
    });
    this.#exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  /** Installs the Postfix tools if they are missing, starts a sink and says where it runs. */
  static async startWithTools(log: (line: string) => void): Promise<SmtpSink> {
    const { installed } = ensurePostfixTools(log);
    const sink = await SmtpSink.start();
    log(`smtp-sink pid ${sink.pid} on 127.0.0.1:${sink.port}${installed ? ' (postfix tools installed by this run)' : ''}`);
    return sink;
  }

  /** Starts `smtp-sink -c -u nobody 127.0.0.1:PORT 1024` on a free port. */
  static async start(): Promise<SmtpSink> {
    const port = await freePort();
    // -c: running counters (read back as "mesg=N"); -u: drop root after binding (required as
    // root); -m: simultaneous connections served, well above the largest pool measured.
    const args = ['-c', ...(process.getuid?.() === 0 ? ['-u', 'nobody'] : []), '-m', '512', `127.0.0.1:${port}`, '1024'];
    const child = spawn(SMTP_SINK, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const sink = new SmtpSink(port, child);
    try {
      await waitForGreeting(port, 5_000);
    } catch (err) {
      await sink.stop();
      throw new Error(`${(err as Error).message}; output: ${sink.#out}`);
    }
    return sink;
  }

  /**
   * Turns the counter output into arrival times. smtp-sink rewrites its counter line for every
   * message and the pipe delivers it at once (checked: one chunk per message, within a
   * millisecond), so the time a chunk is read is the time the sink saw the message's final ".".
   * The reading process must not be busy sending, or the times lag: the suites that need exact
   * per-second figures send from a child process.
   */
  #count(text: string): void {
    const buf = this.#pending + text;
    let end = 0;
    for (const m of buf.matchAll(/mesg=(\d+)(?=\D)/g)) {
      const n = Number(m[1]);
      const now = performance.now();
      for (let k = this.#arrivals.length; k < n; k++) this.#arrivals.push(now);
      end = (m.index ?? 0) + m[0].length;
    }
    this.#pending = buf.slice(end).slice(-64);
  }

  /** performance.now() of every message the sink has received, in order. */
  get arrivals(): readonly number[] {
    return this.#arrivals;
  }

  get pid(): number {
    return this.#pid;
  }

  /** Messages the sink has received ("." seen) since it started. */
  received(): number {
    const all = [...this.#out.matchAll(/mesg=(\d+)/g)];
    const last = all[all.length - 1];
    return last?.[1] === undefined ? 0 : Number(last[1]);
  }

  /** CPU time (user + system) the sink has used, in ms. */
  cpuMs(): number {
    try {
      const stat = readFileSync(`/proc/${this.#pid}/stat`, 'utf8');
      // Fields after the command name (which is in parentheses and may contain spaces).
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return ((Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS) * 1000;
    } catch {
      return Number.NaN;
    }
  }

  /** Stops the sink by its pid (SIGTERM, then SIGKILL after 2 s) and waits for it to exit. */
  async stop(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    process.kill(this.#pid, 'SIGTERM');
    const timer = setTimeout(() => {
      if (this.#child.exitCode === null && this.#child.signalCode === null) process.kill(this.#pid, 'SIGKILL');
    }, 2_000);
    await this.#exited;
    clearTimeout(timer);
  }
}

export interface SourceRun {
  seconds: number;
  /** CPU time of smtp-source itself (user + system), from the shell's `times`. */
  cpuMs: number;
  exitCode: number | null;
  output: string;
}

/**
 * Runs `smtp-source -s SESSIONS -m COUNT -d -F FILE` against the sink: SESSIONS parallel SMTP
 * sessions, each keeping its connection (-d), sending the pre-formatted message in FILE.
 */
export async function runSmtpSource(opts: { port: number; sessions: number; messages: number; file: string }): Promise<SourceRun> {
  const args = ['-s', String(opts.sessions), '-m', String(opts.messages), '-d', '-F', opts.file];
  args.push('-f', 'noreply@example.com', '-t', 'user@example.test', '-M', 'localhost', `127.0.0.1:${opts.port}`);
  // `times` after the command prints the CPU time of the shell's children: smtp-source's.
  const script = '"$@"; rc=$?; times; exit $rc';
  const t0 = performance.now();
  const child = spawn('bash', ['-c', script, 'bash', SMTP_SOURCE, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (b: Buffer) => (output += b.toString('latin1')));
  child.stderr.on('data', (b: Buffer) => (output += b.toString('latin1')));
  const exitCode = await new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const seconds = (performance.now() - t0) / 1000;
  const times = [...output.matchAll(/(\d+)m([\d.]+)s\s+(\d+)m([\d.]+)s/g)];
  const children = times[1];
  const cpuMs = children === undefined ? Number.NaN : (Number(children[1]) * 60 + Number(children[2]) + Number(children[3]) * 60 + Number(children[4])) * 1000;
  return { seconds, cpuMs, exitCode, output };
}
