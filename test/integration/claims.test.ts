/**
 * Claims against the real MongoDB-wire server: two instances racing for the same keys split them
 * with no overlap; a dead owner's unfinished claims are recovered by exactly one instance; a
 * finished claim is never recovered; a live owner's claim is left alone.
 */
import { spawn } from 'node:child_process';
import { hostname } from 'node:os';
import { MongoClient, type CommandStartedEvent } from 'mongodb';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MongoClaimStore } from '../../src/adapters/mongo/claim-store.js';
import { broadcastKey } from '../../src/core/delivery-key.js';
import { InstanceRegistry } from '../../src/adapters/mongo/instance-registry.js';
import type { DeliveryDoc, InstanceDoc } from '../../src/adapters/mongo/store.js';
import { testDb, type TestDb } from '../helpers/db.js';
import { silentLogger } from '../helpers/fakes.js';

const log = silentLogger();
let db: TestDb;
const started: InstanceRegistry[] = [];

async function instance(): Promise<{ reg: InstanceRegistry; claims: MongoClaimStore }> {
  const reg = new InstanceRegistry(db.db.collection<InstanceDoc>('mailwheel_instances'), 30_000, log);
  await reg.start();
  started.push(reg);
  return { reg, claims: new MongoClaimStore(db.db.collection<DeliveryDoc>('mailwheel_deliveries'), reg) };
}

const keys = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `s:${prefix}${i}:09:00:2027-01-15`);

beforeAll(async () => {
  db = await testDb('claims');
});
afterAll(async () => {
  for (const r of started) await r.stop();
  await db?.cleanup();
});

it('two instances claiming the same keys at once split them with no overlap', async () => {
  const [a, b] = await Promise.all([instance(), instance()]);
  const all = keys('race', 1000);
  const [ra, rb] = await Promise.all([a.claims.claim(all), b.claims.claim(all)]);
  const mineA = new Set(ra.claimed);
  expect(rb.claimed.filter((k) => mineA.has(k))).toEqual([]);
  expect(ra.claimed.length + rb.claimed.length).toBe(all.length);
  expect(new Set([...ra.claimed, ...rb.claimed]).size).toBe(all.length);
});

it("a dead owner's unfinished claims are recovered by exactly one instance; finished ones by none", async () => {
  const dead = await instance();
  const all = keys('dead', 300);
  expect((await dead.claims.claim(all)).claimed).toHaveLength(300);
  // The first 100 were sent before the owner died.
  await dead.claims.complete(all.slice(0, 100).map((key) => ({ key, status: 'sent' as const })));
  await dead.reg.stop(); // gone: no heartbeat document any more

  const [a, b] = await Promise.all([instance(), instance()]);
  const [ra, rb] = await Promise.all([a.claims.claim(all), b.claims.claim(all)]);
  const recovered = [...ra.claimed, ...rb.claimed];
  expect(new Set(recovered).size).toBe(recovered.length);
  expect(recovered.sort()).toEqual(all.slice(100).sort());
  expect(a.claims.stats.takenOver + b.claims.stats.takenOver).toBe(200);
});

it("a live owner's claims are left alone, and released claims can be claimed again", async () => {
  const owner = await instance();
  const other = await instance();
  const all = keys('live', 50);
  await owner.claims.claim(all);
  const r = await other.claims.claim(all);
  expect(r.claimed).toEqual([]);
  expect(r.taken).toHaveLength(50);

  await owner.claims.release(all.slice(0, 20));
  const again = await other.claims.claim(all);
  expect(again.claimed.sort()).toEqual(all.slice(0, 20).sort());
});

it('a crashed process on this host is dead at once, even while its last heartbeat is fresh', async () => {
  // A real process that has exited: its pid no longer exists.
  const child = spawn(process.execPath, ['-e', '0']);
  const pid = child.pid as number;
  await new Promise((r) => child.on('exit', r));
  const ghost = `${hostname()}:${pid}:crashed`;
  await db.db.collection<InstanceDoc>('mailwheel_instances').insertOne({ _id: ghost, host: hostname(), pid, startedAt: new Date(), heartbeatAt: new Date() });
  const all = keys('crashed', 20);
  await db.db.collection<DeliveryDoc>('mailwheel_deliveries').insertMany(
    all.map((k) => ({ _id: k, type: 'claim' as const, kind: 'scheduled' as const, userId: k, owner: ghost, gen: `g-${k}`, at: new Date() })),
  );
  const { claims } = await instance();
  const r = await claims.claim(all);
  expect(r.claimed.sort()).toEqual([...all].sort());
  expect(claims.stats.takenOver).toBe(20);
});

