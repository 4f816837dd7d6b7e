/**
 * SendQueue over a fake MailTransport (no network): retries of transient failures, no retry of
 * permanent ones, the concurrency bound, priorities, and what a stop hands back.
 */
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SendQueue, type SendQueueOptions } from '../../src/adapters/smtp/send-queue.js';
import type { Delivery, DeliveryKind } from '../../src/core/types.js';
import { ErrorCodes, type SmtpError } from '../../src/errors.js';
import type { MailTransport, Outcome } from '../../src/ports/index.js';
import { mwError } from '../helpers/errors.js';
import { silentLogger } from '../helpers/fakes.js';
import { FakeClock, flushMicrotasks } from '../helpers/fake-clock.js';

const log = silentLogger();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function delivery(key: string, kind: DeliveryKind = 'scheduled'): Delivery {
  return { key, kind, userId: key, email: `${key}@example.test`, name: undefined, dueAt: 0 };
}

type Behaviour = (d: Delivery, attempt: number) => Promise<void>;

/** Records every send; `behaviour` decides how each attempt ends (default: quick success). */
class FakeTransport implements MailTransport {
  readonly calls: string[] = [];
  readonly attempts = new Map<string, number>();
  current = 0;
  maxConcurrent = 0;
  behaviour: Behaviour = async () => {};

  async send(d: Delivery): Promise<{ messageId: string; response: string }> {
    const attempt = (this.attempts.get(d.key) ?? 0) + 1;
    this.attempts.set(d.key, attempt);
    this.calls.push(d.key);
    this.current++;
    this.maxConcurrent = Math.max(this.maxConcurrent, this.current);
    try {
      await this.behaviour(d, attempt);
    } finally {
      this.current--;
    }
    return { messageId: `<${d.key}@test>`, response: '250 OK' };
  }

  async close(): Promise<void> {}
}

/** What nodemailer rejects with after an SMTP reply. */
function smtpReply(code: number): Error {
  return Object.assign(new Error(`${code} reply`), { responseCode: code, response: `${code} reply`, code: 'EMESSAGE' });
}

interface Harness {
  queue: SendQueue;
  transport: FakeTransport;
  outcomes: Outcome[];
  retries: Array<{ key: string; attempt: number; delayMs: number; error: SmtpError }>;
}

const queues: SendQueue[] = [];
afterEach(async () => {
  // Stop leftovers so their limiters and timers do not outlive the test.
  await Promise.all(queues.splice(0).map((q) => q.stop(0)));
});

function setup(opts: Partial<SendQueueOptions> = {}, onOutcome?: (o: Outcome) => void | Promise<void>): Harness {
  const transport = new FakeTransport();
  const outcomes: Outcome[] = [];
  const retries: Harness['retries'] = [];
  const queue = new SendQueue(
    transport,
    { concurrency: 4, rate: {}, maxAttempts: 3, backoffBaseMs: 2, backoffMaxMs: 8, ...opts },
    {
      onOutcome: async (o) => {
        outcomes.push(o);
        await onOutcome?.(o);
      },
      onRetry: (d, attempt, delayMs, error) => {
        retries.push({ key: d.key, attempt, delayMs, error });
      },
    },
    log,
  );
  queues.push(queue);
  return { queue, transport, outcomes, retries };
}

/** Resolves when `check` passes (polling), so tests wait on states rather than on fixed sleeps. */
const until = (check: () => void): Promise<void> => vi.waitFor(check, { timeout: 5000, interval: 2 });

