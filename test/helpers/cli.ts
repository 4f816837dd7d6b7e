/**
 * Runs the real `mailwheel` CLI in a child process, for the process tier: exit codes, signals,
 * stdout. The CLI is the build of the current source that the run's globalSetup made
 * (test/helpers/cli-build.ts): what ships, started without tsx's per-process compile.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { testCliEntry } from './cli-build.js';

export const repoRoot = resolve(import.meta.dirname, '..', '..');

/** `node <the test build's cli/main.js>`: argv for spawn, after process.execPath. */
export function cliArgv(args: string[]): string[] {
  // A run without the globalSetup (vitest.config.ts `shared`) has no build: say so, not ENOENT.
  if (!existsSync(testCliEntry)) throw new Error(`${testCliEntry} is missing: run the tests through vitest with its config (globalSetup test/helpers/cli-build.ts builds it)`);
  return [testCliEntry, ...args];
}

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
  const child = spawn(process.execPath, cliArgv(args), {
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
