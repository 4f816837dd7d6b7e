/**
 * TLS on the SMTP side: STARTTLS with certificate verification on by default. A server with a
 * certificate nobody vouches for is refused (and the failure counts as a connection problem, so
 * it is retried, never "sent in clear"); naming its CA in `smtp.ca` makes it trusted; and the
 * message really went over TLS.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { NodemailerTransport } from '../../src/adapters/smtp/nodemailer-transport.js';
import { classifySmtpError } from '../../src/adapters/smtp/classify.js';
import { loadConfig } from '../../src/config/load.js';
import type { Delivery } from '../../src/core/types.js';
import { repoRoot, writeTestConfig } from '../helpers/cli.js';
import { TestSmtpServer } from '../helpers/smtp-server.js';

const fixtures = join(repoRoot, 'test', 'fixtures', 'tls');
const key = readFileSync(join(fixtures, 'key.pem'));
const cert = readFileSync(join(fixtures, 'cert.pem'));
const delivery: Delivery = { key: 's:t1:09:00:2027-01-15', kind: 'scheduled', userId: 't1', email: 't1@example.test', name: 'T', slot: '09:00', localDate: '2027-01-15', timezone: 'UTC', dueAt: 0 };

let smtp: TestSmtpServer | undefined;
let transport: NodemailerTransport | undefined;
afterEach(async () => {
  await transport?.close();
  await smtp?.close();
});

function transportFor(smtpConfig: Record<string, unknown>): NodemailerTransport {
  const loaded = loadConfig({ file: writeTestConfig({ smtp: { ...smtpConfig, connectionTimeoutMs: 5000 } }), env: { SMTP_URL: smtp?.url ?? '' } });
  return new NodemailerTransport(loaded.config);
}

it('refuses a STARTTLS server whose certificate is not trusted (verification on by default)', async () => {
  smtp = await TestSmtpServer.start({ tls: { key, cert } });
  transport = transportFor({});
  const err = await transport.send(delivery).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeDefined();
  const classified = classifySmtpError(err);
  expect(classified.retryable).toBe(true);
  expect(classified.connection).toBe(true);
  expect(smtp.messages).toHaveLength(0);
});

it('trusts the server once its CA is configured, and sends over TLS', async () => {
  smtp = await TestSmtpServer.start({ tls: { key, cert } });
  transport = transportFor({ ca: join(fixtures, 'cert.pem') });
  await transport.send(delivery);
  expect(smtp.messages).toHaveLength(1);
  expect(smtp.messages[0]?.to).toEqual(['t1@example.test']);
  expect(smtp.messages[0]?.secure).toBe(true);
});
