/**
 * Child processes for the suites that measure the daemon as it runs in production: the built CLI
 * (`dist/cli/main.js`, rebuilt once by the runner) with a config file, its output collected, and
 * its memory sampled from /proc while it runs. A child is only ever stopped by its own pid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const repoRoot = resolve(import.meta.dirname, '..', '..');
export const cliEntry = join(repoRoot, 'dist', 'cli', 'main.js');

/** Writes a mailwheel config file (merged over config/default.json by the daemon) and returns its path. */
export function writeConfig(config: Record<string, unknown>): string {
  const file = join(mkdtempSync(join(tmpdir(), 'mailwheel-bench-')), 'config.json');
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

/** Resident set size and its high-water mark (VmHWM) of a live process, in MiB; undefined once it is gone. */
export function rssOf(pid: number): { rssMiB: number; hwmMiB: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
    return { rssMiB: kb('VmRSS') / 1024, hwmMiB: kb('VmHWM') / 1024 };
  } catch {
    return undefined;
  }
}

export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  seconds: number;
  /** Highest VmHWM seen (the kernel's own peak, so a spike between samples is not missed). */
  peakRssMiB: number;
  /** [seconds since spawn, RSS MiB], one per sample. */
  rssSamples: Array<[number, number]>;
}

export interface Watched {
  child: ChildProcess;
  pid: number;
  /** Wall-clock ms (performance.now()) at spawn. */
  startedAt: number;
  readonly stdout: string;
  readonly stderr: string;
  /** Resolves when stderr or stdout contains `text` (rejects after `timeoutMs` or on exit). */
  waitFor(text: string | RegExp, timeoutMs?: number): Promise<void>;
  /** Sends a signal to this child only. */
  kill(signal?: NodeJS.Signals): void;
  done: Promise<Finished>;
}

/** Runs `node dist/cli/main.js ...args`, sampling its RSS every `sampleMs`. */
/**
 * The environment the daemon runs with in production (scripts/mailwheel.service): benchmarks of
 * the daemon's memory use the same, so the report measures what an install runs.
 */
export const DAEMON_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };

export function spawnMailwheel(args: string[], env: Record<string, string> = {}, sampleMs = 500): Watched {
  return spawnWatched(process.execPath, [cliEntry, ...args], { ...DAEMON_ENV, ...env, LOG_LEVEL: env['LOG_LEVEL'] ?? 'warn' }, sampleMs);
}

export function spawnWatched(cmd: string, args: string[], env: Record<string, string> = {}, sampleMs = 500): Watched {
  const startedAt = performance.now();
  const child = spawn(cmd, args, { cwd: repoRoot, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const pid = child.pid ?? -1;
  let stdout = '';
  let stderr = '';
  const listeners = new Set<() => void>();
  child.stdout?.on('data', (b: Buffer) => {
    stdout += b.toString();
    for (const l of listeners) l();
  });
  child.stderr?.on('data', (b: Buffer) => {
    stderr = (stderr + b.toString()).slice(-200_000);
    for (const l of listeners) l();
  });
  let peak = 0;
  const samples: Array<[number, number]> = [];
  const sample = () => {
    const r = rssOf(pid);
    // A process that is exiting (zombie) has no VmRSS/VmHWM lines: NaN would poison the peak.
    if (r === undefined || !Number.isFinite(r.rssMiB) || !Number.isFinite(r.hwmMiB)) return;
    peak = Math.max(peak, r.hwmMiB);
    samples.push([Math.round(performance.now() - startedAt) / 1000, Math.round(r.rssMiB * 10) / 10]);
  };
  const timer = setInterval(sample, sampleMs);
  // The last sample is taken when the process has closed its pipes (usually just before exit).
  child.stdout?.once('end', sample);
  const done = new Promise<Finished>((res) =>
    child.on('close', (code, signal) => {
      clearInterval(timer);
      res({ code, signal, stdout, stderr, seconds: (performance.now() - startedAt) / 1000, peakRssMiB: Math.round(peak * 10) / 10, rssSamples: samples });
    }),
  );
  let exited = false;
  void done.then(() => (exited = true));
  return {
    child,
    pid,
    startedAt,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    done,
    kill(signal = 'SIGTERM') {
      if (!exited && child.exitCode === null && child.signalCode === null) process.kill(pid, signal);
    },
    waitFor(text, timeoutMs = 120_000) {
      const has = () => (typeof text === 'string' ? stderr.includes(text) || stdout.includes(text) : text.test(stderr) || text.test(stdout));
      if (has()) return Promise.resolve();
      return new Promise((res, rej) => {
        const check = () => {
          if (!has()) return;
          cleanup();
          res();
        };
        const timer2 = setTimeout(() => {
          cleanup();
          rej(new Error(`timed out waiting for ${String(text)}; stderr tail:\n${stderr.slice(-2000)}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer2);
          listeners.delete(check);
        };
        listeners.add(check);
        void done.then(() => {
          if (has()) return;
          cleanup();
          rej(new Error(`process ${pid} exited before printing ${String(text)}; stderr tail:\n${stderr.slice(-2000)}`));
        });
      });
    },
  };
}
