/**
 * Partitioned users against the ClusterMember port, with a fake member that moves partitions on
 * command (test/helpers/fake-member.ts), an in-memory PartitionMarks with `$max` semantics, the
 * real JobRegistry, UserSync, CatchUp and MinuteLedger, and a FakeClock: the sync holds only the
 * owned partitions' users, a loss writes the mark before the users go, a gain schedules from the
 * mark so the gap's fires are overdue and split by the catch-up rule at the takeover instant, and
 * a gained partition gets marks only once the processed minute has passed the gain.
 */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { CatchUp, MinuteLedger } from '../../src/core/catch-up.js';
import { JobRegistry } from '../../src/core/job-registry.js';
import { partitionOf } from '../../src/core/partition.js';
import { PartitionSync } from '../../src/core/partition-sync.js';
import { scheduledDelivery } from '../../src/core/scheduled-minute.js';
import { epochMinute, MINUTE_MS } from '../../src/core/time.js';
import { UserSync } from '../../src/core/user-sync.js';
import type { PartitionMarks } from '../../src/ports/cluster.js';
import type { RawUser, UserSource } from '../../src/ports/index.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { FakeMember } from '../helpers/fake-member.js';
import { MemoryClaimStore, RecordingEvents, silentLogger } from '../helpers/fakes.js';

const log = silentLogger();
const fields = loadConfig({ env: {} }).config.users.fields;
const P = 4;
/** Monday 2026-01-05 09:30 UTC. */
const NOW = Date.parse('2026-01-05T09:30:00Z');
const M = epochMinute(NOW);
const GRACE = 15 * MINUTE_MS;

/** `n` user ids of partition `p` (of P). */
function idsOf(p: number, n: number, prefix = 'u'): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < n; i++) if (partitionOf(`${prefix}${i}`, P) === p) out.push(`${prefix}${i}`);
  return out;
}

/** A UTC user whose one slot is `minutesBefore` minutes before NOW. */
function user(id: string, minutesBefore = 0, over: RawUser = {}): RawUser {
  const at = new Date(NOW - minutesBefore * MINUTE_MS);
  const hhmm = `${String(at.getUTCHours()).padStart(2, '0')}:${String(at.getUTCMinutes()).padStart(2, '0')}`;
  return { _id: id, email: `${id}@example.test`, active: true, emailTimes: [hhmm], ...over };
}

class ListSource implements UserSource {
  users: RawUser[] = [];
  changed: RawUser[] = [];
  reads = 0;
  async *allActive(): AsyncIterable<RawUser[]> {
    this.reads++;
    yield this.users.map((d) => structuredClone(d));
  }
  async *changedSince(): AsyncIterable<RawUser[]> {
    yield this.changed.map((d) => structuredClone(d));
  }
  async byId(): Promise<RawUser | undefined> {
    return undefined;
  }
}

/** PartitionMarks in memory, `$max` like the MongoDB one; each save notes what the registry held then. */
class MemoryMarks implements PartitionMarks {
  readonly marks = new Map<number, number>();
  readonly saves: Array<{ partitions: number[]; minute: number; usersHeld: number }> = [];
  constructor(readonly registry: JobRegistry) {}
  async load(partitions: readonly number[]): Promise<Map<number, number>> {
    return new Map(partitions.filter((p) => this.marks.has(p)).map((p) => [p, this.marks.get(p) as number]));
  }
  async save(partitions: readonly number[], minute: number): Promise<void> {
    this.saves.push({ partitions: [...partitions].sort(), minute, usersHeld: this.registry.userCount });
    for (const p of partitions) this.marks.set(p, Math.max(this.marks.get(p) ?? -Infinity, minute));
  }
}

function setup(owned: number[]) {
  const clock = new FakeClock(NOW);
  const source = new ListSource();
  const registry = new JobRegistry();
  const events = new RecordingEvents();
  const sync = new UserSync({ source, registry, events, clock }, fields, log);
  const member = new FakeMember(P, owned);
  const marks = new MemoryMarks(registry);
  const claims = new MemoryClaimStore();
  const catchUp = new CatchUp({ claims, events, clock }, { graceMs: GRACE, lookbackMs: 24 * 60 * MINUTE_MS }, log);
  const ledger = new MinuteLedger();
  const state = { processed: undefined as number | undefined, global: undefined as number | undefined, wakes: 0 };
  const partitions = new PartitionSync(
    { member, marks, sync, catchUp, ledger, processed: () => state.processed, globalCheckpoint: async () => state.global, wake: () => void state.wakes++, clock },
    log,
  );
  member.onChange((c) => partitions.handle(c));
  return { clock, source, registry, events, sync, member, marks, claims, catchUp, ledger, state, partitions };
}

const held = (registry: JobRegistry) => [...registry.userIds()].sort();

