/**
 * `config check --connect` with several relays (`smtp.relays`): every relay is greeted, a failing
 * one is named by its setting and host:port, never by its credentials, and one failure is exit 69
 * even when the others answer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, writeTestConfig } from '../helpers/cli.js';
import { testDb, type TestDb } from '../helpers/db.js';
import { TestSmtpServer } from '../helpers/smtp-server.js';

const EX_UNAVAILABLE = 69;

interface CheckDoc {
  ok: boolean;
  checks?: Array<{ name: string; ok: boolean; detail: string }>;
  config: { smtp: { relays: Array<{ url: string }> } };
}

describe('config check --connect with several relays', () => {
  let db: TestDb;
  let up: TestSmtpServer;
  let dead: TestSmtpServer;

  beforeAll(async () => {
    db = await testDb('configcheck_relays');
    up = await TestSmtpServer.start();
    dead = await TestSmtpServer.start();
    await dead.down();
  });
  afterAll(async () => {
    await up?.close();
    await dead?.close();
    await db?.cleanup();
  });

  it('greets each relay; names the dead one by setting and host:port, no credentials; exit 69', { timeout: 60_000 }, async () => {
    const config = writeTestConfig({
      smtp: {
        relays: [
          { url: `smtp://key:${encodeURIComponent('Up/Secret#1')}@127.0.0.1:${up.port}`, weight: 2, poolSize: null },
          { url: `smtp://key:${encodeURIComponent('Dead/Secret#2')}@127.0.0.1:${dead.port}`, weight: 1, poolSize: 2 },
        ],
      },
    });
    const env = { LOG_LEVEL: 'warn', MONGODB_URI: db.uri, SMTP_URL: 'smtp://127.0.0.1:1' };
    const r = await runCli(['config', 'check', '--connect', '--json', '--timeout', '3000', '--config', config], env);
    expect(r.code, r.stderr).toBe(EX_UNAVAILABLE);
    const doc = JSON.parse(r.stdout) as CheckDoc;
    // smtp.url (a dead port here) is not used when relays are configured: two smtp checks, one per relay.
    expect(doc.checks?.filter((c) => c.name === 'smtp').map((c) => c.ok)).toEqual([true, false]);
    expect(doc.checks?.find((c) => c.name === 'smtp' && c.ok)?.detail).toContain(`127.0.0.1:${up.port} greets and accepts the credentials`);
    expect(r.stderr).toMatch(new RegExp(`^mailwheel: smtp\\.relays\\[1\\]\\.url: cannot use 127\\.0\\.0\\.1:${dead.port}: .*ECONNREFUSED`, 'm'));
    expect(doc.config.smtp.relays.map((x) => x.url)).toEqual([`smtp://***:***@127.0.0.1:${up.port}`, `smtp://***:***@127.0.0.1:${dead.port}`]);
    expect(r.stdout + r.stderr).not.toMatch(/Secret|Up%2F|Dead%2F/);

    await dead.up();
    const ok = await runCli(['config', 'check', '--connect', '--json', '--config', config], env);
    expect(ok.code, ok.stderr).toBe(0);
    expect((JSON.parse(ok.stdout) as CheckDoc).checks?.filter((c) => c.name === 'smtp').map((c) => c.ok)).toEqual([true, true]);
  });
});
