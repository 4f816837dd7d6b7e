/**
 * UserSync with a scripted user source, the real JobRegistry, a recording EventRecorder and a
 * FakeClock: which users end up scheduled, which are cancelled, which are reported invalid (once),
 * and which `since` an incremental sync asks for.
 */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { JobRegistry } from '../../src/core/job-registry.js';
import { UserSync } from '../../src/core/user-sync.js';
import type { RawUser, UserSource } from '../../src/ports/index.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { RecordingEvents, silentLogger } from '../helpers/fakes.js';

const log = silentLogger();
const fields = loadConfig({ env: {} }).config.users.fields;
const ms = (iso: string): number => Date.parse(iso);

/** Monday 2026-01-05, 08:00 UTC (New York is on EST, UTC-5, in January). */
const T0 = '2026-01-05T08:00:00Z';

function doc(id: string, over: RawUser = {}): RawUser {
  return { _id: id, email: `${id}@example.test`, active: true, emailTimes: ['09:00'], ...over };
}

/**
 * A user source answering from arrays set by the test: `active` for full syncs, `changed` for
 * incremental ones (returned whatever `since` is; the test checks `since` itself).
 */
class ScriptedSource implements UserSource {
  active: RawUser[][] = [];
  changed: RawUser[][] = [];
  readonly sinceAsked: Date[] = [];
  fullReads = 0;
  /** Runs between batches (e.g. to move the clock while a sync is in progress). */
  betweenBatches: (() => void | Promise<void>) | undefined;

  allActive(): AsyncIterable<RawUser[]> {
    this.fullReads++;
    return this.#iterate(this.active);
  }

  changedSince(since: Date): AsyncIterable<RawUser[]> {
    this.sinceAsked.push(since);
    return this.#iterate(this.changed);
  }

  async byId(): Promise<RawUser | undefined> {
    return undefined;
  }

  async *#iterate(batches: RawUser[][]): AsyncIterable<RawUser[]> {
    for (const [i, b] of batches.entries()) {
      if (i > 0) await this.betweenBatches?.();
      yield b.map((d) => structuredClone(d));
    }
  }
}


function setup(start = T0) {
  const clock = new FakeClock(start);
  const source = new ScriptedSource();
  const registry = new JobRegistry();
  const events = new RecordingEvents();
  const sync = new UserSync({ source, registry, events, clock }, fields, log);
  return { clock, source, registry, events, sync };
}

/** A user's jobs as `HH:MM@localDate -> fire instant` for readable comparisons. */
function jobsOf(registry: JobRegistry, userId: string): string[] {
  return registry.jobsOf(userId).map((j) => `${j.time}@${j.localDate}=${new Date(j.fireAt).toISOString()}`);
}

