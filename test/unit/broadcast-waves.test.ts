/**
 * BroadcastRun with a send window (local-time waves, quiet hours) over in-memory ports: held
 * recipients are not claimed and their batches not confirmed, the run ends `waiting` with the
 * earliest held instant, a run at that instant sends exactly the recipients due, the last one
 * ends `done`; per-zone progress; a recipient held beyond the limit is recorded `missed` once and
 * counted from its claim afterwards. Instants are hand-worked UTC literals.
 */
import { describe, expect, it } from 'vitest';
import { BroadcastRun, type RunResult } from '../../src/core/broadcast-run.js';
import { decide } from '../../src/core/broadcast-supervisor.js';
import { SendWindow, type SendRule } from '../../src/core/send-window.js';
import { compileTemplates } from '../../src/core/templates.js';
import type { Delivery } from '../../src/core/types.js';
import type { BatchCounts, BroadcastQueue, BroadcastRunStore, DoneStatus, ZoneProgress } from '../../src/ports/broadcasts.js';
import type { RawUser } from '../../src/ports/index.js';
import { loadConfig } from '../../src/config/load.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { MemoryClaimStore, RecordingEvents, silentLogger } from '../helpers/fakes.js';

const fields = loadConfig({ env: {} }).config.users.fields;
const content = compileTemplates({ subject: 'News', text: 'Hello {{name}}' }, 'broadcast');
const ZONES = ['Asia/Tokyo', 'UTC', 'America/New_York'];

/** 30 users, 10 per zone, interleaved so every batch holds every zone; one with a bad zone. */
function people(): RawUser[] {
  const out: RawUser[] = Array.from({ length: 30 }, (_, i) => ({ _id: `u${String(i).padStart(2, '0')}`, email: `u${i}@example.test`, active: true, timezone: ZONES[i % 3] }));
  out.push({ _id: 'bad', email: 'bad@example.test', active: true, timezone: 'Mars/Olympus' });
  return out;
}

class World {
  readonly claims = new MemoryClaimStore();
  readonly events = new RecordingEvents();
  readonly ledger = new Map<string, BatchCounts>();
  readonly partial = new Map<string, ReadonlyMap<string, DoneStatus>>();
  readonly sent: string[] = [];
  zones: ZoneProgress[] | undefined;
  run: BroadcastRun | undefined;
  readonly store: BroadcastRunStore = {
    check: async () => 'continue',
    confirmedBatch: async (id) => this.ledger.get(id),
    confirmBatch: async (id, counts) => {
      this.ledger.set(id, counts);
      this.partial.delete(id);
    },
    partialBatch: async (id) => this.partial.get(id),
    recordPartial: async (id, done) => void (this.ledger.has(id) ? undefined : this.partial.set(id, new Map(done))),
    publish: async (p) => void (this.zones = p.zones),
  };
  readonly queue: BroadcastQueue = {
    submit: (d: Delivery) => {
      this.sent.push(d.key);
      setImmediate(() => {
        this.claims.done.set(d.key, 'sent');
        this.run?.onOutcome(d.key, 'sent');
      });
    },
    withdraw: () => [],
  };

  async runAt(clock: FakeClock, rule: SendRule, users: RawUser[]): Promise<RunResult> {
    async function* stream(): AsyncGenerator<RawUser[]> {
      for (let i = 0; i < users.length; i += 8) yield users.slice(i, i + 8);
    }
    this.run = new BroadcastRun(
      { broadcastId: 'w', content, recipients: stream(), fields, claims: this.claims, queue: this.queue, recorder: { flush: async () => undefined }, events: this.events, isSuppressed: () => false, store: this.store, clock },
      { feedAhead: 100, controlPollMs: 1_000_000, drainTimeoutMs: 1000, dueAt: 0, window: new SendWindow(rule), baselineZones: this.zones },
      silentLogger(),
    );
    return this.run.run();
  }
}

const userOf = (key: string): string => key.slice('b:w:'.length);

