/**
 * RelaySet against two real SMTP servers: the weighted split, a dead relay's sends failing over
 * at once within the same send (it never had them), a message whose connection dropped after the
 * body was written NOT sent elsewhere at once (outcome unknown: a retryable failure that is not
 * "unreachable"), a 4xx reply returned as it is, every relay down giving the connection error as
 * before, and a recovered relay getting traffic again after its probe.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { classifySmtpError } from '../../src/adapters/smtp/classify.js';
import { RelaySet, type RelaySpec } from '../../src/adapters/smtp/relay-set.js';
import { TestSmtpServer } from '../helpers/smtp-server.js';

let servers: TestSmtpServer[] = [];
let set: RelaySet | undefined;

afterEach(async () => {
  set?.close();
  set = undefined;
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

async function start(weights: number[], opts: { threshold?: number; probeMaxMs?: number } = {}): Promise<{ a: TestSmtpServer; b: TestSmtpServer; relays: RelaySet }> {
  servers = [await TestSmtpServer.start(), await TestSmtpServer.start()];
  const specs: RelaySpec[] = servers.map((s, i) => ({ url: s.url, weight: weights[i] ?? 1, poolSize: 2, setting: `smtp.relays[${i}].url` }));
  set = new RelaySet(specs, {
    pool: { maxMessages: 100, connectionTimeoutMs: 5_000, socketTimeoutMs: 5_000, tls: { rejectUnauthorized: true } },
    threshold: opts.threshold ?? 3,
    probeMaxMs: opts.probeMaxMs ?? 1_000,
  });
  return { a: servers[0] as TestSmtpServer, b: servers[1] as TestSmtpServer, relays: set };
}

const send = (relays: RelaySet, i: number) => relays.send({ from: 'noreply@example.com', to: [`u${i}@example.test`] }, `Subject: ${i}\r\n\r\nbody ${i}\r\n`);

async function until(what: string, cond: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('RelaySet', () => {
  it('splits sends by weight (3:1) and names each relay by host:port', async () => {
    const { a, b, relays } = await start([3, 1]);
    for (let i = 0; i < 40; i += 4) await Promise.all([0, 1, 2, 3].map((k) => send(relays, i + k)));
    expect([a.messages.length, b.messages.length]).toEqual([30, 10]);
    expect(relays.status().map((r) => [r.relay, r.sent, r.up])).toEqual([
      [`127.0.0.1:${a.port}`, 30, true],
      [`127.0.0.1:${b.port}`, 10, true],
    ]);
  });

  it('a dead relay: every send goes through the other at once, nothing lost, the dead one marked down after the threshold', async () => {
    const { a, b, relays } = await start([1, 1], { threshold: 3 });
    await a.down();
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => send(relays, i)));
    expect(results.every((r) => r.relay === `127.0.0.1:${b.port}`)).toBe(true);
    expect(b.messages).toHaveLength(20);
    const [ra, rb] = relays.status();
    // The 20 sends start together, so all that picked A failed on it (at least the threshold).
    expect(ra).toMatchObject({ up: false, sent: 0, downs: 1 });
    expect(ra?.failures).toBeGreaterThanOrEqual(3);
    expect(rb).toMatchObject({ up: true, failures: 0, sent: 20 });

    // Back: the probe (1 s) finds it, and it gets its share again.
    await a.up();
    await until('relay A up again', () => relays.status()[0]?.up === true);
    await Promise.all(Array.from({ length: 10 }, (_, i) => send(relays, 100 + i)));
    expect(a.messages.length).toBeGreaterThanOrEqual(4);
  });

  it('a connection dropped after the body was written is not resent elsewhere at once (outcome unknown)', async () => {
    const { a, b, relays } = await start([1, 1]);
    a.setFault({ kind: 'drop' });
    const errors: unknown[] = [];
    // The first send goes to A (equal weights: A first), which takes the body and drops the connection.
    await send(relays, 1).catch((err: unknown) => errors.push(err));
    expect(a.dropped).toHaveLength(1);
    expect(b.messages).toHaveLength(0);
    expect(errors).toHaveLength(1);
    const classified = classifySmtpError(errors[0]);
    expect(classified).toMatchObject({ retryable: true, connection: false });
    expect(classified.message).toContain(`relay 127.0.0.1:${a.port} dropped the connection after the message was handed over`);
  });

  it('a 4xx reply is returned as it is, not failed over, and the relay stays up', async () => {
    const { a, b, relays } = await start([1, 1], { threshold: 1 });
    a.setFault({ kind: 'reply', code: 451 });
    const err = await send(relays, 1).catch((e: unknown) => e);
    expect(classifySmtpError(err)).toMatchObject({ retryable: true, smtpCode: 451, connection: false });
    expect(b.messages).toHaveLength(0);
    expect(relays.status()[0]).toMatchObject({ up: true, failures: 0 });
  });

  it('every relay down: the connection error comes back as before (the send queue breaker takes over); verify() is true once one answers', async () => {
    const { a, b, relays } = await start([1, 1], { threshold: 1 });
    await a.down();
    await b.down();
    const err = await send(relays, 1).catch((e: unknown) => e);
    expect(classifySmtpError(err).connection).toBe(true);
    expect(relays.status().map((r) => r.up)).toEqual([false, false]);
    expect(await relays.verify()).toBe(false);
    await b.up();
    expect(await relays.verify()).toBe(true);
    expect(relays.status().map((r) => r.up)).toEqual([false, true]);
    const answers = await relays.check();
    expect(answers.map((x) => [x.setting, x.ok])).toEqual([
      ['smtp.relays[0].url', false],
      ['smtp.relays[1].url', true],
    ]);
    expect(answers[0]?.relay).toBe(`127.0.0.1:${a.port}`);
    expect(['ECONNECTION', 'ESOCKET']).toContain(answers[0]?.code);
  });
});
