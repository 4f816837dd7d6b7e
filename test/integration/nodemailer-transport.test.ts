/**
 * NodemailerTransport against the real SMTP server (smtp-server, in-process): raw MIME from the
 * MimeBuilder with an explicit envelope, as the server receives it; a private CA from `smtp.ca`
 * for STARTTLS with certificate checks on; a broadcast delivery rendered from the content it
 * carries, and refused when it carries none.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodemailerTransport } from '../../src/adapters/smtp/nodemailer-transport.js';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { scheduledKey } from '../../src/core/delivery-key.js';
import { messageIdFor, renderDelivery } from '../../src/core/message.js';
import { compileTemplates } from '../../src/core/templates.js';
import type { Delivery } from '../../src/core/types.js';
import { ConfigError, ErrorCodes } from '../../src/errors.js';
import { TestSmtpServer } from '../helpers/smtp-server.js';

const loaded = loadConfig({ env: {} });
const dirs: string[] = [];

function configFor(url: string, smtp: Partial<Config['smtp']> = {}): Config {
  return {
    ...loaded.config,
    smtp: { ...loaded.config.smtp, url, poolSize: 2, connectionTimeoutMs: 2_000, socketTimeoutMs: 5_000, ...smtp },
  };
}

function delivery(i: number, name: string | undefined): Delivery {
  return {
    key: scheduledKey(`u${i}`, '09:00', '2026-01-05'),
    kind: 'scheduled',
    userId: `u${i}`,
    email: `u${i}@example.test`,
    name,
    slot: '09:00',
    localDate: '2026-01-05',
    timezone: 'UTC',
    dueAt: 0,
  };
}

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('NodemailerTransport: raw MIME through the pool', () => {
  let smtp: TestSmtpServer;
  let transport: NodemailerTransport;

  beforeAll(async () => {
    smtp = await TestSmtpServer.start();
    transport = new NodemailerTransport(configFor(smtp.url), {
      headersFor: (d) => ({ 'List-Unsubscribe': `<mailto:unsubscribe@example.com?subject=${d.userId}>` }),
    });
  });
  afterAll(async () => {
    await transport.close();
    await transport.close(); // a second close is harmless
    await smtp.close();
  });

  it('delivers each message with the envelope, headers and decoded content of its delivery', async () => {
    const names = ['Ada', 'Zoë Ångström', '李雷', '<script>x</script>', undefined];
    const ds = names.map((n, i) => delivery(i, n));
    const results = await Promise.all(ds.map((d) => transport.send(d)));
    const received = await smtp.waitFor(ds.length, 5_000);
    for (const [i, d] of ds.entries()) {
      expect(results[i]?.messageId).toBe(messageIdFor(d.key, 'example.com'));
      expect(results[i]?.response).toMatch(/^250/);
      const m = received.find((r) => r.to[0] === d.email);
      expect(m, d.email).toBeDefined();
      if (m === undefined) continue;
      expect(m.from).toBe('noreply@example.com');
      expect(m.to).toEqual([d.email]);
      expect(m.messageId).toBe(messageIdFor(d.key, 'example.com'));
      expect(m.headers.get('x-mailwheel-key')).toBe(d.key);
      expect(m.headers.get('list-unsubscribe')).toBe(`<mailto:unsubscribe@example.com?subject=${d.userId}>`);
      const expected = renderDelivery(d, loaded.templates.scheduled, 'example.com');
      const parsed = await simpleParser(m.raw, { skipTextToHtml: true });
      expect(parsed.subject).toBe(expected.subject);
      expect(parsed.text?.replace(/\r\n/g, '\n')).toBe(expected.text);
      expect(typeof parsed.html === 'string' ? parsed.html.replace(/\r\n/g, '\n') : parsed.html).toBe(expected.html);
    }
    expect(smtp.connections).toBeLessThanOrEqual(2);
  });

  it('refuses a broadcast delivery that carries no content, then renders the content it carries', async () => {
    const d: Delivery = { key: 'b:bc1:u9', kind: 'broadcast', userId: 'u9', email: 'u9@example.test', name: 'Bo', broadcastId: 'bc1', dueAt: 0 };
    await expect(transport.send(d)).rejects.toMatchObject({ code: ErrorCodes.NOT_FOUND });
    const content = compileTemplates({ subject: 'News for {{name}}', text: 'Big news, {{name}}.' });
    smtp.reset();
    await transport.send({ ...d, content });
    const [m] = await smtp.waitFor(1, 5_000);
    expect(m?.subject).toBe('News for Bo');
    await expect(transport.send(d)).rejects.toMatchObject({ code: ErrorCodes.NOT_FOUND });
  });

  it('two broadcasts sending at once each render their own content', async () => {
    const a = compileTemplates({ subject: 'A for {{name}}', text: 'Alpha text, {{name}}.', html: '<p>Alpha, {{name}}</p>' }, 'broadcast');
    const b = compileTemplates({ subject: 'B for {{name}}', text: 'Beta text, {{name}}.' }, 'broadcast');
    const of = (bid: string, content: typeof a, i: number): Delivery => ({ key: `b:${bid}:u${i}`, kind: 'broadcast', userId: `u${i}`, email: `${bid}-u${i}@example.test`, name: `N${i}`, broadcastId: bid, dueAt: 0, content });
    const ds = Array.from({ length: 6 }, (_, i) => [of('ba', a, i), of('bb', b, i)]).flat();
    smtp.reset();
    await Promise.all(ds.map((d) => transport.send(d)));
    const received = await smtp.waitFor(ds.length, 5_000);
    for (const d of ds) {
      const m = received.find((r) => r.to[0] === d.email);
      expect(m, d.email).toBeDefined();
      const expected = renderDelivery(d, d.broadcastId === 'ba' ? a : b, 'example.com');
      const parsed = await simpleParser(m?.raw ?? '', { skipTextToHtml: true });
      expect(parsed.subject).toBe(expected.subject);
      // A text-only message gets a final line break (SMTP DATA ends on one): compare without it.
      expect(parsed.text?.replace(/\r\n/g, '\n').trimEnd()).toBe(expected.text.trimEnd());
      expect(typeof parsed.html === 'string' ? parsed.html.replace(/\r\n/g, '\n') : parsed.html).toBe(expected.html ?? false);
    }
    expect(received.filter((r) => r.subject.startsWith('A for')).length).toBe(6);
    expect(received.filter((r) => r.subject.startsWith('B for')).length).toBe(6);
  });
});

const hasOpenssl = (() => {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/** A private CA and a server certificate for 127.0.0.1 signed by it, made with openssl. */
function makePki(): { dir: string; ca: string; key: Buffer; cert: Buffer } {
  const dir = mkdtempSync(join(tmpdir(), 'mailwheel-pki-'));
  dirs.push(dir);
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=mailwheel test CA');
  run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'ext.cnf');
  return { dir, ca: join(dir, 'ca.pem'), key: readFileSync(join(dir, 'server.key')), cert: readFileSync(join(dir, 'server.pem')) };
}