describe('UserSync: full sync', () => {
  it('schedules valid users across batches and reports each invalid user once, with the reason', async () => {
    const { source, registry, events, sync } = setup();
    source.active = [
      [doc('a', { emailTimes: ['18:30', '09:00'] }), doc('bad-email', { email: 'not an address' })],
      [doc('ny', { timezone: 'America/New_York', emailTimes: ['07:00'] }), doc('bad-zone', { timezone: 'Mars/Base' })],
      [doc('bad-time', { emailTimes: ['9:00'] })],
    ];
    const report = await sync.full();

    // Fire instants worked out by hand: 'a' is in UTC; 07:00 EST is 12:00Z.
    expect(jobsOf(registry, 'a')).toEqual(['09:00@2026-01-05=2026-01-05T09:00:00.000Z', '18:30@2026-01-05=2026-01-05T18:30:00.000Z']);
    expect(jobsOf(registry, 'ny')).toEqual(['07:00@2026-01-05=2026-01-05T12:00:00.000Z']);
    expect([...registry.userIds()].sort()).toEqual(['a', 'ny']);
    expect(registry.size).toBe(3);

    const invalid = events.ofType('invalid');
    expect(events.events.length).toBe(invalid.length);
    expect(invalid.map((e) => e.userId).sort()).toEqual(['bad-email', 'bad-time', 'bad-zone']);
    const reasonOf = (id: string) => invalid.find((e) => e.userId === id)?.reason ?? '';
    expect(reasonOf('bad-email')).toMatch(/^email:/);
    expect(reasonOf('bad-zone')).toMatch(/^timezone:/);
    expect(reasonOf('bad-time')).toMatch(/^emailTimes:/);
    for (const e of invalid) expect(e.at.getTime()).toBe(ms(T0));

    expect(report).toMatchObject({ kind: 'full', read: 5, valid: 2, invalid: 3, inactive: 0, removed: 0, jobs: 3 });
  });

  it('schedules from the given instant: a slot already past today fires tomorrow', async () => {
    const { source, registry, sync } = setup();
    source.active = [[doc('a', { emailTimes: ['07:59', '08:00'] })]];
    await sync.full();
    expect(jobsOf(registry, 'a')).toEqual(['07:59@2026-01-06=2026-01-06T07:59:00.000Z', '08:00@2026-01-05=2026-01-05T08:00:00.000Z']);
  });

  it('drops users that a later full sync no longer sees', async () => {
    const { source, registry, sync } = setup();
    source.active = [[doc('a'), doc('b', { emailTimes: ['10:00', '11:00'] })], [doc('c')]];
    await sync.full();
    expect([...registry.userIds()].sort()).toEqual(['a', 'b', 'c']);

    source.active = [[doc('a')], [doc('c')]];
    const report = await sync.full();
    expect([...registry.userIds()].sort()).toEqual(['a', 'c']);
    expect(registry.jobsOf('b')).toEqual([]);
    expect(registry.size).toBe(2);
    expect(report.removed).toBe(1);
  });

  it('a user who turned invalid loses their jobs', async () => {
    const { source, registry, events, sync } = setup();
    source.active = [[doc('a')]];
    await sync.full();
    expect(registry.jobsOf('a').length).toBe(1);
    source.changed = [[doc('a', { emailTimes: ['25:00'] })]];
    await sync.incremental();
    expect(registry.jobsOf('a')).toEqual([]);
    expect(events.ofType('invalid').map((e) => e.userId)).toEqual(['a']);
  });
});

describe('UserSync: users whose schedule did not change are skipped (issue 17)', () => {
  it('a second full sync keeps unchanged users as they are and rebuilds only the changed one', async () => {
    const { clock, source, registry, sync } = setup();
    source.active = [[doc('a', { emailTimes: ['09:00', '18:30'] }), doc('b', { timezone: 'Asia/Tokyo', emailDays: [1, 3] })], [doc('c')]];
    await sync.full();
    const before = new Map(['a', 'b', 'c'].map((id) => [id, registry.jobsOf(id)]));
    clock.advance(10 * 60_000);
    source.active = [[doc('a', { emailTimes: ['18:30', '09:00'], name: 'Renamed' }), doc('b', { timezone: 'Asia/Tokyo', emailDays: [1, 3] })], [doc('c', { emailTimes: ['10:00'] })]];
    const report = await sync.full();
    expect(report).toMatchObject({ read: 3, valid: 3, unchanged: 2, removed: 0 });
    // Kept: the very same rows and generations (a rebuild would hand out new ones); the new name
    // is taken all the same.
    expect(registry.jobsOf('a')).toEqual(before.get('a')?.map((j) => ({ ...j, name: 'Renamed' })));
    expect(registry.jobsOf('b')).toEqual(before.get('b'));
    expect(jobsOf(registry, 'c')).toEqual(['10:00@2026-01-05=2026-01-05T10:00:00.000Z']);
  });

  it('an incremental sync skips a user whose schedule did not change', async () => {
    const { source, registry, sync } = setup();
    source.active = [[doc('a')]];
    await sync.full();
    source.changed = [[doc('a', { name: 'Only the name changed' })]];
    expect((await sync.incremental()).unchanged).toBe(1);
    expect(jobsOf(registry, 'a')).toEqual(['09:00@2026-01-05=2026-01-05T09:00:00.000Z']);
  });
});

