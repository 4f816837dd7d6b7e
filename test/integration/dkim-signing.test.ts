/**
 * DKIM through the real send path: NodemailerTransport signs with an RSA-2048 and an Ed25519
 * key side by side, sends 1,000 messages to a real SMTP server, and every message as the server
 * received it is verified by dkimpy (Python, Debian python3-dkim + python3-nacl; .ci/run installs
 * them), an implementation independent of the signing libraries (nodemailer for RSA, mailauth for
 * Ed25519). The TXT records come from the keys generated here (no DNS). Tampered copies must fail,
 * so the verifier can say no. Keys are made with node:crypto into a temp folder at run time.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodemailerTransport } from '../../src/adapters/smtp/nodemailer-transport.js';
import { loadDkimKeys, type DkimKey } from '../../src/config/dkim-keys.js';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { scheduledKey } from '../../src/core/delivery-key.js';
import { compileTemplates } from '../../src/core/templates.js';
import type { Delivery } from '../../src/core/types.js';
import { dkimpyVerify } from '../helpers/dkim-verify.js';
import { TestSmtpServer, type ReceivedMessage } from '../helpers/smtp-server.js';

const COUNT = 1_000;

const loaded = loadConfig({ env: {} });
let dir: string;
let keys: DkimKey[];

/** dkimpy's verdict per message: one boolean per DKIM-Signature field, in header order. */
function verify(messages: readonly string[]): boolean[][] {
  return dkimpyVerify(Object.fromEntries(keys.map((k) => [k.recordName, k.txt])), messages);
}

/** Which algorithm each DKIM-Signature field of `raw` names, in header order. */
function algorithms(raw: string): string[] {
  const head = raw.slice(0, raw.indexOf('\r\n\r\n')).replace(/\r\n[ \t]+/g, ' ');
  return head.split('\r\n').filter((l) => /^dkim-signature:/i.test(l)).map((l) => /\ba=([\w-]+)/.exec(l)?.[1] ?? '?');
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'mailwheel-dkim-'));
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ed = generateKeyPairSync('ed25519');
  writeFileSync(join(dir, 'rsa.pem'), rsa.privateKey.export({ type: 'pkcs1', format: 'pem' }));
  writeFileSync(join(dir, 'ed.pem'), ed.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  keys = loadDkimKeys(
    [
      { domain: 'example.com', selector: 'mw-rsa', keyFile: 'rsa.pem', headers: null },
      { domain: 'example.com', selector: 'mw-ed', keyFile: 'ed.pem', headers: null },
    ],
    dir,
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('DKIM signing on the send path, verified by dkimpy', () => {
  let smtp: TestSmtpServer;
  let transport: NodemailerTransport;
  const content = compileTemplates({ subject: 'News for {{name}}', text: 'Hello {{name}},\n\nBig news today.\n', html: '<p>Hello {{name}}, Ünïcödé 日本語</p>' }, 'broadcast');

  beforeAll(async () => {
    smtp = await TestSmtpServer.start();
    const config: Config = {
      ...loaded.config,
      smtp: { ...loaded.config.smtp, url: smtp.url, poolSize: 4, connectionTimeoutMs: 5_000, socketTimeoutMs: 30_000 },
      broadcasts: { ...loaded.config.broadcasts, feedbackId: '{broadcast}:news:mailwheel' },
    };
    transport = new NodemailerTransport(config, {
      dkim: keys,
      headersFor: (d) => ({ 'List-Unsubscribe': `<mailto:unsubscribe@example.com?subject=${d.userId}>`, 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' }),
    });
  });
  afterAll(async () => {
    await transport.close();
    await smtp.close();
  });

  it(`${COUNT} messages, each with an RSA-2048 and an Ed25519 signature: all ${COUNT} pass for each, a tampered copy fails`, async () => {
    const names = ['Ada', 'Zoë Ångström', '李雷', 'O\'Brien "the" <x>', 'A name long enough that the To header has to be folded over more than one line'];
    const ds: Delivery[] = Array.from({ length: COUNT }, (_, i) =>
      i % 2 === 0
        ? { key: scheduledKey(`u${i}`, '09:00', '2026-01-05'), kind: 'scheduled', userId: `u${i}`, email: `u${i}@example.test`, name: names[i % names.length], slot: '09:00', localDate: '2026-01-05', timezone: 'UTC', dueAt: 0 }
        : { key: `b:b1:u${i}`, kind: 'broadcast', userId: `u${i}`, email: `u${i}@example.test`, name: names[i % names.length], broadcastId: 'b1', dueAt: 0, content },
    );
    await Promise.all(ds.map((d) => transport.send(d)));
    const received: ReceivedMessage[] = await smtp.waitFor(COUNT, 120_000);
    expect(received).toHaveLength(COUNT);
    for (const m of received) {
      expect(algorithms(m.raw)).toEqual(['rsa-sha256', 'ed25519-sha256']);
      // Hygiene on the wire: Feedback-ID on broadcasts only, no Precedence header at all.
      const isBroadcast = Number(/^u(\d+)@/.exec(m.to[0] ?? '')?.[1]) % 2 === 1;
      const head = m.raw.slice(0, m.raw.indexOf('\r\n\r\n'));
      expect(/\r\nFeedback-ID: b1:news:mailwheel\r\n/.test(head), m.to[0]).toBe(isBroadcast);
      expect(head).not.toMatch(/^Precedence:/im);
    }
    expect(received.filter((m) => m.raw.includes('\r\nFeedback-ID: ')).length).toBe(COUNT / 2);

    const verdicts = verify(received.map((m) => m.raw));
    const rsaPass = verdicts.filter((v) => v[0] === true).length;
    const edPass = verdicts.filter((v) => v[1] === true).length;
    expect({ rsaPass, edPass }).toEqual({ rsaPass: COUNT, edPass: COUNT });

    // The signatures cover the headers that matter and the body: change one, both fail.
    const sample = received.find((m) => m.raw.includes('\r\nFeedback-ID: '))?.raw ?? '';
    expect(sample).toMatch(/\r\nFeedback-ID: b1:news:mailwheel\r\n/);
    const tampered = [
      sample.replace(/\r\nSubject: [^\r]*/, '\r\nSubject: Something else'),
      sample.replace('Big news today.', 'Big news tomorrow.'),
      sample.replace(/\r\nList-Unsubscribe: [^\r]*/, '\r\nList-Unsubscribe: <mailto:evil@example.net>'),
      sample.replace(/\r\nFeedback-ID: [^\r]*/, '\r\nFeedback-ID: other:news:mailwheel'),
    ];
    for (const t of tampered) expect(t).not.toBe(sample);
    expect(verify([sample, ...tampered])).toEqual([[true, true], [false, false], [false, false], [false, false], [false, false]]);
  }, 240_000);
});
