/**
 * OutcomeRecorder's batching on an injected clock: completions are written per `batchSize` or
 * after `intervalMs` (config send.recordBatch / send.recordFlushMs), a failed write keeps the
 * batch and retries after max(1 s, intervalMs), and event timestamps come from the clock.
 */
import { describe, expect, it } from 'vitest';
import { OutcomeRecorder } from '../../src/core/outcome-recorder.js';
import type { ClaimStore } from '../../src/ports/index.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { MemoryClaimStore, RecordingEvents, sampleDelivery, silentLogger } from '../helpers/fakes.js';

const T0 = Date.parse('2026-01-05T09:00:05Z');

function outcome(i: number) {
  return { delivery: sampleDelivery({ key: `k${i}`, userId: `u${i}` }), status: 'sent' as const, attempts: 1, latencyMs: 2 };
}

/** Counts complete() calls; fails the first `failures` of them. */
class CountingClaims extends MemoryClaimStore {
  writes: number[] = [];
  constructor(public failures = 0) {
    super();
  }
  override async complete(outcomes: Parameters<ClaimStore['complete']>[0]): Promise<void> {
    this.writes.push(outcomes.length);
    if (this.failures-- > 0) throw new Error('mongo down');
    await super.complete(outcomes);
  }
}

describe('OutcomeRecorder on an injected clock', () => {
  it('writes a batch when batchSize outcomes are pending, else after intervalMs', async () => {
    const clock = new FakeClock(T0);
    const claims = new CountingClaims();
    const events = new RecordingEvents();
    const rec = new OutcomeRecorder(claims, events, { batchSize: 3, intervalMs: 250, clock }, silentLogger());
    for (let i = 0; i < 4; i++) await rec.outcome(outcome(i));
    await clock.advanceAsync(0);
    expect(claims.writes).toEqual([3]);
    expect(rec.pending).toBe(1);
    await clock.advanceAsync(249);
    expect(claims.writes).toEqual([3]);
    await clock.advanceAsync(1);
    expect(claims.writes).toEqual([3, 1]);
    expect([...claims.done.keys()]).toEqual(['k0', 'k1', 'k2', 'k3']);
    expect(events.ofType('sent').map((e) => e.at)).toEqual(Array.from({ length: 4 }, () => new Date(T0)));
  });

  it('keeps a batch whose write failed and retries it after max(1 s, intervalMs)', async () => {
    const clock = new FakeClock(T0);
    const claims = new CountingClaims(1);
    const rec = new OutcomeRecorder(claims, new RecordingEvents(), { batchSize: 100, intervalMs: 250, clock }, silentLogger());
    await rec.outcome(outcome(1));
    await clock.advanceAsync(250);
    expect(claims.writes).toEqual([1]);
    expect(rec.pending).toBe(1);
    await clock.advanceAsync(999);
    expect(claims.writes).toEqual([1]);
    await clock.advanceAsync(1);
    expect(claims.writes).toEqual([1, 1]);
    expect(rec.pending).toBe(0);
    expect(claims.done.get('k1')).toBe('sent');
  });

  it('a slow database holds the callers back: unrecorded completions stay under 2 x (batchSize + workers), however many outcomes come', async () => {
    // complete() hangs until the test lets it go, like FerretDB under load.
    class SlowClaims extends MemoryClaimStore {
      gates: Array<() => void> = [];
      writes: number[] = [];
      override async complete(outcomes: Parameters<ClaimStore['complete']>[0]): Promise<void> {
        this.writes.push(outcomes.length);
        await new Promise<void>((resolve) => this.gates.push(resolve));
        await super.complete(outcomes);
      }
    }
    const clock = new FakeClock(T0);
    const claims = new SlowClaims();
    const batchSize = 10;
    const workers = 4;
    const rec = new OutcomeRecorder(claims, new RecordingEvents(), { batchSize, intervalMs: 250, clock }, silentLogger());
    let handed = 0;
    let next = 0;
    // Each worker, like a send-queue worker, awaits the hook before its next outcome.
    const work = async (): Promise<void> => {
      while (next < 200) {
        handed++;
        await rec.outcome(outcome(next++));
      }
    };
    const running = Promise.all(Array.from({ length: workers }, () => work()));
    let most = 0;
    for (let round = 0; round < 400 && claims.done.size < 200; round++) {
      await clock.advanceAsync(0);
      most = Math.max(most, handed - claims.done.size);
      claims.gates.shift()?.();
      await clock.advanceAsync(250);
    }
    await running;
    await rec.flush();
    expect(claims.done.size).toBe(200);
    // Before the fix the workers never waited: 200 handed out while the first write hung.
    expect(most).toBeLessThanOrEqual(2 * (batchSize + workers));
    expect(most).toBeGreaterThanOrEqual(batchSize);
  });
});