it('a delivery claimed under the key an older version gave it (untyped id) is not claimed again; a new-format claim of a look-alike id does not block', async () => {
  const { claims } = await instance();
  const { reg: oldLive } = await instance();
  const col = db.db.collection<DeliveryDoc>('mailwheel_deliveries');
  const at = new Date();
  // Written by the version before typed ids: `_id: 1` (and the hex string) printed untagged.
  const old = { type: 'claim' as const, kind: 'scheduled' as const, owner: 'gone', gen: 'g', at };
  await col.insertMany([
    { ...old, _id: 's:1:09:00:2027-02-01', userId: '1' },
    { _id: 's:1:09:00:2027-02-01#done', type: 'done', key: 's:1:09:00:2027-02-01', status: 'sent', at },
    // In flight at a live old instance: it will finish it.
    { ...old, kind: 'broadcast', _id: 'b:B1:65f0a1b2c3d4e5f6a7b8c9d0', userId: '65f0a1b2c3d4e5f6a7b8c9d0', owner: oldLive.id },
    // Unfinished by an instance that is gone: a takeover would have sent it; so does the new key.
    { ...old, _id: 's:4:09:00:2027-02-01', userId: '4' },
  ]);
  const r = await claims.claim(['s:n:1:09:00:2027-02-01', 'b:B1:s:65f0a1b2c3d4e5f6a7b8c9d0', 's:n:2:09:00:2027-02-01', 's:n:4:09:00:2027-02-01']);
  expect(r.claimed.sort()).toEqual(['s:n:2:09:00:2027-02-01', 's:n:4:09:00:2027-02-01']);
  expect(r.taken.sort()).toEqual(['b:B1:s:65f0a1b2c3d4e5f6a7b8c9d0', 's:n:1:09:00:2027-02-01']);
  expect([...(r.finished ?? [])]).toEqual([['s:n:1:09:00:2027-02-01', 'sent']]);

  // After the upgrade, `_id: "3"` claims `s:3:...`; `_id: 3` (`s:n:3:...`) is another user.
  expect((await claims.claim(['s:3:09:00:2027-02-01'])).claimed).toEqual(['s:3:09:00:2027-02-01']);
  expect((await claims.claim(['s:n:3:09:00:2027-02-01'])).claimed).toEqual(['s:n:3:09:00:2027-02-01']);
});

it("a user whose id is another user's id + '#done' is its own broadcast delivery, not the other's done record", async () => {
  const { claims } = await instance();
  const x = broadcastKey('B2', 'x');
  expect((await claims.claim([x])).claimed).toEqual([x]);
  await claims.complete([{ key: x, status: 'sent' }]);
  const xDone = broadcastKey('B2', 'x#done');
  expect((await claims.claim([xDone])).claimed).toEqual([xDone]);
  // And the other way round: the claim of `x#done` does not read as `y` being done.
  const yDone = broadcastKey('B2', 'y#done');
  expect((await claims.claim([yDone])).claimed).toEqual([yDone]);
  const y = broadcastKey('B2', 'y');
  expect((await claims.claim([y])).claimed).toEqual([y]);
});

it('taking over a batch costs a fixed number of round trips, not one or two per key', async () => {
  // FerretDB v1 answers every read, update and delete by `_id` with a scan of the collection, so
  // a write per key taken over made a broadcast takeover after a crash grow with batch x table
  // (issue 11). Counted as commands, not timed.
  const client = new MongoClient(db.uri, { monitorCommands: true });
  await client.connect();
  try {
    const dead = await instance();
    const all = keys('bulk', 250);
    await dead.claims.claim(all);
    await dead.claims.complete(all.slice(0, 50).map((key) => ({ key, status: 'sent' as const })));
    await dead.reg.stop();
    const reg = new InstanceRegistry(client.db(db.dbName).collection<InstanceDoc>('mailwheel_instances'), 30_000, log);
    await reg.start();
    started.push(reg);
    const claims = new MongoClaimStore(client.db(db.dbName).collection<DeliveryDoc>('mailwheel_deliveries'), reg);
    const commands: string[] = [];
    const onCommand = (e: CommandStartedEvent) => {
      const target = e.command[e.commandName];
      if (target === 'mailwheel_deliveries') commands.push(e.commandName);
    };
    client.on('commandStarted', onCommand);
    const r = await claims.claim(all);
    client.off('commandStarted', onCommand);
    expect(r.claimed.sort()).toEqual(all.slice(50).sort());
    expect(r.finished?.size).toBe(50);
    expect(claims.stats.takenOver).toBe(200);
    // The claim insert, one read of claims and outcomes, one of the takeover chain, one insert
    // of the new links: no update, no per-key command.
    expect(commands).toEqual(['insert', 'find', 'find', 'insert']);
    // And the keys are really ours now: a third instance finds them owned by a live one.
    const third = await instance();
    expect((await third.claims.claim(all.slice(50))).claimed).toEqual([]);
  } finally {
    await client.close();
  }
});

it('a key taken over by an instance that then dies too is taken over again, by exactly one', async () => {
  const first = await instance();
  const all = keys('chain', 40);
  await first.claims.claim(all);
  await first.reg.stop();
  const second = await instance();
  expect((await second.claims.claim(all)).claimed.sort()).toEqual([...all].sort());
  await second.claims.complete(all.slice(0, 10).map((key) => ({ key, status: 'sent' as const })));
  await second.reg.stop();
  const [a, b] = await Promise.all([instance(), instance()]);
  const [ra, rb] = await Promise.all([a.claims.claim(all), b.claims.claim(all)]);
  const recovered = [...ra.claimed, ...rb.claimed];
  expect(recovered.sort()).toEqual(all.slice(10).sort());
  expect(ra.finished?.size).toBe(10);
  // Held by a live instance now: nobody else gets them.
  const c = await instance();
  expect((await c.claims.claim(all)).claimed).toEqual([]);
});
