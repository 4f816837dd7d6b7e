/**
 * VERP on the wire: with `feedback.verp.domain` set, the real SMTP server sees each message's
 * MAIL FROM as its signed return path (which readVerp verifies back to the Message-ID's digest),
 * while the From header stays `smtp.from`; without it MAIL FROM is the From address, as before.
 * The MIME builder for `preview`/dry-run (app/messages.ts) gives the same envelope.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodemailerTransport } from '../../src/adapters/smtp/nodemailer-transport.js';
import { buildMessage } from '../../src/app/messages.js';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { scheduledKey } from '../../src/core/delivery-key.js';
import { messageIdFor } from '../../src/core/message.js';
import { compileTemplates } from '../../src/core/templates.js';
import type { Delivery } from '../../src/core/types.js';
import { readVerp } from '../../src/core/verp.js';
import { TestSmtpServer } from '../helpers/smtp-server.js';

const loaded = loadConfig({ env: {} });
const verp = { domain: 'bounce.example.com', localPart: 'bounces', secret: 'verp-secret-for-the-envelope-test' };

function configFor(url: string, withVerp: boolean): Config {
  const c = loaded.config;
  return {
    ...c,
    smtp: { ...c.smtp, url, poolSize: 1, connectionTimeoutMs: 2_000, socketTimeoutMs: 5_000 },
    feedback: { ...c.feedback, verp: withVerp ? verp : { ...c.feedback.verp, domain: null, secret: null } },
  };
}

const delivery = (i: number): Delivery => ({
  key: scheduledKey(`u${i}`, '09:00', '2026-01-05'),
  kind: 'scheduled',
  userId: `u${i}`,
  email: `u${i}@example.test`,
  name: `User ${i}`,
  slot: '09:00',
  localDate: '2026-01-05',
  timezone: 'UTC',
  dueAt: 0,
});

describe('VERP return path as the envelope sender', () => {
  let smtp: TestSmtpServer;
  beforeAll(async () => {
    smtp = await TestSmtpServer.start();
  });
  afterAll(async () => {
    await smtp.close();
  });

  it('MAIL FROM is each message’s own VERP address, verified back to its Message-ID digest; From is unchanged', async () => {
    smtp.reset();
    const transport = new NodemailerTransport(configFor(smtp.url, true));
    try {
      const ds = [0, 1, 2, 3].map(delivery);
      const broadcast: Delivery = { key: 'b:bc1:u9', kind: 'broadcast', userId: 'u9', email: 'u9@example.test', name: 'Bo', broadcastId: 'bc1', dueAt: 0, content: compileTemplates({ subject: 'Hi', text: 'News' }) };
      for (const d of [...ds, broadcast]) await transport.send(d);
      const received = await smtp.waitFor(5, 10_000);
      const froms = new Set<string>();
      for (const d of [...ds, broadcast]) {
        const m = received.find((r) => r.to[0] === d.email);
        expect(m, d.email).toBeDefined();
        if (m === undefined) continue;
        const digest = /^<([0-9a-f]{32})@/.exec(messageIdFor(d.key, 'example.com'))?.[1];
        expect(m.from).toMatch(/^bounces\+[0-9a-f]{32}\.[a-z2-7]{10}@bounce\.example\.com$/);
        expect(readVerp(m.from, verp)).toEqual({ digest });
        expect(readVerp(m.from, { ...verp, secret: 'some-other-secret-value' })).toEqual({ refusal: 'bad-signature' });
        expect(m.headers.get('from')).toBe(loaded.config.smtp.from);
        expect(m.messageId).toBe(messageIdFor(d.key, 'example.com'));
        froms.add(m.from);
      }
      expect(froms.size).toBe(5);
    } finally {
      await transport.close();
    }
  });

  it('without feedback.verp.domain MAIL FROM stays the From address', async () => {
    smtp.reset();
    const transport = new NodemailerTransport(configFor(smtp.url, false));
    try {
      await transport.send(delivery(7));
      const [m] = await smtp.waitFor(1, 10_000);
      expect(m?.from).toBe('noreply@example.com');
    } finally {
      await transport.close();
    }
  });

  it('buildMessage (preview, dry-run) gives the same envelope as the transport', () => {
    const d = delivery(3);
    const digest = /^<([0-9a-f]{32})@/.exec(messageIdFor(d.key, 'example.com'))?.[1];
    const withVerp = buildMessage(loaded.templates.scheduled, { from: loaded.config.smtp.from, verp }, d);
    expect(readVerp(withVerp.envelope.from, verp)).toEqual({ digest });
    const without = buildMessage(loaded.templates.scheduled, { from: loaded.config.smtp.from }, d);
    expect(without.envelope.from).toBe('noreply@example.com');
  });
});
