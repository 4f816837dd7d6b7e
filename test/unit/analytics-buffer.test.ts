/**
 * AnalyticsBuffer with an in-memory EventSink: batching by size and by time, stable ids across
 * retried writes (so a write whose acknowledgement was lost is not stored twice), backpressure
 * without dropping, and an idempotent close. Real timers, with intervals of a few ms.
 */
import { describe, expect, it, vi } from 'vitest';
import { AnalyticsBuffer, type AnalyticsBufferOptions } from '../../src/analytics/buffer.js';
import { ErrorCodes } from '../../src/errors.js';
import type { EventSink, OutcomeEvent, StoredEvent } from '../../src/ports/index.js';
import { FakeClock, flushMicrotasks } from '../helpers/fake-clock.js';
import { mwError } from '../helpers/errors.js';
import { silentLogger } from '../helpers/fakes.js';

const log = silentLogger();
const tick = (ms = 0): Promise<void> => new Promise((r) => setTimeout(r, ms));

function event(i: number, type: OutcomeEvent['type'] = 'sent'): OutcomeEvent {
  return { type, at: new Date(Date.UTC(2026, 0, 1, 9, 0, 0, i)), key: `s:u${i}:09:00:2026-01-01`, userId: `u${i}` };
}

/**
 * A sink that stores events by id (as `_id` in the events collection would: a second insert of
 * the same id is a duplicate, not a second row). Scripted failures can happen before or after
 * the data is stored (the latter is a lost acknowledgement).
 */
class MemorySink implements EventSink {
  readonly calls: StoredEvent[][] = [];
  readonly stored = new Map<string, StoredEvent>();
  rowsInserted = 0;
  /** Failure script, consumed one entry per call; 'ok' when empty. */
  script: Array<'fail' | 'fail-after-store' | 'ok'> = [];
  /** When set, each write waits for it. */
  gate: Promise<void> | undefined;

  async write(events: readonly StoredEvent[]): Promise<void> {
    this.calls.push(events.map((e) => ({ ...e })));
    if (this.gate) await this.gate;
    const step = this.script.shift() ?? 'ok';
    if (step === 'fail') throw new Error('mongo down');
    for (const e of events) {
      if (!this.stored.has(e.id)) {
        this.stored.set(e.id, e);
        this.rowsInserted++;
      }
    }
    if (step === 'fail-after-store') throw new Error('connection reset before the reply');
  }

  /** Every written event, in write order, without duplicates. */
  get events(): StoredEvent[] {
    return [...this.stored.values()];
  }
}

function buffer(sink: EventSink, opts: Partial<AnalyticsBufferOptions> = {}): AnalyticsBuffer {
  return new AnalyticsBuffer(sink, { flushEvents: 100, flushIntervalMs: 10_000, maxBuffered: 10_000, retryBaseMs: 5, retryMaxMs: 20, ...opts }, log);
}

