/**
 * The scheduled minute in core, with fakes: fired jobs become deliveries with their keys, every
 * one opens in the minute ledger, and each settles where it ends (already claimed, suppressed,
 * missed at once; sent and failed once the outcome router sees the recorded outcome), so the
 * checkpoint mark moves past the minute only when all of it is done.
 */
import { describe, expect, it } from 'vitest';
import { CatchUp, MinuteLedger } from '../../src/core/catch-up.js';
import { scheduledKey } from '../../src/core/delivery-key.js';
import type { Job } from '../../src/core/job-registry.js';
import type { Outcome, OutcomeHooks } from '../../src/ports/index.js';
import { routeOutcomes } from '../../src/core/outcome-router.js';
import { ScheduledMinute, scheduledDelivery, type MinuteDispatchResult } from '../../src/core/scheduled-minute.js';
import { HOUR_MS, MINUTE_MS, epochMinute } from '../../src/core/time.js';
import type { Delivery } from '../../src/ports/index.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { MemoryClaimStore, RecordingEvents, sampleDelivery, silentLogger } from '../helpers/fakes.js';

const START = Date.parse('2027-05-10T09:30:20Z');

function job(userId: string, fireAt: number, email = `${userId}@example.test`): Job {
  return { id: `${userId}|09:00`, userId, email, name: userId.toUpperCase(), timezone: 'UTC', time: '09:00', fireAt, localDate: '2027-05-10', row: 0, gen: 0 };
}

/** Claims through the shared in-memory store; suppressed addresses are neither claimed nor sent. */
class FakeDispatcher {
  readonly queued: Delivery[] = [];
  readonly calls: Delivery[][] = [];
  constructor(
    readonly claims: MemoryClaimStore,
    readonly suppressed: Set<string> = new Set(),
  ) {}
  async dispatch(deliveries: readonly Delivery[]): Promise<MinuteDispatchResult> {
    this.calls.push([...deliveries]);
    const allowed = deliveries.filter((d) => !this.suppressed.has(d.email));
    const { claimed, taken } = await this.claims.claim(allowed.map((d) => d.key));
    this.queued.push(...allowed.filter((d) => claimed.includes(d.key)));
    return { skipped: taken.length, suppressed: deliveries.length - allowed.length };
  }
}

function setup(opts: { takenByOthers?: string[]; suppressed?: string[]; begin?: boolean } = {}) {
  const clock = new FakeClock(START);
  const claims = new MemoryClaimStore(opts.takenByOthers);
  const events = new RecordingEvents();
  const ledger = new MinuteLedger();
  const catchUp = new CatchUp({ claims, events, clock }, { graceMs: 15 * MINUTE_MS, lookbackMs: 24 * HOUR_MS }, silentLogger());
  if (opts.begin !== false) catchUp.begin(START);
  const dispatcher = new FakeDispatcher(claims, new Set(opts.suppressed));
  const minute = new ScheduledMinute({ dispatcher, catchUp, ledger });
  return { clock, claims, events, ledger, catchUp, dispatcher, minute };
}

describe('scheduledDelivery', () => {
  it('keys a job by user, slot and local date and carries its due instant', () => {
    const d = scheduledDelivery(job('u1', Date.parse('2026-01-05T09:00:00Z'), 'ada@example.test'));
    expect(d).toEqual({ ...sampleDelivery({ name: 'U1', localDate: '2027-05-10' }), key: scheduledKey('u1', '09:00', '2027-05-10') });
  });
});

