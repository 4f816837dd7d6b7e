/**
 * Partitioned users on the real FerretDB and a real SMTP server, with fake cluster members (our
 * port, test/helpers/fake-member.ts) moving partitions on command, so the partition handling is
 * tested whatever leases them:
 * - the MongoDB partition marks: one bulk write per save, `$in` load, `$max` never moving back;
 * - an instance that takes partitions over sends the fires that fell due in the gap within the
 *   grace period, exactly once across two instances (the old owner's sends are deduped by their
 *   claims), and each instance holds only its partitions' users;
 * - a partition nobody held for longer than the grace period: its fires are `missed` events,
 *   not silence;
 * - the gap fires a dead owner on another host had claimed but not sent look busy until its
 *   heartbeat is stale: the second look sends them then, once each.
 */
import { DateTime } from 'luxon';
import { afterAll, afterEach, beforeAll, expect, it, vi } from 'vitest';
import { MongoPartitionMarks, partitionMarkId } from '../../src/adapters/mongo/partition-marks.js';
import { MalformedDocumentError } from '../../src/adapters/mongo/decode.js';
import type { StateDoc } from '../../src/adapters/mongo/store.js';
import { scheduledKey } from '../../src/core/delivery-key.js';
import { partitionOf } from '../../src/core/partition.js';
import { epochMinute, MINUTE_MS } from '../../src/core/time.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { testDb, type TestDb } from '../helpers/db.js';
import { FakeMember } from '../helpers/fake-member.js';
import { TestSmtpServer } from '../helpers/smtp-server.js';
import { usersDueAt } from '../helpers/users.js';

const P = 4;
let db: TestDb;
let smtp: TestSmtpServer;
const apps: TestApp[] = [];

beforeAll(async () => {
  smtp = await TestSmtpServer.start();
});

afterEach(async () => {
  for (const t of apps.splice(0)) await t.app.close();
  smtp.reset();
  await db?.cleanup();
});

afterAll(async () => {
  await smtp?.close();
});

const config = (graceMs: number, claimStaleMs = 60_000) => ({ cluster: { partitions: P }, send: { catchUpGraceMs: graceMs, claimStaleMs }, analytics: { flushIntervalMs: 50 } });

async function start(member: FakeMember, graceMs: number, claimStaleMs?: number): Promise<TestApp> {
  const t = await startTestApp(db.uri, smtp.url, config(graceMs, claimStaleMs), { member });
  apps.push(t);
  await t.app.start();
  return t;
}

const isoMinute = (minute: number) => new Date(minute * MINUTE_MS).toISOString();
const partitionOfDoc = (d: { _id: unknown }) => partitionOf(String(d._id), P);

it('partition marks: one document per partition, loaded by set, only ever moving forward', async () => {
  db = await testDb('partition_marks');
  const col = db.db.collection<StateDoc>('mailwheel_state');
  const a = new MongoPartitionMarks(col, 'a');
  const b = new MongoPartitionMarks(col, 'b');
  expect(await a.load([0, 1, 2])).toEqual(new Map());
  await a.save([0, 1, 2, 3], 100);
  await b.save([1, 2], 90);
  await b.save([2, 5], 120);
  expect(await a.load([0, 1, 2, 3, 4, 5])).toEqual(new Map([[0, 100], [1, 100], [2, 120], [3, 100], [5, 120]]));
  expect(await col.findOne({ _id: partitionMarkId(2) })).toMatchObject({ lastMinute: 120, instance: 'b' });
  // The scheduler checkpoint in the same collection is not a partition mark.
  await col.insertOne({ _id: 'scheduler', lastMinute: 1, updatedAt: new Date() });
  expect((await a.load([0])).get(0)).toBe(100);
  await col.updateOne({ _id: partitionMarkId(3) }, { $set: { lastMinute: null as never } });
  await expect(a.load([3])).rejects.toThrow(MalformedDocumentError);
  await expect(a.load([3])).rejects.toThrow(/_id "partition:3": field lastMinute/);
});