describe('AnalyticsBuffer', () => {
  it('flushes as soon as flushEvents are buffered, one batch per flushEvents', async () => {
    const sink = new MemorySink();
    const buf = buffer(sink, { flushEvents: 3 });
    for (let i = 0; i < 7; i++) await buf.record(event(i));
    await vi.waitFor(() => expect(sink.rowsInserted).toBe(6), { timeout: 2000, interval: 5 });
    expect(sink.calls.map((c) => c.length)).toEqual([3, 3]);
    // The 7th waits for the (10 s) interval, not for another size flush.
    await tick(50);
    expect(sink.calls.length).toBe(2);
    expect(buf.size).toBe(1);
    await buf.close();
    expect(sink.calls.map((c) => c.length)).toEqual([3, 3, 1]);
    expect(sink.events.map((e) => e.userId)).toEqual(['u0', 'u1', 'u2', 'u3', 'u4', 'u5', 'u6']);
  });

  it('flushes a partial batch after flushIntervalMs', async () => {
    const sink = new MemorySink();
    const buf = buffer(sink, { flushEvents: 100, flushIntervalMs: 40 });
    const t0 = Date.now();
    await buf.record(event(1));
    await buf.record(event(2));
    await tick(10);
    expect(sink.calls).toEqual([]);
    await vi.waitFor(() => expect(sink.rowsInserted).toBe(2), { timeout: 2000, interval: 5 });
    // One write for both, and not before the interval (allowing a little timer slack).
    expect(sink.calls.length).toBe(1);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(35);
    await buf.close();
  });

  it('writes each event with its fields and a unique id', async () => {
    const sink = new MemorySink();
    const buf = buffer(sink);
    const input = Array.from({ length: 50 }, (_, i) => event(i, i % 2 ? 'failed' : 'sent'));
    for (const e of input) await buf.record(e);
    await buf.close();
    const ids = sink.calls.flat().map((e) => e.id);
    expect(new Set(ids).size).toBe(50);
    for (const id of ids) expect(typeof id === 'string' && id.length > 0).toBe(true);
    expect(sink.events.map(({ id: _id, ...rest }) => rest)).toEqual(input);
    expect(buf.byType.get('sent')).toBe(25);
    expect(buf.byType.get('failed')).toBe(25);
  });

  it('retries a failed write with the same ids, so a lost acknowledgement never stores an event twice', async () => {
    const sink = new MemorySink();
    // 1st write: stored but the reply is lost; 2nd: fails outright; 3rd: succeeds.
    sink.script = ['fail-after-store', 'fail', 'ok'];
    const buf = buffer(sink, { flushEvents: 4 });
    for (let i = 0; i < 4; i++) await buf.record(event(i));
    await vi.waitFor(() => expect(sink.calls.length).toBe(3), { timeout: 2000, interval: 5 });
    await buf.close();
    expect(sink.calls.length).toBe(3);
    const idsOf = (batch: StoredEvent[] | undefined) => (batch ?? []).map((e) => e.id);
    expect(idsOf(sink.calls[1])).toEqual(idsOf(sink.calls[0]));
    expect(idsOf(sink.calls[2])).toEqual(idsOf(sink.calls[0]));
    expect(sink.rowsInserted).toBe(4);
    expect(sink.events.map((e) => e.userId)).toEqual(['u0', 'u1', 'u2', 'u3']);
    expect(buf.stats.writeErrors).toBe(2);
    expect(buf.size).toBe(0);
  });

  it('at maxBuffered, record() waits until a write makes room, and nothing is dropped', async () => {
    const sink = new MemorySink();
    let open: () => void = () => {};
    sink.gate = new Promise((r) => (open = r));
    const buf = buffer(sink, { flushEvents: 2, maxBuffered: 3 });

    await buf.record(event(0));
    await buf.record(event(1)); // size flush starts and blocks in the sink
    const settled: number[] = [];
    const pending = [2, 3, 4].map((i) => buf.record(event(i)).then(() => settled.push(i)));
    await tick(50);
    expect(sink.calls.length).toBe(1);
    // The 3rd event fits; the 4th and 5th wait outside the buffer, which never exceeds its bound.
    expect(settled).toEqual([2]);
    expect(buf.size).toBe(3);
    expect(buf.waiting).toBe(2);
    expect(buf.stats.peak).toBe(3);

    open();
    sink.gate = undefined;
    await Promise.all(pending);
    expect(settled.sort()).toEqual([2, 3, 4]);
    await buf.close();
    expect(sink.events.map((e) => e.userId)).toEqual(['u0', 'u1', 'u2', 'u3', 'u4']);
    expect(sink.rowsInserted).toBe(5);
  });

  it('the bound is strict under many concurrent producers, and waiting events keep their order', async () => {
    const sink = new MemorySink();
    let open: () => void = () => {};
    sink.gate = new Promise((r) => (open = r));
    const buf = buffer(sink, { flushEvents: 10, maxBuffered: 25 });
    const sizes: number[] = [];
    // 200 producers at once, as the send path's workers would be.
    const all = Array.from({ length: 200 }, (_, i) => buf.record(event(i)).then(() => sizes.push(buf.size)));
    await tick(20);
    expect(buf.size).toBe(25);
    expect(buf.waiting).toBe(175);
    open();
    sink.gate = undefined;
    await Promise.all(all);
    await buf.close();
    expect(Math.max(...sizes)).toBeLessThanOrEqual(25);
    expect(buf.stats.peak).toBe(25);
    expect(buf.stats.blocked).toBe(175);
    expect(sink.events.map((e) => e.userId)).toEqual(Array.from({ length: 200 }, (_, i) => `u${i}`));
    expect(sink.rowsInserted).toBe(200);
  });

  it('reports each write attempt to onFlush, and new events do not cut a retry backoff short', async () => {
    const sink = new MemorySink();
    sink.script = ['fail', 'ok'];
    const reports: Array<{ events: number; ok: boolean }> = [];
    const buf = new AnalyticsBuffer(sink, { flushEvents: 2, flushIntervalMs: 10_000, maxBuffered: 100, retryBaseMs: 150, retryMaxMs: 150 }, log, {
      onFlush: (r) => reports.push({ events: r.events, ok: r.ok }),
    });
    await buf.record(event(0));
    await buf.record(event(1)); // write 1 fails; the retry is armed for 150 ms later
    await vi.waitFor(() => expect(reports.length).toBe(1), { timeout: 2000, interval: 2 });
    // Each of these reaches flushEvents again; none may trigger an early retry.
    for (let i = 2; i < 12; i++) await buf.record(event(i));
    await tick(60);
    expect(sink.calls.length).toBe(1);
    await vi.waitFor(() => expect(sink.rowsInserted).toBe(12), { timeout: 3000, interval: 5 });
    await buf.close();
    expect(reports[0]).toEqual({ events: 2, ok: false });
    expect(reports.slice(1).every((r) => r.ok)).toBe(true);
  });

  it('keeps record() pending while the sink keeps failing, then resolves once a write succeeds', async () => {
    const sink = new MemorySink();
    sink.script = ['fail', 'fail', 'fail'];
    const buf = buffer(sink, { flushEvents: 2, maxBuffered: 2 });
    await buf.record(event(0));
    await buf.record(event(1)); // the buffer is now at its bound
    let resolved = false;
    const p = buf.record(event(2)).then(() => (resolved = true));
    await vi.waitFor(() => expect(sink.calls.length).toBeGreaterThanOrEqual(3), { timeout: 2000, interval: 2 });
    expect(sink.rowsInserted).toBe(0);
    expect(resolved).toBe(false);
    expect(buf.size).toBe(2);
    await p;
    await buf.close();
    expect(sink.rowsInserted).toBe(3);
    await buf.close();
  });

  it('close() writes what is left, and a second close() is the same promise and writes nothing more', async () => {
    const sink = new MemorySink();
    const buf = buffer(sink, { flushEvents: 100, flushIntervalMs: 60_000 });
    for (let i = 0; i < 5; i++) await buf.record(event(i));
    expect(sink.calls).toEqual([]);
    const first = buf.close();
    const second = buf.close();
    expect(second).toBe(first);
    await first;
    await buf.close();
    expect(sink.calls.length).toBe(1);
    expect(sink.events.length).toBe(5);
    expect(buf.size).toBe(0);
  });

  it('close() retries a failing sink until it succeeds', async () => {
    const sink = new MemorySink();
    sink.script = ['fail', 'fail'];
    const buf = buffer(sink);
    await buf.record(event(0));
    await buf.close();
    expect(sink.calls.length).toBe(3);
    expect(sink.events.length).toBe(1);
  });

  it('close(deadline) gives up on a sink that never recovers, with the events still counted', async () => {
    const sink = new MemorySink();
    sink.script = Array.from({ length: 1000 }, () => 'fail' as const);
    const buf = buffer(sink);
    await buf.record(event(0));
    await buf.record(event(1));
    await expect(buf.close(60)).rejects.toThrow(mwError(ErrorCodes.DEADLINE_EXCEEDED, /2 events/));
    expect(buf.size).toBe(2);
  });
});

