/**
 * SendQueue.withdraw (used when a broadcast is paused or cancelled): deliveries not yet handed to
 * SMTP come back and are never sent; sends in flight finish; other deliveries are untouched; a
 * delivery waiting out a backoff or waiting at the per-second gate comes back too.
 */
import { afterEach, expect, it, vi } from 'vitest';
import { SendQueue } from '../../src/adapters/smtp/send-queue.js';
import type { Delivery, DeliveryKind } from '../../src/core/types.js';
import type { MailTransport, Outcome } from '../../src/ports/index.js';
import { silentLogger } from '../helpers/fakes.js';

const log = silentLogger();
const until = (check: () => void): Promise<void> => vi.waitFor(check, { timeout: 5000, interval: 2 });

function delivery(key: string, kind: DeliveryKind = 'broadcast'): Delivery {
  return { key, kind, userId: key, email: `${key}@example.test`, name: undefined, dueAt: 0, ...(kind === 'broadcast' ? { broadcastId: key.split('-')[0] } : {}) };
}

/** Sends block until released (per key), so the test decides what is in flight. */
class GatedTransport implements MailTransport {
  readonly started: string[] = [];
  readonly #gates = new Map<string, () => void>();
  failOnce = new Set<string>();
  async send(d: Delivery): Promise<{ messageId: string; response: string }> {
    this.started.push(d.key);
    if (this.failOnce.delete(d.key)) throw Object.assign(new Error('451 try later'), { responseCode: 451, response: '451 try later' });
    await new Promise<void>((r) => this.#gates.set(d.key, r));
    return { messageId: `<${d.key}>`, response: '250 OK' };
  }
  finish(key: string): void {
    this.#gates.get(key)?.();
  }
  finishAll(): void {
    for (const r of this.#gates.values()) r();
  }
  async close(): Promise<void> {}
}

const queues: SendQueue[] = [];
afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.stop(0)));
});

function setup(concurrency: number, rate: { perSecond?: number } = {}): { queue: SendQueue; transport: GatedTransport; outcomes: Outcome[] } {
  const transport = new GatedTransport();
  const outcomes: Outcome[] = [];
  const queue = new SendQueue(transport, { concurrency, rate, maxAttempts: 3, backoffBaseMs: 10_000, backoffMaxMs: 10_000 }, { onOutcome: (o) => void outcomes.push(o) }, log);
  queues.push(queue);
  return { queue, transport, outcomes };
}

it('takes back matching deliveries not yet sent; in-flight ones finish; others are untouched', async () => {
  const { queue, transport, outcomes } = setup(2);
  for (let i = 0; i < 10; i++) queue.submit(delivery(`bA-${i}`));
  for (let i = 0; i < 3; i++) queue.submit(delivery(`bB-${i}`));
  await until(() => expect(transport.started).toHaveLength(2));
  const inFlight = [...transport.started];
  const back = queue.withdraw((d) => d.broadcastId === 'bA');
  expect(back.map((d) => d.key).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `bA-${i}`).filter((k) => !inFlight.includes(k)).sort());
  // Let everything still queued go through.
  const idle = queue.idle();
  let settled = false;
  void idle.then(() => (settled = true));
  while (!settled) {
    transport.finishAll();
    await new Promise((r) => setTimeout(r, 5));
  }
  // Sent: the two in flight at the withdraw, and broadcast B; nothing withdrawn.
  expect(transport.started.sort()).toEqual([...inFlight, 'bB-0', 'bB-1', 'bB-2'].sort());
  expect(outcomes.map((o) => o.delivery.key).sort()).toEqual(transport.started.sort());
});

it('takes back a delivery waiting out a retry backoff, which is then never retried', async () => {
  const { queue, transport, outcomes } = setup(1);
  transport.failOnce.add('bA-0');
  queue.submit(delivery('bA-0'));
  await until(() => expect(queue.stats.retried).toBe(1));
  expect(queue.withdraw(() => true).map((d) => d.key)).toEqual(['bA-0']);
  await queue.idle();
  expect(transport.started).toEqual(['bA-0']);
  expect(outcomes).toEqual([]);
});

it('a delivery held at the per-second gate when withdrawn is not sent afterwards', async () => {
  const { queue, transport } = setup(4, { perSecond: 2 });
  for (let i = 0; i < 4; i++) queue.submit(delivery(`bA-${i}`));
  await until(() => expect(transport.started).toHaveLength(2));
  transport.finishAll();
  // Grants come every ~525 ms (2/s); the third is granted ~525 ms after the second and then
  // waits at the gate until a second has passed since the first two completed.
  await new Promise((r) => setTimeout(r, 700));
  const back = queue.withdraw(() => true);
  expect(back).toHaveLength(2);
  await new Promise((r) => setTimeout(r, 1300));
  expect(transport.started).toHaveLength(2);
  await queue.idle();
});
