/**
 * Documents read from MongoDB are decoded at the adapter boundary (adapters/mongo/decode.ts): a
 * stored null or a wrong type, read through each adapter against the real MongoDB-wire server,
 * is an error naming the collection, the document's `_id` and the field. The one exception is the
 * start-up event check, which skips a malformed delivery record with a warning naming it and
 * rebuilds the others (analytics are not worth stopping for one bad record).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MongoCheckpointStore } from '../../src/adapters/mongo/checkpoint-store.js';
import { MongoClaimStore } from '../../src/adapters/mongo/claim-store.js';
import { MalformedDocumentError } from '../../src/adapters/mongo/decode.js';
import { MongoEventReconciler } from '../../src/adapters/mongo/event-reconciler.js';
import { InstanceRegistry } from '../../src/adapters/mongo/instance-registry.js';
import type { DeliveryDoc, EventDoc, InstanceDoc, StateDoc } from '../../src/adapters/mongo/store.js';
import { MongoSuppressionStore, type SuppressionDoc } from '../../src/adapters/mongo/suppression-store.js';
import { ErrorCodes } from '../../src/errors.js';
import type { InstanceDirectory } from '../../src/ports/stores.js';
import { silentLogger } from '../helpers/fakes.js';
import { testDb, type TestDb } from '../helpers/db.js';

let db: TestDb;
beforeAll(async () => {
  db = await testDb('malformed');
});
afterAll(async () => {
  await db?.cleanup();
});

/** Inserts a document the typed collections would refuse at compile time (that is the point). */
async function insertRaw(collection: string, doc: Record<string, unknown>): Promise<void> {
  await db.db.collection(collection).insertOne(doc as never);
}

/** The error `p` rejects with, checked to be a MalformedDocumentError naming collection, id and field. */
async function malformed(p: Promise<unknown>, where: { collection: string; id: string; field: string }): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(MalformedDocumentError);
  const e = err as MalformedDocumentError;
  expect(e.code).toBe(ErrorCodes.DOCUMENT_INVALID);
  expect({ collection: e.collection, id: e.docId, field: e.field }).toEqual(where);
  expect(e.message).toContain(`${where.collection}: _id ${where.id}: field ${where.field}`);
}

const nobodyElse: InstanceDirectory = { id: 'me', isAlive: async () => false, live: async () => [], heartbeatOf: async () => undefined };

describe('decoded at the adapter boundary: a malformed document is an error naming collection, id and field', () => {
  it('instances: a null heartbeatAt', async () => {
    const col = db.db.collection<InstanceDoc>('m1_instances');
    await insertRaw('m1_instances', { _id: 'ghost', host: 'h', pid: 1, startedAt: new Date(), heartbeatAt: null });
    const reg = new InstanceRegistry(col, 30_000, silentLogger());
    const where = { collection: 'm1_instances', id: '"ghost"', field: 'heartbeatAt' };
    await malformed(reg.isAlive('ghost'), where);
    await malformed(reg.heartbeatOf('ghost'), where);
    await malformed(reg.live(), where);
  });

  it('state: a scheduler checkpoint stored as null', async () => {
    const col = db.db.collection<StateDoc>('m2_state');
    await insertRaw('m2_state', { _id: 'scheduler', lastMinute: null, updatedAt: new Date() });
    await malformed(new MongoCheckpointStore(col, 'me').load(), { collection: 'm2_state', id: '"scheduler"', field: 'lastMinute' });
  });

  it('deliveries: a claim without an owner, and an outcome with an unknown status', async () => {
    const col = db.db.collection<DeliveryDoc>('m3_deliveries');
    await insertRaw('m3_deliveries', { _id: 'k1', type: 'claim', kind: 'scheduled', userId: 's:1', owner: null, gen: 'g', at: new Date(), v: 2 });
    const claims = new MongoClaimStore(col, nobodyElse);
    await malformed(claims.claim(['k1']), { collection: 'm3_deliveries', id: '"k1"', field: 'owner' });
    await insertRaw('m3_deliveries', { _id: 'k2', type: 'claim', kind: 'scheduled', userId: 's:2', owner: 'x', gen: 'g', at: new Date(), v: 2 });
    await insertRaw('m3_deliveries', { _id: 'k2#done', type: 'done', key: 'k2', status: 'bounced', at: new Date() });
    await malformed(claims.claim(['k2']), { collection: 'm3_deliveries', id: '"k2#done"', field: 'status' });
  });

  it('suppressions: an address stored under a non-string _id', async () => {
    const col = db.db.collection<SuppressionDoc>('m4_suppressions');
    await insertRaw('m4_suppressions', { _id: 'a@example.com', suppressed: true, hardBounces: 0, updatedAt: new Date() });
    await insertRaw('m4_suppressions', { _id: 42, suppressed: true, hardBounces: 0, updatedAt: new Date() });
    const read = async () => {
      for await (const batch of new MongoSuppressionStore(col).allSuppressed()) void batch;
    };
    await malformed(read(), { collection: 'm4_suppressions', id: '42', field: '_id' });
  });

  it("state: the event check's checkedUntil stored as text", async () => {
    await insertRaw('m5_state', { _id: 'events', checkedUntil: 'yesterday', updatedAt: new Date() });
    const r = new MongoEventReconciler({ deliveries: db.db.collection<DeliveryDoc>('m5_deliveries'), events: db.db.collection<EventDoc>('m5_events'), state: db.db.collection<StateDoc>('m5_state') });
    await malformed(r.reconcile({ now: Date.now(), lookbackMs: 3_600_000, batchSize: 10 }), { collection: 'm5_state', id: '"events"', field: 'checkedUntil' });
  });
});

describe('the start-up event check skips a malformed outcome record with a warning', () => {
  it('rebuilds the good records and names the skipped one', async () => {
    const at = new Date(Date.now() - 60_000);
    await insertRaw('m6_deliveries', { _id: 's:u1:09:00:2027-01-15#done', type: 'done', key: 's:u1:09:00:2027-01-15', status: 'sent', at });
    await insertRaw('m6_deliveries', { _id: 's:u2:09:00:2027-01-15#done', type: 'done', key: 's:u2:09:00:2027-01-15', status: null, at });
    const warnings: Array<Record<string, unknown>> = [];
    const log = { warn: (fields: Record<string, unknown>) => void warnings.push(fields) };
    const r = new MongoEventReconciler(
      { deliveries: db.db.collection<DeliveryDoc>('m6_deliveries'), events: db.db.collection<EventDoc>('m6_events'), state: db.db.collection<StateDoc>('m6_state') },
      log as never,
    );
    const report = await r.reconcile({ now: Date.now(), lookbackMs: 3_600_000, batchSize: 10 });
    expect(report).toMatchObject({ checked: 1, rebuilt: 1 });
    expect(warnings).toEqual([expect.objectContaining({ collection: 'm6_deliveries', id: '"s:u2:09:00:2027-01-15#done"', field: 'status' })]);
    expect(await db.db.collection('m6_events').countDocuments({})).toBe(1);
  });
});