describe('AnalyticsBuffer on an injected clock', () => {
  const T0 = Date.parse('2026-01-01T09:00:00Z');
  /** A buffer whose every timer and wait is on `clock`: nothing here waits for real time. */
  function fakeTimed(sink: EventSink, clock: FakeClock, opts: Partial<AnalyticsBufferOptions> = {}): AnalyticsBuffer {
    return new AnalyticsBuffer(sink, { flushEvents: 1, flushIntervalMs: 2000, maxBuffered: 100, retryBaseMs: 1000, retryMaxMs: 8000, ...opts }, log, { clock });
  }

  it('retries a failed write after retryBaseMs × 2^failures (capped at retryMaxMs), on the clock', async () => {
    const clock = new FakeClock(T0);
    const sink = new MemorySink();
    sink.script = ['fail', 'fail', 'fail', 'fail'];
    const buf = fakeTimed(sink, clock);
    await buf.record(event(1));
    await clock.advanceAsync(0); // the size flush: write 1 fails
    expect(sink.calls).toHaveLength(1);
    // Failure n arms the retry retryBaseMs × 2^n later: 2 s, 4 s, then 8 s (the cap), 8 s.
    for (const wait of [2000, 4000, 8000, 8000]) {
      expect(clock.nextTimerAt()).toBe(clock.now() + wait);
      const before = sink.calls.length;
      await clock.advanceAsync(wait - 1);
      expect(sink.calls).toHaveLength(before);
      await clock.advanceAsync(1);
      expect(sink.calls).toHaveLength(before + 1);
    }
    expect(sink.rowsInserted).toBe(1);
    expect(buf.stats.writeErrors).toBe(4);
    expect(clock.pending).toBe(0);
  });

  it('the interval flush waits for flushIntervalMs on the clock', async () => {
    const clock = new FakeClock(T0);
    const sink = new MemorySink();
    const buf = fakeTimed(sink, clock, { flushEvents: 10 });
    await buf.record(event(1));
    await clock.advanceAsync(1999);
    expect(sink.calls).toHaveLength(0);
    await clock.advanceAsync(1);
    expect(sink.rowsInserted).toBe(1);
  });

  it('close() retries on the clock and gives up at its deadline (measured on the clock)', async () => {
    const clock = new FakeClock(T0);
    const sink = new MemorySink();
    sink.script = Array.from({ length: 20 }, () => 'fail' as const);
    const buf = fakeTimed(sink, clock, { flushEvents: 10 });
    await buf.record(event(1));
    let settled: unknown;
    const closing = buf.close(5000).then(
      () => (settled = 'resolved'),
      (err: Error) => (settled = err),
    );
    await flushMicrotasks();
    expect(sink.calls).toHaveLength(1);
    expect(settled).toBeUndefined();
    // Retries after 2 s and then 4 s, cut to the 3 s left of the deadline; then it gives up.
    await clock.advanceAsync(2000);
    expect(sink.calls).toHaveLength(2);
    expect(settled).toBeUndefined();
    await clock.advanceAsync(3000);
    await closing;
    expect(sink.calls).toHaveLength(3);
    expect(settled).toBeInstanceOf(Error);
    expect((settled as Error).message).toMatch(/1 events not written before the deadline/);
  });
});
