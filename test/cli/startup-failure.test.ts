/**
 * A failed start ends the process at once, non-zero, with one line for the operator (no stack
 * trace), after closing what it opened. It used to print an EADDRINUSE stack and stay alive (a
 * healthy-looking service under systemd that sends nothing).
 */
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnCli, writeTestConfig, type CliResult } from '../helpers/cli.js';
import { testDb, type TestDb } from '../helpers/db.js';

let db: TestDb;
let blocker: Server;
let takenPort: number;

/** The process result, or a failure if it is still running after `timeoutMs` (it is then killed). */
async function exitsWithin(args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<CliResult> {
  const p = spawnCli(args, { MONGODB_URI: db.uri, SMTP_URL: 'smtp://127.0.0.1:9', LOG_LEVEL: 'info', ...env });
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
  const r = await Promise.race([p.done, timedOut]);
  clearTimeout(timer);
  if (r === 'timeout') {
    p.child.kill('SIGKILL');
    await p.done;
    throw new Error(`still running after ${timeoutMs} ms; stderr tail:\n${p.stderr.slice(-1500)}`);
  }
  return r;
}

/** stderr without the JSON log lines: what the operator is told. */
function messages(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('{'));
}

beforeAll(async () => {
  db = await testDb('startup_failure');
  blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  takenPort = (blocker.address() as { port: number }).port;
});

afterAll(async () => {
  await new Promise<void>((resolve) => blocker?.close(() => resolve()));
  await db?.cleanup();
});

describe.concurrent('a failed start exits at once with one line', () => {
  it('start with the HTTP port taken: exit 1, one line naming the port and "in use"', async () => {
    const config = writeTestConfig({ http: { enabled: true, host: '127.0.0.1', port: takenPort } });
    const r = await exitsWithin(['start'], { MAILWHEEL_CONFIG: config });
    expect(r.code, r.stderr).toBe(1);
    const lines = messages(r.stderr);
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^mailwheel: .*127\\.0\\.0\\.1:${takenPort}.*in use`));
    expect(r.stderr).not.toMatch(/^\s+at /m);
    expect(r.stderr).not.toContain('mailwheel started');
  });

  it('start with an unreadable smtp.ca (found after MongoDB is connected): exit 78, one line naming the field', async () => {
    const config = writeTestConfig({ http: { enabled: false }, smtp: { ca: '/nonexistent/mailwheel-ca.pem' } });
    const r = await exitsWithin(['start'], { MAILWHEEL_CONFIG: config });
    expect(r.code, r.stderr).toBe(78);
    const lines = messages(r.stderr);
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^mailwheel: config: smtp\.ca: cannot read/);
  });

  it('start with an SMTP URL that passes the pattern but cannot be parsed: exits, one line naming smtp.url, no password', async () => {
    const config = writeTestConfig({ http: { enabled: false } });
    const r = await exitsWithin(['start'], { MAILWHEEL_CONFIG: config, SMTP_URL: 'smtp://user:pa55word@exa mple.test:25' });
    expect(r.code, r.stderr).toBe(78);
    const lines = messages(r.stderr);
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toContain('smtp.url');
    expect(r.stderr).not.toContain('pa55word');
  });

  it('MAILWHEEL_DEBUG=1 adds the stack', async () => {
    const config = writeTestConfig({ http: { enabled: true, host: '127.0.0.1', port: takenPort } });
    const r = await exitsWithin(['start'], { MAILWHEEL_CONFIG: config, MAILWHEEL_DEBUG: '1' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^\s+at /m);
  });
});