describe('BroadcastRun with local-time waves', () => {
  it('holds each zone until its 09:00, sends it then, once; waits in between; done after the last zone', async () => {
    const rule: SendRule = { wave: { time: '09:00', date: '2026-01-15' }, dueAt: 0 };
    const clock = new FakeClock('2026-01-14T12:00:00Z');
    const w = new World();
    const users = people();

    const r1 = await w.runAt(clock, rule, users);
    expect(r1.end).toBe('waiting');
    expect(new Date(r1.nextAt ?? 0).toISOString()).toBe('2026-01-15T00:00:00.000Z'); // Tokyo (+9)
    expect(w.sent).toEqual([]);
    expect(w.claims.claimCalls.flat()).toEqual([]);
    expect(w.ledger.size).toBe(0);
    expect(r1.counters).toMatchObject({ sent: 0, skipped: 1 });
    // Invalid events wait for the run that confirms the batch: none yet.
    expect(w.events.ofType('invalid')).toEqual([]);
    expect(r1.zones?.map((z) => [z.zone, z.at.toISOString(), z.users, z.done])).toEqual([
      ['Asia/Tokyo', '2026-01-15T00:00:00.000Z', 10, 0],
      ['UTC', '2026-01-15T09:00:00.000Z', 10, 0],
      ['America/New_York', '2026-01-15T14:00:00.000Z', 10, 0],
    ]);

    // One second early: nothing.
    clock.jump(Date.parse('2026-01-14T23:59:59Z') - clock.now());
    expect((await w.runAt(clock, rule, users)).end).toBe('waiting');
    expect(w.sent).toEqual([]);

    clock.jump(Date.parse('2026-01-15T00:00:00Z') - clock.now());
    const r2 = await w.runAt(clock, rule, users);
    expect(r2.end).toBe('waiting');
    expect(new Date(r2.nextAt ?? 0).toISOString()).toBe('2026-01-15T09:00:00.000Z');
    expect(w.sent.map(userOf).sort()).toEqual(users.filter((u) => u['timezone'] === 'Asia/Tokyo').map((u) => String(u['_id'])).sort());
    expect(r2.zones?.find((z) => z.zone === 'Asia/Tokyo')).toMatchObject({ users: 10, done: 10 });

    // The batches are not confirmed (they hold later zones), but what Tokyo's wave finished is
    // recorded per batch: the next wave counts those keys without claiming them again.
    expect(w.ledger.size).toBe(0);
    expect([...w.partial.values()].flatMap((m) => [...m.keys()]).map(userOf).sort()).toEqual(w.sent.map(userOf).sort());
    const callsBefore = w.claims.claimCalls.length;
    clock.jump(Date.parse('2026-01-15T09:00:30Z') - clock.now());
    const r3 = await w.runAt(clock, rule, users);
    expect(r3.end).toBe('waiting');
    expect(r3.counters).toMatchObject({ sent: 20, skipped: 1 });
    expect(r3.zones?.find((z) => z.zone === 'Asia/Tokyo')).toMatchObject({ users: 10, done: 10 });
    const utc = users.filter((u) => u['timezone'] === 'UTC').map((u) => `b:w:${String(u['_id'])}`);
    expect(w.claims.claimCalls.slice(callsBefore).flat().sort()).toEqual(utc.sort());

    clock.jump(Date.parse('2026-01-15T14:00:00Z') - clock.now());
    const r4 = await w.runAt(clock, rule, users);
    expect(r4.end).toBe('done');
    expect(r4.counters).toMatchObject({ total: 31, sent: 30, skipped: 1, failed: 0, suppressed: 0 });
    expect(w.sent).toHaveLength(30);
    expect(new Set(w.sent).size).toBe(30);
    // Every batch confirmed by the last run (its partial record replaced); the invalid user
    // reported once, by that run.
    expect(w.ledger.size).toBe(4);
    expect(w.partial.size).toBe(0);
    expect(w.events.ofType('invalid').map((e) => e.userId)).toEqual(['bad']);
    expect(w.events.ofType('invalid')[0]?.reason).toMatch(/unknown IANA timezone "Mars\/Olympus"/);
    expect(r4.zones?.map((z) => z.done)).toEqual([10, 10, 10]);

    // A run after the end (a resume, a takeover) skips every batch through the ledger and
    // still counts the zones.
    const r5 = await w.runAt(clock, rule, users);
    expect(r5.end).toBe('done');
    expect(w.sent).toHaveLength(30);
    expect(r5.zones?.map((z) => [z.zone, z.users, z.done])).toEqual([
      ['Asia/Tokyo', 10, 10],
      ['UTC', 10, 10],
      ['America/New_York', 10, 10],
    ]);
  });

  it('quiet hours: held until the window ends; beyond maxHoldMinutes missed once, counted from its claim afterwards', async () => {
    // Started 20:59Z; quiet 21:00-08:00, at most 3 hours of hold. Tokyo (05:59 local): 2 h 1 min,
    // held until 23:00Z. New York (15:59 EST): outside, now. UTC: outside by a minute, now.
    const rule: SendRule = { quiet: { start: '21:00', end: '08:00', maxHoldMinutes: 180 }, dueAt: Date.parse('2026-01-15T20:59:00Z') };
    const clock = new FakeClock('2026-01-15T20:59:00Z');
    const w = new World();
    const users = [...people(), { _id: 'kol', email: 'kol@example.test', active: true, timezone: 'Asia/Kolkata' }];
    const r1 = await w.runAt(clock, rule, users);
    expect(r1.end).toBe('waiting');
    expect(new Date(r1.nextAt ?? 0).toISOString()).toBe('2026-01-15T23:00:00.000Z');
    // Kolkata (02:29 local): 5 h 31 min to 08:00 > 3 h: missed, with the reason, once.
    expect(w.events.ofType('missed').map((e) => [e.userId, e.key])).toEqual([['kol', 'b:w:kol']]);
    expect(w.events.ofType('missed')[0]?.reason).toMatch(/quiet hours 21:00-08:00 in Asia\/Kolkata .* more than quietHours.broadcasts.maxHoldMinutes 180/);
    expect(w.claims.done.get('b:w:kol')).toBe('missed');
    expect(r1.counters).toMatchObject({ sent: 20, missed: 1, skipped: 1 });
    expect(w.sent).toHaveLength(20);

    clock.jump(Date.parse('2026-01-15T23:00:00Z') - clock.now());
    const r2 = await w.runAt(clock, rule, users);
    expect(r2.end).toBe('done');
    expect(r2.counters).toMatchObject({ sent: 30, missed: 1, skipped: 1, total: 32 });
    expect(new Set(w.sent).size).toBe(30);
    expect(w.sent).not.toContain('b:w:kol');
    expect(w.events.ofType('missed')).toHaveLength(1);

  });
});