describe('ScheduledMinute', () => {
  it('sends what is due, counts the due deliveries, and keeps them open until their outcome', async () => {
    const t = setup();
    const due = START + 40_000;
    const m = epochMinute(due);
    expect(t.minute.due).toBeUndefined();
    await t.minute.fire([job('a', due), job('b', due)], m);
    expect(t.minute.due).toBe(2);
    expect(t.dispatcher.queued.map((d) => d.userId)).toEqual(['a', 'b']);
    expect(t.ledger.open).toBe(2);
    expect(t.ledger.mark(m + 5)).toBe(m - 1);
  });

  it('settles at once what ends at dispatch: already claimed and suppressed', async () => {
    const due = START + 40_000;
    const m = epochMinute(due);
    const t = setup({ takenByOthers: [scheduledKey('skip', '09:00', '2027-05-10')], suppressed: ['quiet@example.test'] });
    await t.minute.fire([job('skip', due), job('quiet', due, 'quiet@example.test'), job('send', due)], m);
    expect(t.dispatcher.queued.map((d) => d.userId)).toEqual(['send']);
    expect(t.ledger.open).toBe(1);
    expect(t.minute.due).toBe(3);
  });

  it('catch-up split: a fire older than the grace period is recorded missed (claimed, completed) and settled; a young one is sent', async () => {
    const t = setup();
    const old = START - 2 * HOUR_MS;
    const young = START - 5 * MINUTE_MS;
    await t.minute.fire([job('late', old)], epochMinute(old));
    await t.minute.fire([job('fresh', young)], epochMinute(young));
    expect(t.events.ofType('missed').map((e) => e.userId)).toEqual(['late']);
    expect(t.claims.done.get(scheduledKey('late', '09:00', '2027-05-10'))).toBe('missed');
    expect(t.dispatcher.calls).toEqual([[], [expect.objectContaining({ userId: 'fresh' })]]);
    expect(t.catchUp.stats).toEqual({ missed: 1, lateSent: 1 });
    // Only the young fire is open: the missed minute no longer holds the mark back.
    expect(t.ledger.open).toBe(1);
    expect(t.ledger.mark(epochMinute(START))).toBe(epochMinute(young) - 1);
  });

  it('without begin() (run-minute) an old fire is sent, whatever its age', async () => {
    const t = setup({ begin: false });
    const old = START - 3 * HOUR_MS;
    await t.minute.fire([job('old', old)], epochMinute(old));
    expect(t.dispatcher.queued.map((d) => d.userId)).toEqual(['old']);
    expect(t.events.ofType('missed')).toEqual([]);
  });

  it('sent and failed outcomes settle through the outcome router, and the mark moves past the minute', async () => {
    const t = setup();
    const due = START + 40_000;
    const m = epochMinute(due);
    await t.minute.fire([job('a', due), job('b', due)], m);
    const recorded: Outcome[] = [];
    const hooks = routeOutcomes(recorderHooks(recorded), { ledger: t.ledger, broadcast: () => expect.unreachable('no broadcast here') });
    const [a, b] = t.dispatcher.queued as [Delivery, Delivery];
    await hooks.onOutcome({ delivery: a, status: 'sent', attempts: 1, latencyMs: 3 });
    expect(t.ledger.mark(m + 1)).toBe(m - 1);
    await hooks.onOutcome({ delivery: b, status: 'failed', attempts: 5, latencyMs: 3 });
    expect(recorded.map((o) => o.status)).toEqual(['sent', 'failed']);
    expect(t.ledger.open).toBe(0);
    expect(t.ledger.mark(m + 1)).toBe(m + 1);
  });
});

describe('routeOutcomes', () => {
  const broadcast = sampleDelivery({ key: 'b|1', kind: 'broadcast', broadcastId: 'b' } as Partial<Delivery>);

  it('a scheduled outcome whose recording threw stays open (the checkpoint must not pass it)', async () => {
    const ledger = new MinuteLedger();
    const d = sampleDelivery();
    ledger.begin(epochMinute(d.dueAt), 1);
    const hooks = routeOutcomes(failingHooks(), { ledger, broadcast: () => undefined });
    await expect(hooks.onOutcome({ delivery: d, status: 'sent', attempts: 1, latencyMs: 1 })).rejects.toThrow('recording failed');
    expect(ledger.open).toBe(1);
  });

  it('a broadcast outcome reaches the broadcast side even when recording threw, and never touches the ledger', async () => {
    const ledger = new MinuteLedger();
    ledger.begin(epochMinute(broadcast.dueAt), 1);
    const seen: Outcome[] = [];
    const hooks = routeOutcomes(failingHooks(), { ledger, broadcast: (o) => seen.push(o) });
    await expect(hooks.onOutcome({ delivery: broadcast, status: 'sent', attempts: 1, latencyMs: 1 })).rejects.toThrow('recording failed');
    expect(seen.map((o) => o.delivery.key)).toEqual(['b|1']);
    const ok = routeOutcomes(recorderHooks([]), { ledger, broadcast: (o) => seen.push(o) });
    await ok.onOutcome({ delivery: broadcast, status: 'failed', attempts: 1, latencyMs: 1 });
    expect(seen).toHaveLength(2);
    expect(ledger.open).toBe(1);
  });

  it('passes retries through to the recorder', async () => {
    const retries: number[] = [];
    const hooks = routeOutcomes({ ...recorderHooks([]), onRetry: async (_d, attempt) => void retries.push(attempt) }, { ledger: new MinuteLedger(), broadcast: () => undefined });
    await hooks.onRetry?.(sampleDelivery(), 2, 1000, Object.assign(new Error('421'), { smtpCode: 421 }) as never);
    expect(retries).toEqual([2]);
  });
});

function recorderHooks(into: Outcome[]): OutcomeHooks {
  return { onOutcome: async (o) => void into.push(o), onRetry: async () => undefined };
}

function failingHooks(): OutcomeHooks {
  return {
    onOutcome: async () => {
      throw new Error('recording failed');
    },
    onRetry: async () => undefined,
  };
}