describe('SendQueue: sending and retries', () => {
  it('sends every submitted delivery once and reports each as sent', async () => {
    const { queue, transport, outcomes } = setup();
    const keys = Array.from({ length: 25 }, (_, i) => `k${i}`);
    for (const k of keys) queue.submit(delivery(k));
    await queue.idle();
    expect([...transport.calls].sort()).toEqual([...keys].sort());
    expect(outcomes.map((o) => o.delivery.key).sort()).toEqual([...keys].sort());
    for (const o of outcomes) expect(o).toMatchObject({ status: 'sent', attempts: 1 });
    expect(queue.waiting).toBe(0);
    expect(queue.inFlight).toBe(0);
    expect(queue.stats).toMatchObject({ submitted: 25, sent: 25, failed: 0, retried: 0 });
  });

  it('retries a transient 451 up to maxAttempts, reporting each retry, then fails', async () => {
    const { queue, transport, outcomes, retries } = setup({ maxAttempts: 4, backoffBaseMs: 2, backoffMaxMs: 5 });
    transport.behaviour = async () => {
      throw smtpReply(451);
    };
    queue.submit(delivery('t'));
    await queue.idle();
    expect(transport.calls).toEqual(['t', 't', 't', 't']);
    expect(retries.map((r) => r.attempt)).toEqual([1, 2, 3]);
    // Full jitter below min(max, base * 2^(attempt-1)): ceilings 2, 4, 5.
    const ceilings = [2, 4, 5];
    retries.forEach((r, i) => {
      expect(r.delayMs).toBeGreaterThanOrEqual(0);
      expect(r.delayMs).toBeLessThan(ceilings[i] ?? 0);
      expect(r.error.smtpCode).toBe(451);
      expect(r.error.retryable).toBe(true);
    });
    expect(outcomes.length).toBe(1);
    expect(outcomes[0]).toMatchObject({ status: 'failed', attempts: 4 });
    expect(outcomes[0]?.error?.smtpCode).toBe(451);
    expect(queue.stats).toMatchObject({ sent: 0, failed: 1, retried: 3 });
  });

  it('a transient failure followed by success ends as sent on the later attempt', async () => {
    const { queue, transport, outcomes, retries } = setup({ maxAttempts: 5 });
    transport.behaviour = async (_d, attempt) => {
      if (attempt <= 2) throw Object.assign(new Error('connection lost'), { code: 'ECONNRESET' });
    };
    queue.submit(delivery('x'));
    await queue.idle();
    expect(transport.calls).toEqual(['x', 'x', 'x']);
    expect(retries.map((r) => r.attempt)).toEqual([1, 2]);
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]).toMatchObject({ status: 'sent', attempts: 3 });
  });

  it('a permanent 550 is tried exactly once and fails with smtpCode 550', async () => {
    const { queue, transport, outcomes, retries } = setup({ maxAttempts: 5 });
    transport.behaviour = async (d) => {
      if (d.key === 'bounce') throw smtpReply(550);
    };
    queue.submit(delivery('bounce'));
    queue.submit(delivery('fine'));
    await queue.idle();
    expect(transport.calls.filter((k) => k === 'bounce')).toEqual(['bounce']);
    expect(retries).toEqual([]);
    const bounce = outcomes.find((o) => o.delivery.key === 'bounce');
    expect(bounce).toMatchObject({ status: 'failed', attempts: 1 });
    expect(bounce?.error?.smtpCode).toBe(550);
    expect(bounce?.error?.retryable).toBe(false);
    expect(outcomes.find((o) => o.delivery.key === 'fine')?.status).toBe('sent');
  });

  it('never has more than `concurrency` sends in flight, and uses all of it', async () => {
    const { queue, transport } = setup({ concurrency: 3 });
    // Sends much slower than the limiter's own per-job overhead, so the bound is what limits.
    transport.behaviour = (d) => sleep(15 + (Number(d.key.slice(1)) % 4) * 5);
    for (let i = 0; i < 18; i++) queue.submit(delivery(`k${i}`));
    await queue.idle();
    expect(transport.calls.length).toBe(18);
    expect(transport.maxConcurrent).toBe(3);
  });

  it('serves scheduled mail before queued broadcasts, whatever the submission order', async () => {
    const { queue, transport } = setup({ concurrency: 1 });
    let open: () => void = () => {};
    const gate = new Promise<void>((r) => (open = r));
    // b1 holds the only slot until the scheduled mail has had time to reach the limiter's queue.
    transport.behaviour = (d) => (d.key === 'b1' ? gate : Promise.resolve());
    for (let i = 1; i <= 4; i++) queue.submit(delivery(`b${i}`, 'broadcast'));
    await until(() => expect(transport.calls).toEqual(['b1']));
    for (let i = 1; i <= 3; i++) queue.submit(delivery(`s${i}`, 'scheduled'));
    // Everything granted by the limiter and waiting for the one worker: from here the order is the queue's choice.
    await until(() => expect(queue.awaitingGrant).toBe(false));
    open();
    await queue.idle();
    expect(transport.calls).toEqual(['b1', 's1', 's2', 's3', 'b2', 'b3', 'b4']);
  });

  it('a failing onOutcome hook never causes a resend', async () => {
    const { queue, transport, outcomes } = setup({ maxAttempts: 5 }, () => {
      throw new Error('analytics down');
    });
    transport.behaviour = async (d) => {
      if (d.key === 'perm') throw smtpReply(554);
    };
    for (const k of ['a', 'b', 'perm']) queue.submit(delivery(k));
    await queue.idle();
    await sleep(30);
    expect([...transport.calls].sort()).toEqual(['a', 'b', 'perm']);
    expect(outcomes.map((o) => `${o.delivery.key}:${o.status}`).sort()).toEqual(['a:sent', 'b:sent', 'perm:failed']);
  });
});