it('partitions taken over: the gap fires go out within grace, exactly once across two instances', { timeout: 120_000 }, async () => {
  db = await testDb('partition_takeover');
  const now = Date.now();
  const due = epochMinute(now) - 1;
  const users = usersDueAt(32, isoMinute(due), 'p');
  await db.db.collection('users').insertMany(users);
  const marks = new MongoPartitionMarks(db.db.collection<StateDoc>('mailwheel_state'), 'test');
  await marks.save([0, 1, 2, 3], due - 1);
  const ofA = users.filter((u) => partitionOfDoc(u as { _id: unknown }) < 2);
  const ofB = users.filter((u) => partitionOfDoc(u as { _id: unknown }) >= 2);
  expect(ofA.length).toBeGreaterThan(0);
  expect(ofB.length).toBeGreaterThan(0);

  // A holds partitions 0 and 1 only; 2 and 3 are held by nobody. A catches its own up at start.
  const memberA = new FakeMember(P, [0, 1], 'A');
  const a = await start(memberA, 10 * MINUTE_MS);
  expect(memberA.started).toBe(true);
  expect(a.app.registry.userCount).toBe(ofA.length);
  await vi.waitFor(() => expect(smtp.messages.length).toBe(ofA.length), { timeout: 60_000, interval: 100 });
  // A stops without a trace of its marks (a crash before its mark moved past the due minute).
  await a.app.close();
  await db.db.collection<StateDoc>('mailwheel_state').deleteMany({ _id: { $in: [0, 1].map(partitionMarkId) } });
  await marks.save([0, 1], due - 1);

  // B starts with nothing and takes every partition over: it re-fires the due minute for all.
  const memberB = new FakeMember(P, [], 'B');
  const b = await start(memberB, 10 * MINUTE_MS);
  expect(b.app.registry.userCount).toBe(0);
  await memberB.move({ gained: [0, 1, 2, 3] });
  expect(b.app.registry.userCount).toBe(users.length);
  await vi.waitFor(() => expect(smtp.messages.length).toBe(users.length), { timeout: 60_000, interval: 100 });
  await vi.waitFor(() => expect(b.app.ledger.open).toBe(0), { timeout: 30_000, interval: 100 });
  const counts = smtp.countByRecipient();
  expect(counts.size).toBe(users.length);
  expect([...counts.values()].every((n) => n === 1)).toBe(true);
  // All were handed out late, within grace; A's were claimed already (no second mail).
  expect(b.app.catchUp.stats).toMatchObject({ lateSent: users.length, missed: 0 });
  expect(b.app.claims.stats).toMatchObject({ taken: ofA.length, claimed: ofB.length });
  // B writes the marks of all four once its processed minute has passed the gain.
  await vi.waitFor(async () => {
    const m = await marks.load([0, 1, 2, 3]);
    expect([...m.values()].every((v) => v >= due)).toBe(true);
  }, { timeout: 90_000, interval: 500 });
});

it('a partition nobody held for longer than the grace period: its old fires are `missed` events', { timeout: 120_000 }, async () => {
  db = await testDb('partition_gap');
  const now = Date.now();
  const current = epochMinute(now);
  const old = usersDueAt(16, isoMinute(current - 6), 'old');
  const recent = usersDueAt(16, isoMinute(current - 1), 'new');
  await db.db.collection('users').insertMany([...old, ...recent]);
  const marks = new MongoPartitionMarks(db.db.collection<StateDoc>('mailwheel_state'), 'test');
  // Partitions 0 and 1 are up to date; 2 and 3 were last handled before the old fires.
  await marks.save([0, 1], current - 1);
  await marks.save([2, 3], current - 7);
  const member = new FakeMember(P, [0, 1], 'B');
  const t = await start(member, 3 * MINUTE_MS);
  await member.move({ gained: [2, 3] });
  const moved = (docs: typeof old) => docs.filter((u) => partitionOfDoc(u as { _id: unknown }) >= 2).map((u) => String(u['email']));
  const sentTo = moved(recent).sort();
  const missedOf = new Set(old.filter((u) => partitionOfDoc(u as { _id: unknown }) >= 2).map((u) => String(u._id)));
  expect(sentTo.length).toBeGreaterThan(0);
  expect(missedOf.size).toBeGreaterThan(0);
  await vi.waitFor(() => expect(smtp.messages.length).toBe(sentTo.length), { timeout: 60_000, interval: 100 });
  await vi.waitFor(async () => {
    const events = await db.db.collection('mailwheel_events').find({ type: 'missed' }).toArray();
    expect(new Set(events.map((e) => String(e['userId'])))).toEqual(missedOf);
    for (const e of events) expect(String(e['reason'])).toMatch(/before this instance took its partition over \(grace 180 s\)/);
  }, { timeout: 30_000, interval: 200 });
  expect([...smtp.countByRecipient().keys()].sort()).toEqual(sentTo);
  expect(t.app.catchUp.stats).toMatchObject({ missed: missedOf.size, lateSent: sentTo.length });
});