describe('NodemailerTransport: smtp.ca', () => {
  it.skipIf(!hasOpenssl)('trusts a private CA for STARTTLS with certificate checks on, and only with it', async () => {
    const pki = makePki();
    const smtp = await TestSmtpServer.start({ tls: { key: pki.key, cert: pki.cert } });
    const withCa = new NodemailerTransport(configFor(smtp.url, { ca: pki.ca, rejectUnauthorized: true }));
    const withoutCa = new NodemailerTransport(configFor(smtp.url, { ca: null, rejectUnauthorized: true }));
    try {
      await withCa.send(delivery(1, 'Ada'));
      expect(smtp.messages).toHaveLength(1);
      await expect(withoutCa.send(delivery(2, 'Bo'))).rejects.toThrow(/certificate/i);
      expect(smtp.messages).toHaveLength(1);
    } finally {
      await withCa.close();
      await withoutCa.close();
      await smtp.close();
    }
  });

  it('an unreadable or non-PEM smtp.ca is a ConfigError naming smtp.ca, at construction', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mailwheel-ca-'));
    dirs.push(dir);
    const missing = join(dir, 'nope.pem');
    const notPem = join(dir, 'not.pem');
    writeFileSync(notPem, 'hello');
    for (const ca of [missing, notPem, dir]) {
      try {
        new NodemailerTransport(configFor('smtp://127.0.0.1:9', { ca }));
        expect.unreachable(`smtp.ca ${ca} must be refused`);
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        expect((err as ConfigError).field).toBe('smtp.ca');
        expect((err as ConfigError).message).toContain(ca);
      }
    }
  });
});
