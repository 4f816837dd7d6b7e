/**
 * `npm run dev-servers` as a process: it starts FerretDB and the mail capture on the ports it is
 * given, prints the `export` lines, both answer (a ping, a message stored and announced), and
 * SIGTERM stops both: exit 0, both ports closed, the FerretDB process gone.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MongoClient } from 'mongodb';
import nodemailer from 'nodemailer';
import { afterAll, expect, it } from 'vitest';
import { canConnect, freeLoopbackPort } from '../../scripts/lib/mongo-server.js';
import { repoRoot } from '../helpers/cli.js';

const dataDir = mkdtempSync(join(tmpdir(), 'mailwheel-dev-servers-'));

afterAll(() => {
  rmSync(dataDir, { recursive: true, force: true });
});

/** Resolves once `read()` matches, polling the output the process has written so far. */
async function until<T>(read: () => T | undefined, what: string, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = read();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

it('starts both servers on the given ports, prints the export lines, and stops both on SIGTERM', { timeout: 120_000 }, async () => {
  const [mongoPort, smtpPort] = [await freeLoopbackPort(), await freeLoopbackPort()];
  const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'scripts', 'dev-servers.ts'), '--mongo-port', String(mongoPort), '--smtp-port', String(smtpPort), '--data', dataDir], {
    cwd: repoRoot,
    env: { ...process.env, MONGODB_URI: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  try {
    const exports = await until(() => {
      const mongo = /^export MONGODB_URI='([^']+)'$/m.exec(stdout)?.[1];
      const smtp = /^export SMTP_URL='([^']+)'$/m.exec(stdout)?.[1];
      return mongo !== undefined && smtp !== undefined ? { mongo, smtp } : undefined;
    }, `the export lines; stdout: ${stdout} stderr: ${stderr}`, 90_000);
    expect(exports).toEqual({ mongo: `mongodb://127.0.0.1:${mongoPort}/mailwheel_dev`, smtp: `smtp://127.0.0.1:${smtpPort}` });
    const ferretPid = Number(/FerretDB, pid (\d+)/.exec(stdout)?.[1]);
    expect(alive(ferretPid)).toBe(true);

    const client = new MongoClient(exports.mongo, { serverSelectionTimeoutMS: 10_000 });
    try {
      expect(await client.db().command({ ping: 1 })).toMatchObject({ ok: 1 });
      await client.db().collection('probe').insertOne({ x: 1 });
    } finally {
      await client.close();
    }

    const transport = nodemailer.createTransport({ url: exports.smtp } as never);
    await transport.sendMail({ from: 'a@example.test', to: 'newcomer@example.test', subject: 'hello dev', text: 'hi' });
    transport.close();
    await until(() => (/mail #1 to <newcomer@example\.test> "hello dev"/.test(stderr) ? true : undefined), 'the mail line', 30_000);
    expect(readdirSync(join(dataDir, 'mail'))).toEqual(['00001-newcomer@example.test.eml']);

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(await canConnect(mongoPort)).toBe(false);
    expect(await canConnect(smtpPort)).toBe(false);
    await until(() => (alive(ferretPid) ? undefined : true), 'FerretDB to exit', 10_000);
    // The data stays for the next start.
    expect(existsSync(join(dataDir, 'ferretdb'))).toBe(true);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});
