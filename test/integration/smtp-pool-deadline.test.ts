/**
 * A send that the server never answers ends at the pool's deadline (smtp-pool.ts
 * `sendDeadlineMs`), whatever nodemailer's idle socket timeout does: the worker is freed, the
 * connection is closed, and the error is a timeout (transient, so the send queue retries it).
 * The server here takes the data and never answers the final "."; nodemailer's socket timeout is
 * set far beyond the test so that only the deadline (on a fake clock) can end the send.
 */
import { SMTPServer } from 'smtp-server';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { sendDeadlineMs, SmtpPool } from '../../src/adapters/smtp/smtp-pool.js';
import { classifySmtpError } from '../../src/adapters/smtp/classify.js';
import { FakeClock } from '../helpers/fake-clock.js';

let server: SMTPServer | undefined;

afterEach(async () => {
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
});

/** An SMTP server on 127.0.0.1 that reads each message and never answers it. */
async function silentAfterData(): Promise<{ port: number; closed: () => number; received: () => number }> {
  let closed = 0;
  let received = 0;
  server = new SMTPServer({
    disableReverseLookup: true,
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream) {
      stream.on('data', () => undefined);
      stream.once('end', () => received++); // and never call back: no answer to the final "."
    },
    onClose() {
      closed++;
    },
  });
  await new Promise<void>((r) => server?.listen(0, '127.0.0.1', () => r()));
  const address = server.server.address();
  return { port: typeof address === 'object' && address !== null ? address.port : 0, closed: () => closed, received: () => received };
}

describe('SmtpPool send deadline', () => {
  it('a message the server never answers fails as a timeout at connectionTimeoutMs + socketTimeoutMs, and its connection is closed', async () => {
    const srv = await silentAfterData();
    const clock = new FakeClock(0);
    const opts = { url: `smtp://127.0.0.1:${srv.port}`, size: 1, maxMessages: 100, connectionTimeoutMs: 10_000, socketTimeoutMs: 600_000, tls: { rejectUnauthorized: false }, clock };
    const pool = new SmtpPool(opts);
    let settled: unknown;
    const sending = pool.send({ from: 'a@example.test', to: ['b@example.test'] }, 'Subject: x\r\n\r\nbody\r\n').then(
      () => (settled = 'sent'),
      (err: unknown) => (settled = err),
    );
    await vi.waitFor(() => expect(srv.received()).toBe(1), { timeout: 30_000, interval: 20 });
    // Just short of the deadline the send is still waiting for the answer.
    await clock.advanceAsync(sendDeadlineMs(opts) - 1);
    expect(settled).toBeUndefined();
    await clock.advanceAsync(1);
    await sending;
    expect(settled).toBeInstanceOf(Error);
    expect((settled as { code?: string }).code).toBe('ETIMEDOUT');
    expect(classifySmtpError(settled).retryable).toBe(true);
    expect(pool.stats.sendDeadlines).toBe(1);
    // The connection is closed (the server sees it go) and not reused.
    await vi.waitFor(() => expect(srv.closed()).toBe(1), { timeout: 30_000, interval: 20 });
    expect(pool.size).toBe(0);
    pool.close();
  });
});