describe('SendQueue: grants within what the rate windows have left', () => {
  it('rate.perDay 30 with no per-second limit: 30 of 40 are sent, not the first two grants only (a grant of 38 outweighed the 28 left)', async () => {
    const { queue, transport } = setup({ concurrency: 4, rate: { perSecond: null, perMinute: null, perHour: null, perDay: 30 } });
    for (let i = 0; i < 40; i++) queue.submit(delivery(`k${i}`));
    await until(() => expect(transport.calls).toHaveLength(30));
    // The other 10 wait for the day's refresh, still in the queue and unsent.
    await until(() => expect(queue.inFlight).toBe(0));
    expect(queue.waiting).toBe(10);
    expect(new Set(transport.calls).size).toBe(30);
  });

  it('a restart with 25 of the 30 of the day already used sends exactly 5', async () => {
    const { queue, transport } = setup({ concurrency: 4, rate: { perSecond: null, perMinute: null, perHour: null, perDay: 30 }, used: { perDay: 25 } });
    for (let i = 0; i < 12; i++) queue.submit(delivery(`k${i}`));
    await until(() => expect(transport.calls).toHaveLength(5));
    await until(() => expect(queue.inFlight).toBe(0));
    expect(queue.waiting).toBe(7);
  });
});

describe('SendQueue: stop', () => {
  it('returns deliveries not yet started as released, lets in-flight ones finish, and sends nothing afterwards', async () => {
    const { queue, transport, outcomes } = setup({ concurrency: 2 });
    transport.behaviour = () => sleep(60);
    const keys = Array.from({ length: 8 }, (_, i) => `k${i}`);
    for (const k of keys) queue.submit(delivery(k));
    await until(() => expect(transport.calls.length).toBe(2));
    const started = [...transport.calls];

    const { released, abandoned } = await queue.stop(5_000);
    expect(abandoned).toEqual([]);
    expect(released.map((d) => d.key).sort()).toEqual(keys.filter((k) => !started.includes(k)).sort());
    // The in-flight sends finished and were reported before stop resolved.
    expect(outcomes.map((o) => o.delivery.key).sort()).toEqual([...started].sort());
    expect(() => queue.submit(delivery('late'))).toThrow(mwError(ErrorCodes.SHUTTING_DOWN, 'send queue is stopping'));

    await sleep(150);
    expect(transport.calls.sort()).toEqual([...started].sort());
  });

  it('gives up on a send slower than the drain timeout and reports it as abandoned', async () => {
    const { queue, transport } = setup({ concurrency: 1 });
    let finish: () => void = () => {};
    const stuck = new Promise<void>((r) => (finish = r));
    transport.behaviour = () => stuck;
    queue.submit(delivery('slow'));
    queue.submit(delivery('queued'));
    await until(() => expect(transport.calls).toEqual(['slow']));

    const t0 = Date.now();
    const result = await Promise.race([queue.stop(100), sleep(3_000).then(() => 'stop did not honour the drain timeout' as const)]);
    finish();
    expect(result).not.toBe('stop did not honour the drain timeout');
    if (typeof result === 'string') return;
    expect(Date.now() - t0).toBeLessThan(1_500);
    expect(result.abandoned.map((d) => d.key)).toEqual(['slow']);
    expect(result.released.map((d) => d.key)).toEqual(['queued']);
  });

  it('hands back a delivery waiting out a retry backoff, without sending it again', async () => {
    const { queue, transport, outcomes } = setup({ maxAttempts: 5, backoffBaseMs: 10_000, backoffMaxMs: 10_000 });
    transport.behaviour = async (d) => {
      if (d.key === 'flaky') throw smtpReply(421);
    };
    queue.submit(delivery('flaky'));
    queue.submit(delivery('ok'));
    await until(() => expect(outcomes.map((o) => o.delivery.key)).toEqual(['ok']));
    await until(() => expect(queue.inFlight).toBe(0));
    expect(queue.waiting).toBe(1);
    const { released, abandoned } = await queue.stop(1_000);
    expect(released.map((d) => d.key)).toEqual(['flaky']);
    expect(abandoned).toEqual([]);
    await sleep(50);
    expect(transport.calls.filter((k) => k === 'flaky')).toEqual(['flaky']);
  });

  it('a transient failure of an in-flight send during the drain is released, not retried', async () => {
    const { queue, transport, outcomes } = setup({ concurrency: 1, maxAttempts: 5 });
    transport.behaviour = async () => {
      await sleep(40);
      throw smtpReply(451);
    };
    queue.submit(delivery('d'));
    await until(() => expect(transport.calls).toEqual(['d']));
    const { released, abandoned } = await queue.stop(2_000);
    expect(released.map((d) => d.key)).toEqual(['d']);
    expect(abandoned).toEqual([]);
    expect(outcomes).toEqual([]);
    await sleep(50);
    expect(transport.calls).toEqual(['d']);
  });

  it('stop() is idempotent', async () => {
    const { queue } = setup();
    queue.submit(delivery('a'));
    const first = queue.stop(100);
    expect(queue.stop(100)).toBe(first);
    await first;
  });
});