describe('UserSync in a cluster: only the owned partitions', () => {
  it('full and incremental syncs skip other partitions before validating; a full sync removes only its own users', async () => {
    const { source, registry, events, sync } = setup([0, 1]);
    const mine = [...idsOf(0, 3), ...idsOf(1, 3)];
    const others = [...idsOf(2, 3), ...idsOf(3, 3)];
    const badMine = idsOf(0, 1, 'bad')[0] as string;
    const badOther = idsOf(2, 1, 'bad')[0] as string;
    source.users = [...[...mine, ...others].map((id) => user(id, -10)), user(badMine, 0, { email: 'nope' }), user(badOther, 0, { email: 'nope' })];
    sync.partition(P, [0, 1]);
    const report = await sync.full(NOW);
    expect(held(registry)).toEqual([...mine].sort());
    // The others are not even read: no record, no job, no `invalid` event (their owner reports it).
    expect(report).toMatchObject({ read: 7, valid: 6, invalid: 1, removed: 0, jobs: 6 });
    expect(events.ofType('invalid').map((e) => e.userId)).toEqual([badMine]);

    source.changed = [user(idsOf(1, 4)[3] as string, -10), user(idsOf(3, 4)[3] as string, -10)];
    await sync.incremental();
    expect(held(registry)).toEqual([...mine, idsOf(1, 4)[3]].sort());

    // A user of an owned partition that is gone is removed; nobody else is counted as removed.
    source.users = source.users.filter((d) => d['_id'] !== mine[0]);
    const again = await sync.full(NOW);
    expect(again.removed).toBe(2); // mine[0] and the incremental one, which the full read no longer has
    expect(held(registry)).toEqual(mine.slice(1).sort());
  });

  it('drop cancels only the lost partitions; gain loads only the gained ones, from their instant', async () => {
    const { source, registry, sync } = setup([0, 1]);
    source.users = [0, 1, 2, 3].flatMap((p) => idsOf(p, 2).map((id) => user(id, 5)));
    sync.partition(P, [0, 1]);
    await sync.full(NOW);
    // Slots 5 minutes ago, scheduled from now: tomorrow.
    expect(registry.nextFireMinute()).toBe(M - 5 + 1440);
    expect(await sync.drop([1, 3])).toBe(2);
    expect(held(registry)).toEqual(idsOf(0, 2).sort());
    expect([...(sync.owned ?? [])].sort()).toEqual([0]);

    const report = await sync.gain(new Map([[2, NOW - 10 * MINUTE_MS]]));
    expect(report).toMatchObject({ kind: 'partitions', read: 2, valid: 2 });
    expect(held(registry)).toEqual([...idsOf(0, 2), ...idsOf(2, 2)].sort());
    // Scheduled from 10 minutes ago: today's slot, 5 minutes ago, is overdue.
    expect(registry.takeDue(M - 5).map((j) => j.userId).sort()).toEqual(idsOf(2, 2).sort());
    // A later full sync keeps what is owned now, and does not bring the dropped partitions back.
    await sync.full(NOW);
    expect(held(registry)).toEqual([...idsOf(0, 2), ...idsOf(2, 2)].sort());
  });
});