describe('UserSync: invalid users are reported once', () => {
  it('is not reported again by later full or incremental syncs while the reason stays the same', async () => {
    const { clock, source, events, sync } = setup();
    const bad = doc('bad', { email: 'nope' });
    source.active = [[doc('a'), bad]];
    source.changed = [[bad]];
    await sync.full();
    expect(events.ofType('invalid').length).toBe(1);

    clock.advance(5 * 60_000);
    await sync.incremental();
    clock.advance(5 * 60_000);
    await sync.full();
    clock.advance(5 * 60_000);
    await sync.incremental();
    expect(events.ofType('invalid').length).toBe(1);
  });

  it('is reported again when its reason changes', async () => {
    const { clock, source, events, sync } = setup();
    source.active = [[doc('bad', { email: 'nope' })]];
    await sync.full();
    clock.advance(60_000);
    source.changed = [[doc('bad', { timezone: 'Nowhere/Land' })]];
    await sync.incremental();
    clock.advance(60_000);
    await sync.incremental();
    const reasons = events.ofType('invalid').map((e) => e.reason ?? '');
    expect(reasons.length).toBe(2);
    expect(reasons[0]).toMatch(/^email:/);
    expect(reasons[1]).toMatch(/^timezone:/);
  });
});

describe('UserSync: incremental sync', () => {
  it('cancels the jobs of a user who became inactive or unsubscribed, and reports no event for them', async () => {
    const { clock, source, registry, events, sync } = setup();
    source.active = [[doc('a'), doc('b'), doc('c')]];
    await sync.full();
    expect(registry.size).toBe(3);

    clock.advance(5 * 60_000);
    source.changed = [[doc('a', { active: false }), doc('b', { unsubscribed: true })]];
    const report = await sync.incremental();
    expect(registry.jobsOf('a')).toEqual([]);
    expect(registry.jobsOf('b')).toEqual([]);
    expect(registry.jobsOf('c').length).toBe(1);
    expect([...registry.userIds()]).toEqual(['c']);
    expect(events.events).toEqual([]);
    expect(report).toMatchObject({ kind: 'incremental', read: 2, inactive: 2, valid: 0 });
  });

  it('reschedules a changed user from the time of the sync (new zone, new times)', async () => {
    const { clock, source, registry, sync } = setup();
    source.active = [[doc('a', { emailTimes: ['09:00'] })]];
    await sync.full();
    clock.advance(30 * 60_000); // 08:30Z
    source.changed = [[doc('a', { timezone: 'Asia/Tokyo', emailTimes: ['20:00', '18:00'] })]];
    await sync.incremental();
    // Tokyo is UTC+9 (no DST): 18:00 and 20:00 local on 2026-01-05 are 09:00Z and 11:00Z.
    expect(jobsOf(registry, 'a')).toEqual(['18:00@2026-01-05=2026-01-05T09:00:00.000Z', '20:00@2026-01-05=2026-01-05T11:00:00.000Z']);
  });

  it('asks for changes since a moment at or before the previous sync started', async () => {
    const { clock, source, sync } = setup();
    source.active = [[doc('a')], [doc('b')], [doc('c')]];
    // The full sync takes (fake) time: 2 minutes pass between batches.
    source.betweenBatches = () => clock.jump(2 * 60_000);
    const fullStart = clock.now();
    await sync.full();
    expect(clock.now()).toBe(fullStart + 4 * 60_000);

    source.betweenBatches = undefined;
    clock.advance(60_000);
    const incStart = clock.now();
    await sync.incremental();
    clock.advance(5 * 60_000);
    await sync.incremental();

    const [first, second] = source.sinceAsked.map((d) => d.getTime());
    // A user updated while the full sync was running may have been read before the update:
    // the window must reach back to the start of the previous sync, not its end.
    expect(first).toBeLessThanOrEqual(fullStart);
    expect(second).toBeLessThanOrEqual(incStart);
    // ...but an incremental sync must not degenerate into rereading everything.
    expect(fullStart - (first ?? 0)).toBeLessThanOrEqual(5 * 60_000);
    expect(incStart - (second ?? 0)).toBeLessThanOrEqual(5 * 60_000);
    expect(source.fullReads).toBe(1);
  });

  it('without a previous sync, does a full sync', async () => {
    const { source, registry, sync } = setup();
    source.active = [[doc('a')]];
    const report = await sync.incremental();
    expect(report.kind).toBe('full');
    expect(source.fullReads).toBe(1);
    expect(source.sinceAsked).toEqual([]);
    expect(registry.jobsOf('a').length).toBe(1);
  });

  it('never overlaps a running sync: an incremental requested during a full sync runs after it', async () => {
    const { source, sync } = setup();
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    source.active = [[doc('a')], [doc('b')]];
    source.betweenBatches = () => gate;
    const order: string[] = [];
    const full = sync.full().then((r) => order.push(r.kind));
    await new Promise((r) => setImmediate(r));
    const inc = sync.incremental().then((r) => order.push(r.kind));
    await new Promise((r) => setImmediate(r));
    expect(source.sinceAsked).toEqual([]);
    release();
    await Promise.all([full, inc]);
    expect(order).toEqual(['full', 'incremental']);
    expect(source.sinceAsked.length).toBe(1);
  });
});