describe('SendQueue: slowdown after a 421', () => {
  it('lowers the rate in proportion (x decrease), logs it with one `level` key, and climbs back as messages are accepted', async () => {
    const lines: string[] = [];
    const captured = pino({ level: 'info' }, { write: (s: string) => void lines.push(s) });
    const transport = new FakeTransport();
    transport.behaviour = async (d, attempt) => {
      if (d.key === 'k0' && attempt === 1) throw smtpReply(421);
    };
    const queue = new SendQueue(
      transport,
      { concurrency: 1, rate: { perSecond: 100 }, maxAttempts: 3, backoffBaseMs: 2, backoffMaxMs: 8, slowdown: { decrease: 0.5, windowMs: 1000, recoveryPerSecond: 5, floor: 0.1 } },
      { onOutcome: () => undefined },
      captured,
    );
    queues.push(queue);
    queue.submit(delivery('k0'));
    await until(() => expect(queue.stats.slowdowns).toBe(1));
    const warn = lines.find((l) => l.includes('lowering the send rate'));
    expect(warn).toBeDefined();
    // pino's own level only: a second `level` key made the line ambiguous JSON.
    expect(warn?.match(/"level":/g)).toHaveLength(1);
    expect(JSON.parse(warn ?? '{}')).toMatchObject({ level: 40, ratePerSecond: 50, configuredPerSecond: 100, smtpCode: 421 });
    expect(queue.ratePerSecond).toBe(50);
    expect(queue.rateRatio).toBe(0.5);
    // Each accepted message adds 5 x 100 / rate (5 x the configured rate per second of sending): about 8 bring it back to 100/s.
    for (let i = 1; i <= 20; i++) queue.submit(delivery(`k${i}`));
    await queue.idle();
    expect(queue.ratePerSecond).toBe(100);
    expect(queue.rateRatio).toBe(1);
    const info = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => String(l['msg']).includes('back to the configured rate'));
    expect(info).toMatchObject({ level: 30, ratePerSecond: 100 });
    for (const l of lines) expect(l.match(/"level":/g)).toHaveLength(1);
  });
});

