/**
 * `/readyz` of the running daemon (the real CLI process) reflects SMTP reachability: against an
 * SMTP port nothing listens on it answers 503 with `smtp: false`; against the real test SMTP
 * server, 200. (It used to say `smtp: true` whatever the handshake answered.)
 */
import { createServer } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawnCli, writeTestConfig, type CliProcess } from '../helpers/cli.js';
import { testDb, type TestDb } from '../helpers/db.js';
import { TestSmtpServer } from '../helpers/smtp-server.js';

let db: TestDb;
let smtp: TestSmtpServer;
let config: string;
let daemon: CliProcess | undefined;

/** A loopback port nothing listens on: bound by the OS, then closed. */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function startDaemon(smtpUrl: string): Promise<number> {
  daemon = spawnCli(['start'], { MONGODB_URI: db.uri, SMTP_URL: smtpUrl, MAILWHEEL_CONFIG: config, LOG_LEVEL: 'info' });
  await daemon.waitForLog('mailwheel started', 90_000);
  const port = Number(/"port":(\d+),"msg":"http listening"/.exec(daemon.stderr)?.[1]);
  expect(port).toBeGreaterThan(0);
  return port;
}

/** Polls /readyz until `want(status)` holds or the deadline passes; returns the last answer. */
async function readyzUntil(port: number, want: (status: number) => boolean, timeoutMs = 60_000): Promise<{ status: number; body: Record<string, unknown> }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await fetch(`http://127.0.0.1:${port}/readyz`);
    const last = { status: res.status, body: (await res.json()) as Record<string, unknown> };
    if (want(last.status) || Date.now() > deadline) return last;
    await new Promise((r) => setTimeout(r, 250));
  }
}

beforeAll(async () => {
  db = await testDb('readiness');
  smtp = await TestSmtpServer.start();
  config = writeTestConfig({ http: { enabled: true, host: '127.0.0.1', port: 0 }, rate: { perSecond: null, perDay: null } });
});

afterEach(async () => {
  if (daemon && daemon.child.exitCode === null) {
    daemon.child.kill('SIGTERM');
    await daemon.done;
  }
  daemon = undefined;
});

afterAll(async () => {
  await smtp?.close();
  await db?.cleanup();
});

describe('/readyz and SMTP', () => {
  it('answers 503 with smtp:false while nothing listens on the SMTP port', async () => {
    const port = await startDaemon(`smtp://127.0.0.1:${await deadPort()}`);
    const r = await readyzUntil(port, (s) => s === 503);
    expect(r.status).toBe(503);
    expect(r.body).toMatchObject({ ok: false, smtp: false, mongodb: true, synced: true });
  });

  it('answers 200 with smtp:true against a live SMTP server', async () => {
    const port = await startDaemon(smtp.url);
    const r = await readyzUntil(port, (s) => s === 200);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ ok: true, smtp: true, mongodb: true, synced: true, breaker: 'closed' });
  });
});