describe('PartitionSync: start, gain, loss and marks', () => {
  it('starts each owned partition from its own mark; one with no mark from the global checkpoint, pinned there', async () => {
    const { source, registry, marks, partitions, sync } = setup([0, 1]);
    marks.marks.set(0, M - 10);
    source.users = [...idsOf(0, 2).map((id) => user(id, 8)), ...idsOf(1, 2).map((id) => user(id, 8)), ...idsOf(1, 1, 'w').map((id) => user(id, 2))];
    const start = await partitions.start(NOW, M - 3);
    expect(start.from).toEqual(new Map([[0, (M - 9) * MINUTE_MS], [1, (M - 2) * MINUTE_MS]]));
    expect(start.resumedAfter).toBe(M - 10);
    expect(marks.marks.get(1)).toBe(M - 3);
    expect(marks.marks.get(0)).toBe(M - 10);
    expect(partitions.marked).toEqual({ ready: [0, 1], pending: [] });
    await sync.full(NOW, start.from);
    // Partition 0 from M-9: its slot 8 minutes ago is overdue. Partition 1 from M-2: the slot
    // 8 minutes ago was before its checkpoint (tomorrow), the one 2 minutes ago is overdue.
    expect(registry.bucketSizes().filter(([m]) => m < M)).toEqual([[M - 8, 2], [M - 2, 1]]);
    expect(held(registry)).toHaveLength(5);
  });

  it('a gain schedules from the mark: the gap fires are overdue, sent within grace at the takeover, older ones missed', async () => {
    const { clock, source, registry, sync, member, marks, claims, catchUp, events, state, partitions } = setup([0]);
    const p2 = idsOf(2, 3);
    source.users = [...idsOf(0, 1).map((id) => user(id, 20)), user(p2[0] as string, 5), user(p2[1] as string, 20), user(p2[2] as string, 40)];
    catchUp.begin(NOW - 60 * MINUTE_MS);
    marks.marks.set(0, M - 30);
    const start = await partitions.start(NOW, M - 1);
    await sync.full(NOW, start.from);
    state.processed = M;
    marks.marks.set(2, M - 30);
    await member.move({ gained: [2] });
    expect(state.wakes).toBe(1);
    // From the mark + 1: the 20-minute-old and 5-minute-old slots are overdue; the 40-minute one is tomorrow.
    expect(registry.bucketSizes().filter(([m]) => m < M)).toEqual([[M - 20, 2], [M - 5, 1]]);
    const due20 = registry.takeDue(M - 20).map(scheduledDelivery);
    const d20 = due20.find((d) => d.userId === p2[1]) as ReturnType<typeof scheduledDelivery>;
    const own = due20.find((d) => d.userId !== p2[1]) as ReturnType<typeof scheduledDelivery>;
    const d5 = registry.takeDue(M - 5).map(scheduledDelivery)[0] as ReturnType<typeof scheduledDelivery>;
    expect(d5.userId).toBe(p2[0]);
    // Judged at the takeover (now), not at the start an hour ago, however late they are handed out.
    clock.advance(30 * MINUTE_MS);
    const split = catchUp.split([d5, d20]);
    expect(split.send.map((d) => d.userId)).toEqual([p2[0]]);
    expect(split.missed.map((d) => d.userId)).toEqual([p2[1]]);
    expect(await catchUp.recordMissed(split.missed)).toBe(1);
    expect(events.ofType('missed')[0]?.reason).toMatch(/1200 s before this instance took its partition over \(grace 900 s\)/);
    expect(claims.done.get(d20.key)).toBe('missed');
    // Partition 0's own fires are still judged at the start: an hour-old one was missed at the start anyway.
    // Partition 0's own fire (20 minutes old) is judged at the start, an hour ago: it was not due yet then.
    expect(own.userId).toBe(idsOf(0, 1)[0]);
    expect(catchUp.split([own])).toEqual({ send: [own], missed: [] });
  });

  it('a partition unowned for longer than the lookback: scheduled from the lookback, the rest recorded as one uncovered range', async () => {
    const { source, registry, member, marks, events, sync, partitions } = setup([0]);
    source.users = idsOf(1, 2).map((id) => user(id, 60));
    const start = await partitions.start(NOW, M - 1);
    await sync.full(NOW, start.from);
    marks.marks.set(1, M - 3 * 24 * 60);
    await member.move({ gained: [1] });
    // The lookback is 24 h: the slot an hour ago is overdue, the two days before are not enumerated.
    expect(registry.bucketSizes().filter(([m]) => m < M)).toEqual([[M - 60, 2]]);
    const uncovered = events.ofType('missed');
    expect(uncovered).toHaveLength(1);
    expect(uncovered[0]?.reason).toBe(`fires from ${new Date((M - 3 * 24 * 60 + 1) * MINUTE_MS).toISOString()} to ${new Date((M - 24 * 60) * MINUTE_MS).toISOString()} not enumerated: downtime longer than the catch-up lookback`);
  });

  it('a gained partition gets marks only once the processed minute has passed the gain; a loss writes the mark before its users go', async () => {
    const { source, registry, member, marks, ledger, state, partitions, sync } = setup([0]);
    source.users = [0, 1].flatMap((p) => idsOf(p, 2).map((id) => user(id, -30)));
    const start = await partitions.start(NOW, M - 1);
    await sync.full(NOW, start.from);
    state.processed = M;
    await partitions.write();
    expect(marks.marks.get(0)).toBe(M);
    marks.marks.set(1, M - 4);
    await member.move({ gained: [1] });
    expect(partitions.marked).toEqual({ ready: [0], pending: [1] });
    // The overdue fires of partition 1 are not handed out yet: its mark stays where it was.
    await partitions.write();
    expect(marks.marks.get(1)).toBe(M - 4);
    state.processed = M + 1;
    ledger.begin(M + 1, 2);
    await partitions.write();
    // Minute M+1 still has deliveries open: both at M.
    expect(marks.marks.get(1)).toBe(M);
    expect(partitions.marked).toEqual({ ready: [0, 1], pending: [] });
    ledger.settle(M + 1, 2);
    const before = marks.saves.length;
    await member.move({ lost: [0] });
    const lossSave = marks.saves[before];
    expect(lossSave).toEqual({ partitions: [0], minute: M + 1, usersHeld: 4 });
    expect(marks.marks.get(0)).toBe(M + 1);
    expect(held(registry)).toEqual(idsOf(1, 2).sort());
    // After the loss only partition 1 is written.
    state.processed = M + 2;
    await partitions.write();
    expect(marks.saves.at(-1)).toMatchObject({ partitions: [1], minute: M + 2 });
    expect(marks.marks.get(0)).toBe(M + 1);
  });
});