describe('SendQueue: room, idle and the drain are events, and its waits run on the injected clock', () => {
  /** Holds every send until the test releases it by key. */
  function holdSends(transport: FakeTransport): Map<string, () => void> {
    const release = new Map<string, () => void>();
    transport.behaviour = (d) => new Promise<void>((r) => release.set(d.key, r));
    return release;
  }
  async function settle(): Promise<void> {
    for (let i = 0; i < 5; i++) await flushMicrotasks();
  }

  it('room() resolves when a send completes and the next one starts (no timer involved)', async () => {
    const clock = new FakeClock(0);
    const { queue, transport } = setup({ concurrency: 1, clock });
    const release = holdSends(transport);
    for (const k of ['a', 'b', 'c']) queue.submit(delivery(k));
    await until(() => expect(transport.calls).toEqual(['a']));
    expect(queue.waiting).toBe(2);
    let roomy = false;
    void queue.room(2).then(() => (roomy = true));
    await expect(queue.room(3)).resolves.toBeUndefined(); // already fewer than 3 waiting
    await settle();
    expect(roomy).toBe(false);

    release.get('a')?.();
    await until(() => expect(roomy).toBe(true));
    expect(transport.calls).toEqual(['a', 'b']);
    expect(queue.waiting).toBe(1);
    expect(clock.pending).toBe(0);
    release.get('b')?.();
    await until(() => expect(transport.calls).toEqual(['a', 'b', 'c']));
    release.get('c')?.();
    await queue.idle();
  });

  it('room() resolves when the queue stops', async () => {
    const { queue, transport } = setup({ concurrency: 1, clock: new FakeClock(0) });
    const release = holdSends(transport);
    for (const k of ['a', 'b', 'c']) queue.submit(delivery(k));
    await until(() => expect(transport.calls).toEqual(['a']));
    const room = queue.room(1);
    const stopped = queue.stop(1000);
    await room;
    release.get('a')?.();
    expect((await stopped).released.map((d) => d.key)).toEqual(['b', 'c']);
  });

  it('the drain waits for the last send in flight, and gives up at its deadline on the clock', async () => {
    const clock = new FakeClock(0);
    const { queue, transport } = setup({ concurrency: 2, clock });
    const release = holdSends(transport);
    for (const k of ['a', 'b']) queue.submit(delivery(k));
    await until(() => expect(transport.calls).toEqual(['a', 'b']));
    let result: { released: Delivery[]; abandoned: Delivery[] } | undefined;
    void queue.stop(10_000).then((r) => (result = r));
    release.get('a')?.();
    await settle();
    await clock.advanceAsync(9_999);
    expect(result).toBeUndefined(); // 'b' is still in flight and the deadline has not come
    await clock.advanceAsync(1);
    expect(result?.abandoned.map((d) => d.key)).toEqual(['b']);
    release.get('b')?.();

    // A drain whose last send ends before the deadline ends with it, the clock untouched.
    const second = setup({ concurrency: 1, clock: new FakeClock(0) });
    const releaseSecond = holdSends(second.transport);
    second.queue.submit(delivery('c'));
    await until(() => expect(second.transport.calls).toEqual(['c']));
    const drained = second.queue.stop(60_000);
    releaseSecond.get('c')?.();
    expect(await drained).toEqual({ released: [], abandoned: [] });
  });

  it('a retry waits out its backoff on the injected clock', async () => {
    const clock = new FakeClock(0);
    const { queue, transport, outcomes, retries } = setup({ clock, backoffBaseMs: 1000, backoffMaxMs: 1000 });
    transport.behaviour = async (_d, attempt) => {
      if (attempt === 1) throw smtpReply(451);
    };
    queue.submit(delivery('x'));
    await until(() => expect(retries).toHaveLength(1));
    await settle();
    expect(transport.calls).toEqual(['x']);
    expect(clock.pending).toBe(1);
    await clock.advanceAsync(1000);
    await queue.idle();
    expect(transport.calls).toEqual(['x', 'x']);
    expect(outcomes.map((o) => `${o.delivery.key}:${o.status}:${o.attempts}`)).toEqual(['x:sent:2']);
  });
});
