/**
 * Postfix's test tools for the smtp suite: `smtp-sink` (a fast SMTP server that accepts and
 * discards) and `smtp-source` (its C load generator). They come with the Debian package
 * `postfix` and need no running mail system, so the package is installed without ever starting
 * Postfix itself: services are blocked with policy-rc.d while apt runs, and debconf is told
 * "No configuration", which leaves Postfix without a main.cf it could start with.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

export const SMTP_SINK = '/usr/sbin/smtp-sink';
export const SMTP_SOURCE = '/usr/sbin/smtp-source';
const POLICY_RC = '/usr/sbin/policy-rc.d';
const MASTER_PID = '/var/spool/postfix/pid/master.pid';

function have(): boolean {
  return existsSync(SMTP_SINK) && existsSync(SMTP_SOURCE);
}

function run(cmd: string, args: string[], input?: string): { status: number | null; output: string } {
  const r = spawnSync(cmd, args, {
    input,
    encoding: 'utf8',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive', DEBCONF_NONINTERACTIVE_SEEN: 'true' },
    maxBuffer: 64 * 1024 * 1024,
  });
  return { status: r.status, output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

/** The pid of a running Postfix master process, if there is one. */
export function runningPostfixMaster(): number | undefined {
  if (!existsSync(MASTER_PID)) return undefined;
  const pid = Number(readFileSync(MASTER_PID, 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'master' ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Makes sure smtp-sink and smtp-source exist, installing `postfix` if needed (root only).
 * Throws with the apt output when that is impossible.
 */
export function ensurePostfixTools(log: (line: string) => void): { installed: boolean } {
  if (have()) return { installed: false };
  if (process.getuid?.() !== 0) throw new Error(`${SMTP_SINK} is missing and installing postfix needs root: run "apt-get install postfix" first`);
  log('postfix tools missing: installing the Debian package "postfix" (the mail system is not started)');
  const ownPolicy = !existsSync(POLICY_RC);
  if (ownPolicy) {
    // Exit 101 = "action forbidden": invoke-rc.d starts no service while this file exists.
    writeFileSync(POLICY_RC, '#!/bin/sh\nexit 101\n');
    chmodSync(POLICY_RC, 0o755);
  }
  try {
    run('debconf-set-selections', [], 'postfix postfix/main_mailer_type select No configuration\npostfix postfix/mailname string localhost\n');
    const args = ['install', '-y', '--no-install-recommends', 'postfix'];
    let r = run('apt-get', args);
    if (r.status !== 0) {
      log('apt-get install failed; running apt-get update and trying once more');
      run('apt-get', ['update']);
      r = run('apt-get', args);
    }
    if (r.status !== 0 || !have()) throw new Error(`apt-get install postfix failed (exit ${String(r.status)}):\n${r.output.slice(-4000)}`);
  } finally {
    if (ownPolicy) rmSync(POLICY_RC, { force: true });
  }
  const master = runningPostfixMaster();
  if (master !== undefined) log(`warning: a Postfix master process is running (pid ${master}); the benchmark does not use it`);
  return { installed: true };
}