describe('quiet hours and recipients already served', () => {
  it('a recipient served before its window opened is counted from its claim, not held again', async () => {
    // Started 20:59Z, quiet 21:00-08:00 (12 h allowed): UTC goes at once, Tokyo (05:59) at 23:00Z.
    const rule: SendRule = { quiet: { start: '21:00', end: '08:00', maxHoldMinutes: 720 }, dueAt: Date.parse('2026-01-15T20:59:00Z') };
    const clock = new FakeClock('2026-01-15T20:59:00Z');
    const w = new World();
    const users = people().filter((u) => u['timezone'] !== 'America/New_York');
    const r1 = await w.runAt(clock, rule, users);
    expect(r1).toMatchObject({ end: 'waiting', counters: { sent: 10 } });
    // 21:30Z: UTC is inside its window now (held until 08:00 by the rule), but was served.
    clock.jump(Date.parse('2026-01-15T21:30:00Z') - clock.now());
    const owned = w.claims.owned.size;
    const mid = await w.runAt(clock, rule, users);
    expect(mid.end).toBe('waiting');
    expect(new Date(mid.nextAt ?? 0).toISOString()).toBe('2026-01-15T23:00:00.000Z');
    expect(mid.counters).toMatchObject({ sent: 10 });
    expect(mid.zones?.find((z) => z.zone === 'UTC')).toMatchObject({ users: 10, done: 10 });
    expect(w.sent).toHaveLength(10);
    expect(w.claims.owned.size).toBe(owned);
    clock.jump(Date.parse('2026-01-15T23:00:00Z') - clock.now());
    const r2 = await w.runAt(clock, rule, users);
    expect(r2).toMatchObject({ end: 'done', counters: { sent: 20, skipped: 1 } });
    expect(new Set(w.sent).size).toBe(20);
  });
});

describe('decide() and nextAt', () => {
  const at = (iso: string): Date => new Date(iso);
  const now = Date.parse('2026-01-15T10:00:00Z');
  it('a running broadcast waiting for a later instant is not run before it, by anyone', () => {
    expect(decide({ status: 'running', at: undefined, nextAt: at('2026-01-15T10:00:01Z') }, undefined, now)).toBeUndefined();
    expect(decide({ status: 'running', at: undefined, nextAt: at('2026-01-15T10:00:00Z') }, undefined, now)).toBe('run');
    expect(decide({ status: 'running', at: undefined, nextAt: undefined }, undefined, now)).toBe('run');
  });
  it('pause and cancel are applied while it waits; a resume waits for the instant', () => {
    const waiting = { status: 'running' as const, at: undefined, nextAt: at('2026-01-15T12:00:00Z') };
    expect(decide(waiting, 'pause', now)).toBe('paused');
    expect(decide(waiting, 'cancel', now)).toBe('cancelled');
    expect(decide({ ...waiting, status: 'paused' }, 'resume', now)).toBeUndefined();
    expect(decide({ ...waiting, status: 'paused' }, 'resume', Date.parse('2026-01-15T12:00:00Z'))).toBe('run');
  });
});
