/**
 * The broadcast run lease on the real MongoDB-wire server (FerretDB v1: findAndModify is not
 * atomic between clients, so the lease is a unique insert of `lease:<id>:<gen>`):
 * - many daemons racing for one broadcast: exactly one wins;
 * - a live holder keeps it; a released lease or a dead holder's passes to the next generation,
 *   and the old holder sees that it was superseded;
 * - a winner that died between its lease insert and its write of the broadcast document does
 *   not block the broadcast.
 * Also `decide()`: what a daemon does with an open broadcast given the operator's request.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MongoBroadcastStore } from '../../src/adapters/mongo/broadcast-store.js';
import { decide } from '../../src/core/broadcast-supervisor.js';
import { testDb, type TestDb } from '../helpers/db.js';

let db: TestDb;
let store: MongoBroadcastStore;
const alive = new Set<string>();
const isAlive = async (owner: string): Promise<boolean> => alive.has(owner);

beforeAll(async () => {
  db = await testDb('broadcast_lease');
  store = new MongoBroadcastStore(db.db, 'mailwheel_');
});
afterAll(async () => {
  await db?.cleanup();
});

const create = () => store.create({ subject: 'S', text: 'T', segment: '{}' });

describe('run lease', () => {
  it('ten daemons racing for one broadcast: exactly one wins', async () => {
    const doc = await create();
    const owners = Array.from({ length: 10 }, (_, i) => `d${i}`);
    for (const o of owners) alive.add(o);
    const gens = await Promise.all(owners.map((o) => store.acquire(doc, o, isAlive)));
    expect(gens.filter((g) => g !== undefined)).toEqual([1]);
  });

  it('a live holder keeps it; released, it passes on; the old holder learns it was superseded', async () => {
    const doc = await create();
    alive.add('a').add('b');
    expect(await store.acquire(doc, 'a', isAlive)).toBe(1);
    await store.update(doc._id, { status: 'running', owner: 'a', gen: 1 });
    const fresh = async () => (await store.get(doc._id)) ?? doc;
    expect(await store.acquire(await fresh(), 'b', isAlive)).toBeUndefined();
    expect(await store.superseded(doc._id, 1)).toBe(false);
    await store.releaseLease(doc._id, 1);
    expect(await store.acquire(await fresh(), 'b', isAlive)).toBe(2);
    expect(await store.superseded(doc._id, 1)).toBe(true);
    expect(await store.runStore(doc._id, 1, 'a').check()).toBe('superseded');
    expect(await store.runStore(doc._id, 2, 'b').check()).toBe('continue');
  });

  it("a dead holder's lease is taken over, even when the document does not name the latest generation yet", async () => {
    const doc = await create();
    alive.add('c');
    // 'x' won generation 1 and died before writing the broadcast document (still gen 0).
    expect(await store.acquire(doc, 'x', isAlive)).toBe(1);
    expect(await store.acquire(doc, 'c', isAlive)).toBe(2);
  });

  it('operator requests reach the holder through check()', async () => {
    const doc = await create();
    const run = store.runStore(doc._id, 1, 'a');
    expect(await run.check()).toBe('continue');
    await store.requestControl(doc._id, 'pause');
    expect(await run.check()).toBe('pause');
    await store.requestControl(doc._id, 'resume');
    expect(await run.check()).toBe('continue');
    await store.requestControl(doc._id, 'cancel');
    expect(await run.check()).toBe('cancel');
  });

  it('the batch ledger: a confirmed batch is found again, confirming twice is harmless, and it is dropped at the end', async () => {
    const doc = await create();
    const counts = { sent: 240, failed: 2, skipped: 3, suppressed: 5 };
    await store.confirmBatch(doc._id, 'h1', counts);
    await store.confirmBatch(doc._id, 'h1', counts);
    expect(await store.confirmedBatch(doc._id, 'h1')).toEqual(counts);
    expect(await store.confirmedBatch(doc._id, 'h2')).toBeUndefined();
    await store.dropLedger(doc._id);
    expect(await store.confirmedBatch(doc._id, 'h1')).toBeUndefined();
  });

  it('a partial record (keys earlier waves finished) grows, is replaced by the confirmation, never replaces one, and is dropped at the end', async () => {
    const doc = await create();
    const k = (u: string): string => `b:${doc._id}:${u}`;
    expect(await store.partialBatch(doc._id, 'p1')).toBeUndefined();
    await store.recordPartial(doc._id, 'p1', new Map([[k('u.1'), 'sent']]));
    await store.recordPartial(doc._id, 'p1', new Map([[k('u.1'), 'sent'], [k('u$2'), 'missed'], [k('u3'), 'failed']]));
    expect(await store.partialBatch(doc._id, 'p1')).toEqual(new Map([[k('u.1'), 'sent'], [k('u$2'), 'missed'], [k('u3'), 'failed']]));
    expect(await store.confirmedBatch(doc._id, 'p1')).toBeUndefined();
    const counts = { sent: 2, failed: 1, skipped: 0, suppressed: 0, missed: 1 };
    await store.confirmBatch(doc._id, 'p1', counts);
    expect(await store.confirmedBatch(doc._id, 'p1')).toEqual(counts);
    expect(await store.partialBatch(doc._id, 'p1')).toBeUndefined();
    // A late partial write (a run superseded meanwhile) leaves the confirmation as it was.
    await store.recordPartial(doc._id, 'p1', new Map([[k('u.1'), 'sent']]));
    expect(await store.confirmedBatch(doc._id, 'p1')).toEqual(counts);
    await store.recordPartial(doc._id, 'p2', new Map([[k('u4'), 'sent']]));
    await store.dropLedger(doc._id);
    expect(await store.partialBatch(doc._id, 'p2')).toBeUndefined();
    expect(await store.confirmedBatch(doc._id, 'p1')).toBeUndefined();
  });
});

describe('decide', () => {
  const now = Date.parse('2026-03-08T09:00:00Z');
  const later = new Date(now + 60_000);
  it.each([
    ['queued', undefined, undefined, 'run'],
    ['queued', later, undefined, undefined],
    ['queued', later, 'cancel', 'cancelled'],
    ['queued', undefined, 'pause', 'paused'],
    ['queued', undefined, 'resume', 'run'],
    ['running', undefined, undefined, 'run'],
    ['running', undefined, 'pause', 'paused'],
    ['running', undefined, 'cancel', 'cancelled'],
    ['paused', undefined, undefined, undefined],
    ['paused', undefined, 'pause', undefined],
    ['paused', undefined, 'resume', 'run'],
    ['paused', undefined, 'cancel', 'cancelled'],
    ['paused', later, 'resume', undefined],
    ['paused', later, 'cancel', 'cancelled'],
  ] as const)('%s (at %s) with request %s: %s', (status, at, action, expected) => {
    expect(decide({ status, at }, action, now)).toBe(expected);
  });
});