it('fires a dead owner on another host claimed and never sent go out at the second look, once each', { timeout: 120_000 }, async () => {
  db = await testDb('partition_ghost');
  const due = epochMinute(Date.now()) - 1;
  const users = usersDueAt(12, isoMinute(due), 'g');
  await db.db.collection('users').insertMany(users);
  await new MongoPartitionMarks(db.db.collection<StateDoc>('mailwheel_state'), 'test').save([0, 1, 2, 3], due - 1);
  // The ghost: an instance on another host whose heartbeat is fresh, holding unfinished claims.
  const instances = db.db.collection<{ _id: string; host: string; pid: number; startedAt: Date; heartbeatAt: Date }>('mailwheel_instances');
  const beat = () => instances.updateOne({ _id: 'ghost' }, { $set: { host: 'elsewhere.example', pid: 1, startedAt: new Date(), heartbeatAt: new Date() } }, { upsert: true });
  await beat();
  const heartbeat = setInterval(() => void beat(), 300);
  const ghostUsers = users.filter((_, i) => i % 3 === 0);
  const keyOf = (u: (typeof users)[number]) =>
    scheduledKey(String(u._id), (u['emailTimes'] as string[])[0] as string, DateTime.fromMillis(due * MINUTE_MS, { zone: String(u['timezone']) }).toFormat('yyyy-MM-dd'));
  await db.db.collection('mailwheel_deliveries').insertMany(
    ghostUsers.map((u) => ({ _id: keyOf(u), type: 'claim', kind: 'scheduled', userId: String(u._id), owner: 'ghost', gen: `g-${String(u._id)}`, at: new Date(), v: 2 })) as never[],
  );
  try {
    const member = new FakeMember(P, [], 'B');
    const b = await start(member, 10 * MINUTE_MS, 5_000);
    await member.move({ gained: [0, 1, 2, 3] });
    // First pass: the ghost's keys look busy (its heartbeat is fresh); everyone else is sent.
    await vi.waitFor(() => expect(b.app.claims.stats.taken).toBe(ghostUsers.length), { timeout: 30_000, interval: 50 });
    clearInterval(heartbeat);
    await vi.waitFor(() => expect(smtp.messages.length).toBe(users.length - ghostUsers.length), { timeout: 30_000, interval: 100 });
    // The ghost's heartbeat goes stale; the second look takes its claims over and sends them.
    await vi.waitFor(() => expect(smtp.messages.length).toBe(users.length), { timeout: 60_000, interval: 200 });
    expect(b.app.partitions?.stats.secondLooks).toBe(1);
    expect(b.app.claims.stats.takenOver).toBe(ghostUsers.length);
    const counts = smtp.countByRecipient();
    expect(counts.size).toBe(users.length);
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
  } finally {
    clearInterval(heartbeat);
  }
});

it('partitions moved a minute before they are due: each App sends only its own, every user exactly once', { timeout: 240_000 }, async () => {
  db = await testDb('partition_handoff');
  // The due minute: the next one, or the one after when this one is nearly over.
  const now = Date.now();
  const due = epochMinute(now) + (now % MINUTE_MS < 35_000 ? 1 : 2);
  const users = usersDueAt(24, isoMinute(due), 'h');
  await db.db.collection('users').insertMany(users);
  const ofA = users.filter((u) => partitionOfDoc(u as { _id: unknown }) < 2).length;
  const memberA = new FakeMember(P, [0, 1, 2, 3], 'A');
  const memberB = new FakeMember(P, [], 'B');
  const a = await start(memberA, 10 * MINUTE_MS);
  const b = await start(memberB, 10 * MINUTE_MS);
  expect(a.app.registry.userCount).toBe(users.length);
  expect(b.app.registry.userCount).toBe(0);
  // Before the due minute, 2 and 3 move: A writes their mark and drops their users, B loads them.
  await memberA.move({ lost: [2, 3] });
  await memberB.move({ gained: [2, 3] });
  expect(Date.now()).toBeLessThan(due * MINUTE_MS);
  // The registry gauges count only the owned partitions' users.
  expect(a.app.registry.userCount).toBe(ofA);
  expect(b.app.registry.userCount).toBe(users.length - ofA);
  expect(await a.app.metrics.text()).toMatch(new RegExp(`\\nmailwheel_registry_users ${ofA}\\n`));
  expect(await b.app.metrics.text()).toMatch(new RegExp(`\\nmailwheel_registry_jobs ${users.length - ofA}\\n`));
  await vi.waitFor(() => expect(smtp.messages.length).toBe(users.length), { timeout: 200_000, interval: 200 });
  await vi.waitFor(() => expect(a.app.ledger.open + b.app.ledger.open).toBe(0), { timeout: 30_000, interval: 100 });
  const counts = smtp.countByRecipient();
  expect(counts.size).toBe(users.length);
  expect([...counts.values()].every((n) => n === 1)).toBe(true);
  // Each sent its own: nothing was claimed twice.
  expect(a.app.claims.stats).toMatchObject({ claimed: ofA, taken: 0 });
  expect(b.app.claims.stats).toMatchObject({ claimed: users.length - ofA, taken: 0 });
});
