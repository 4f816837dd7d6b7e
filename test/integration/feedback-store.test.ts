/**
 * The FeedbackSink's state on the real MongoDB-wire server (FerretDB): one record per report id
 * across two stores inserting at once; counts per broadcast and per day exact under concurrent
 * reports (FerretDB v1 loses concurrent `$inc` of one document, so the store chains them); the
 * soft-bounce window; and the whole sink over the Mongo stores: a complaint suppresses (scope
 * marketing) and a complaint rate over the threshold pauses the broadcast once with its reason.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MongoBroadcastStore } from '../../src/adapters/mongo/broadcast-store.js';
import { feedbackCollections, MongoFeedbackStore } from '../../src/adapters/mongo/feedback-store.js';
import { messageIndexCollection, MongoMessageIndex } from '../../src/adapters/mongo/message-index.js';
import { MongoSuppressionStore, type SuppressionDoc } from '../../src/adapters/mongo/suppression-store.js';
import { broadcastKey } from '../../src/core/delivery-key.js';
import { digestOfKey, FeedbackReportSink } from '../../src/core/feedback.js';
import { RefusalCounter } from '../../src/core/feedback-refusals.js';
import { messageIdFor } from '../../src/core/message.js';
import { SuppressionList } from '../../src/core/suppression-list.js';
import type { FeedbackRecord } from '../../src/ports/feedback-store.js';
import type { OutcomeEvent } from '../../src/ports/index.js';
import { systemClock } from '../../src/ports/clock.js';
import { testDb, type TestDb } from '../helpers/db.js';
import { silentLogger } from '../helpers/fakes.js';

let db: TestDb;

beforeAll(async () => {
  db = await testDb('feedback');
});
afterAll(async () => {
  await db?.cleanup();
});

const record = (id: string): FeedbackRecord => ({ id, source: 'dsn', kind: 'hard-bounce', email: `${id}@example.com`, at: new Date(), appliedAt: new Date() });

describe('MongoFeedbackStore', () => {
  it('stores each report id once, even when two stores insert the same ids at once', async () => {
    const a = new MongoFeedbackStore(feedbackCollections(db.db, 'one_'));
    const b = new MongoFeedbackStore(feedbackCollections(db.db, 'one_'));
    const ids = Array.from({ length: 200 }, (_, i) => `b:B1:s:u${i}#hard-bounce`);
    const [da, dbb] = await Promise.all([a.insert(ids.map(record)), b.insert(ids.map(record))]);
    // Every id went in exactly once: each is a duplicate for exactly one of the two.
    expect(da.size + dbb.size).toBe(200);
    expect([...da].filter((id) => dbb.has(id))).toEqual([]);
    expect(await db.db.collection('one_feedback').countDocuments({})).toBe(200);
    expect((await a.insert([record(ids[0] as string)])).has(ids[0] as string)).toBe(true);
    // A removed record (its rules failed) can be inserted again.
    await a.remove([ids[0] as string]);
    expect((await a.insert([record(ids[0] as string)])).size).toBe(0);
  });

  it('counts concurrent reports exactly, per broadcast and per day', async () => {
    const store = new MongoFeedbackStore(feedbackCollections(db.db, 'two_'));
    const kinds = ['hard-bounce', 'soft-bounce', 'complaint'] as const;
    await Promise.all(Array.from({ length: 60 }, (_, i) => store.count(kinds[i % 3] as (typeof kinds)[number], '2027-03-01', i < 45 ? 'B1' : undefined)));
    expect(await store.forDay('2027-03-01')).toEqual({ hardBounces: 20, softBounces: 20, complaints: 20 });
    expect(await store.forBroadcast('B1')).toEqual({ hardBounces: 15, softBounces: 15, complaints: 15 });
    expect(await store.forBroadcast('nothing')).toEqual({ hardBounces: 0, softBounces: 0, complaints: 0 });
    expect(await store.forDay('2027-03-02')).toEqual({ hardBounces: 0, softBounces: 0, complaints: 0 });
  });

  it('counts soft bounces of an address within the window', async () => {
    const store = new MongoFeedbackStore(feedbackCollections(db.db, 'three_'));
    const h = 3_600_000;
    const t0 = Date.parse('2027-03-01T00:00:00Z');
    const n = [];
    for (const hours of [0, 1, 26, 27, 28]) n.push(await store.softBounce('s@example.com', new Date(t0 + hours * h), 24 * h, 3));
    expect(n).toEqual([1, 2, 1, 2, 3]);
    expect(await store.softBounce('other@example.com', new Date(t0), 24 * h, 3)).toBe(1);
  });
});

it('the sink over the Mongo stores: complaints suppress for marketing, and the broadcast pauses once, saying why', async () => {
  const prefix = 'sink_';
  const feedback = new MongoFeedbackStore(feedbackCollections(db.db, prefix));
  const index = new MongoMessageIndex(messageIndexCollection(db.db, prefix));
  const list = new SuppressionList(new MongoSuppressionStore(db.db.collection<SuppressionDoc>(`${prefix}suppressions`)), { hardBounceLimit: 1 });
  const broadcasts = new MongoBroadcastStore(db.db, prefix);
  const b = await broadcasts.create({ subject: 's', text: 't', segment: '{}' });
  await broadcasts.update(b._id, { status: 'running', counters: { sent: 1000, failed: 0, skipped: 0, suppressed: 0 } });
  const events: OutcomeEvent[] = [];
  const sink = new FeedbackReportSink(
    { index, store: feedback, suppressions: list, broadcasts, events: { record: async (e) => void events.push(e) }, refusals: new RefusalCounter(), clock: systemClock, log: silentLogger() },
    { softBounce: { limit: 3, windowHours: 24 }, complaintStopsScheduled: false, broadcastPause: { minSent: 500, bounceRate: null, complaintRate: 0.003 } },
  );
  const keys = Array.from({ length: 5 }, (_, i) => broadcastKey(b._id, `s:c${i}`));
  await index.record(keys.map((key, i) => ({ digest: digestOfKey(key), key, email: `c${i}@example.com`, userId: `s:c${i}`, broadcastId: b._id, at: new Date() })));
  const reports = keys.map((key, i) => ({ source: 'arf' as const, kind: 'complaint' as const, email: `c${i}@example.com`, messageId: messageIdFor(key, 'mail.example.com'), eventId: `arf-${i}`, at: new Date() }));

  expect(await sink.apply(reports.slice(0, 2))).toMatchObject({ applied: 2, suppressed: 2 });
  expect(await broadcasts.control(b._id)).toBeUndefined();
  // Two batches at once push it over: one pause between them.
  const [r1, r2] = await Promise.all([sink.apply(reports.slice(2, 3)), sink.apply(reports.slice(3))]);
  expect(r1.applied + r2.applied).toBe(3);
  expect(await broadcasts.control(b._id)).toBe('pause');
  const control = await db.db.collection(`${prefix}broadcast_runs`).findOne({ _id: `control:${b._id}` as never });
  expect(control?.['reason']).toMatch(/^complaint rate 0\.(30|40|50)% >= 0\.30% \(feedback\.broadcastPause\.complaintRate\) after 1,000 sent$/);
  expect(sink.stats.pauses).toBe(1);
  // Replayed: nothing changes.
  expect(await sink.apply(reports)).toMatchObject({ applied: 0, duplicates: 5, suppressed: 0 });
  expect(await feedback.forBroadcast(b._id)).toEqual({ hardBounces: 0, softBounces: 0, complaints: 5 });

  const stored = await db.db.collection<SuppressionDoc>(`${prefix}suppressions`).find({}).toArray();
  expect(stored.map((s) => [s._id, s.reason, s.scope, s.source]).sort()).toEqual(keys.map((_, i) => [`c${i}@example.com`, 'complaint', 'marketing', 'arf']));
  expect(list.has('c0@example.com', 'broadcast')).toBe(true);
  expect(list.has('c0@example.com', 'scheduled')).toBe(false);
  expect(events.filter((e) => e.type === 'complained').map((e) => e.key).sort()).toEqual([...keys].sort());
});
