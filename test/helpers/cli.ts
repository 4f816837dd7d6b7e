/**
 * Runs the real `mailwheel` CLI in a child process (through tsx, so the test exercises the
 * current source), for the process tier: exit codes, signals, stdout.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const repoRoot = resolve(import.meta.dirname, '..', '..');
const entry = join(repoRoot, 'src', 'cli', 'main.ts');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliProcess {
  child: ChildProcess;
  /** Output so far. */
  readonly stdout: string;
  readonly stderr: string;
  /** Resolves when stderr (the log) contains `text`, rejects after `timeoutMs`. */
  waitForLog(text: string | RegExp, timeoutMs?: number): Promise<void>;
  done: Promise<CliResult>;
}

export function spawnCli(args: string[], env: Record<string, string> = {}): CliProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', entry, ...args], {
    cwd: repoRoot,
    env: { ...process.env, LOG_LEVEL: process.env['LOG_LEVEL'] ?? 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const listeners = new Set<() => void>();
  child.stdout?.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr?.on('data', (b: Buffer) => {
    stderr += b.toString();
    for (const l of listeners) l();
  });
  const done = new Promise<CliResult>((res) => child.on('close', (code, signal) => res({ code, signal, stdout, stderr })));
  return {
    child,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    done,
    waitForLog(text, timeoutMs = 60_000) {
      const has = () => (typeof text === 'string' ? stderr.includes(text) : text.test(stderr));
      if (has()) return Promise.resolve();
      return new Promise((res, rej) => {
        const check = () => {
          if (has()) {
            cleanup();
            res();
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          rej(new Error(`timed out waiting for ${String(text)} in the log; stderr tail:\n${stderr.slice(-2000)}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        void done.then(() => {
          if (!has()) {
            cleanup();
            rej(new Error(`process exited before logging ${String(text)}; stderr tail:\n${stderr.slice(-2000)}`));
          }
        });
      });
    },
  };
}

export function runCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return spawnCli(args, env).done;
}

/** Writes a config file for a test into a fresh temp folder and returns its path. */
export function writeTestConfig(config: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), 'mailwheel-test-'));
  const file = join(dir, 'config.json');
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}