describe('UserSync: incremental syncs take at most their share of the time (issue 17)', () => {
  it('a sync that took d defers the next until d / share after its start, and the deferred window is read by the next one', async () => {
    const clock = new FakeClock(T0);
    const source = new ScriptedSource();
    const registry = new JobRegistry();
    const sync = new UserSync({ source, registry, events: new RecordingEvents(), clock }, fields, log, { incrementalMaxShare: 0.25 });
    source.active = [[doc('a')]];
    await sync.full();
    const fullReport = sync.lastReport;

    // The first incremental sync reads for 60 s (a scan on a database without the index).
    clock.advance(5 * 60_000);
    const firstStart = clock.now();
    source.changed = [[doc('a')], [doc('b')]];
    source.betweenBatches = () => clock.advance(60_000);
    const first = await sync.incremental();
    expect(first).toMatchObject({ kind: 'incremental', read: 2, ms: 60_000 });
    expect(first.deferred).toBeUndefined();
    source.betweenBatches = undefined;

    // 60 s / 0.25 = 240 s after its start: a tick at +239 s is deferred, reads nothing, and the
    // last report stays that of the sync that ran.
    clock.advance(firstStart + 239_000 - clock.now());
    source.changed = [[doc('c')]];
    const asked = source.sinceAsked.length;
    const deferred = await sync.incremental();
    expect(deferred).toMatchObject({ kind: 'incremental', deferred: true, read: 0, jobs: registry.size });
    expect(source.sinceAsked.length).toBe(asked);
    expect(registry.jobsOf('c')).toEqual([]);
    expect(sync.lastReport).toBe(first);
    expect(sync.lastReport).not.toBe(fullReport);

    // At +240 s it runs, from the last sync's start (less the clock-skew overlap): c is seen.
    clock.advance(firstStart + 240_000 - clock.now());
    const next = await sync.incremental();
    expect(next.deferred).toBeUndefined();
    expect(next.read).toBe(1);
    expect(source.sinceAsked.at(-1)?.getTime()).toBe(firstStart - 60_000);
    expect(registry.jobsOf('c').length).toBe(1);
  });

  it('without the option nothing is deferred', async () => {
    const { clock, source, sync } = setup();
    source.active = [[doc('a')]];
    await sync.full();
    source.changed = [[doc('a')], [doc('b')]];
    source.betweenBatches = () => clock.advance(60_000);
    await sync.incremental();
    source.betweenBatches = undefined;
    clock.advance(1_000);
    expect((await sync.incremental()).deferred).toBeUndefined();
  });
});
