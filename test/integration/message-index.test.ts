/**
 * The message index on the real MongoDB-wire server (FerretDB): the claim store records every
 * message of a batch in the index before it inserts the claims (so before any can be sent), in
 * one extra insert per batch; each Message-ID's digest then finds its delivery; a repeat of a
 * batch changes nothing; without an index nothing is written; retention deletes old entries.
 */
import { MongoClient, type CommandStartedEvent } from 'mongodb';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MongoClaimStore } from '../../src/adapters/mongo/claim-store.js';
import { InstanceRegistry } from '../../src/adapters/mongo/instance-registry.js';
import { messageIndexCollection, MongoMessageIndex } from '../../src/adapters/mongo/message-index.js';
import { MongoRetention } from '../../src/adapters/mongo/retention.js';
import type { DeliveryDoc, EventDoc, InstanceDoc } from '../../src/adapters/mongo/store.js';
import { broadcastKey, scheduledKey } from '../../src/core/delivery-key.js';
import { digestOfMessageId } from '../../src/core/feedback.js';
import { messageIdFor } from '../../src/core/message.js';
import type { MessageIndex, SentMessage } from '../../src/ports/feedback.js';
import { testDb, type TestDb } from '../helpers/db.js';
import { silentLogger } from '../helpers/fakes.js';

let db: TestDb;
let reg: InstanceRegistry;

beforeAll(async () => {
  db = await testDb('msgindex');
  reg = new InstanceRegistry(db.db.collection<InstanceDoc>('mailwheel_instances'), 30_000, silentLogger());
  await reg.start();
});
afterAll(async () => {
  await reg?.stop();
  await db?.cleanup();
});

const deliveries = () => db.db.collection<DeliveryDoc>('mailwheel_deliveries');

function recipientsOf(keys: string[], broadcastId?: string) {
  return new Map(keys.map((k, i) => [k, { email: `user${i}@example.com`, userId: `s:u${i}`, ...(broadcastId === undefined ? {} : { broadcastId }) }]));
}

it('a claimed batch is in the index before its claims exist, and every Message-ID finds its delivery', async () => {
  const index = new MongoMessageIndex(messageIndexCollection(db.db, 'mailwheel_'));
  const seenAtRecord: number[] = [];
  // Checks the order: when the index is written, none of the batch's claims may exist yet.
  const watching: Pick<MessageIndex, 'record'> = {
    record: async (messages: readonly SentMessage[]) => {
      seenAtRecord.push(await deliveries().countDocuments({ _id: { $in: messages.map((m) => m.key) } }));
      await index.record(messages);
    },
  };
  const claims = new MongoClaimStore(deliveries(), reg, undefined, { index: watching });
  const keys = Array.from({ length: 600 }, (_, i) => broadcastKey('20270301-120000-aaaaaa', `s:u${i}`));
  const r = await claims.claim(keys, { recipients: recipientsOf(keys, '20270301-120000-aaaaaa') });
  expect(r.claimed).toHaveLength(600);
  expect(seenAtRecord).toEqual([0]);

  const digests = keys.map((k) => digestOfMessageId(messageIdFor(k, 'mail.example.com')) as string);
  const found = await index.find(digests);
  expect(found.size).toBe(600);
  keys.forEach((key, i) => {
    expect(found.get(digests[i] as string)).toMatchObject({ key, email: `user${i}@example.com`, userId: `s:u${i}`, broadcastId: '20270301-120000-aaaaaa' });
  });
  expect((await index.find(['0'.repeat(32)])).size).toBe(0);
});

it('costs one insert per claim batch; a repeated batch is ignored without an error', async () => {
  // A client of its own with command monitoring, to count the round trips to the index.
  const client = new MongoClient(db.uri, { monitorCommands: true });
  await client.connect();
  const inserts: CommandStartedEvent[] = [];
  client.on('commandStarted', (e: CommandStartedEvent) => {
    if (e.commandName === 'insert' && e.command['insert'] === 'mailwheel_message_index') inserts.push(e);
  });
  try {
    const col = messageIndexCollection(client.db(db.dbName), 'mailwheel_');
    const claims = new MongoClaimStore(client.db(db.dbName).collection<DeliveryDoc>('mailwheel_deliveries'), reg, undefined, { index: new MongoMessageIndex(col) });
    const keys = Array.from({ length: 300 }, (_, i) => scheduledKey(`s:r${i}`, '09:00', '2027-03-01'));
    await claims.claim(keys, { recipients: recipientsOf(keys) });
    expect(inserts).toHaveLength(1);
    const before = await col.countDocuments({});
    expect(before).toBeGreaterThanOrEqual(300);
    // A rerun of the same batch: every claim taken, every index entry a duplicate.
    const again = await claims.claim(keys, { recipients: recipientsOf(keys) });
    expect(again.claimed).toEqual([]);
    expect(inserts).toHaveLength(2);
    expect(await col.countDocuments({})).toBe(before);
  } finally {
    await client.close();
  }
});

it('a claim store without an index writes none, and retention deletes entries with the delivery records', async () => {
  const other = await testDb('msgindex_none');
  try {
    const col = messageIndexCollection(other.db, 'mailwheel_');
    const claims = new MongoClaimStore(other.db.collection<DeliveryDoc>('mailwheel_deliveries'), reg);
    const keys = [scheduledKey('s:n1', '09:00', '2027-03-01')];
    await claims.claim(keys, { recipients: recipientsOf(keys) });
    expect(await col.countDocuments({})).toBe(0);

    const index = new MongoMessageIndex(col);
    const day = 86_400_000;
    const now = Date.parse('2027-03-20T00:00:00Z');
    await index.record([
      { digest: 'a'.repeat(32), key: 'k-old', email: 'old@example.com', userId: 's:o', at: new Date(now - 15 * day) },
      { digest: 'b'.repeat(32), key: 'k-new', email: 'new@example.com', userId: 's:n', at: new Date(now - 2 * day) },
    ]);
    const retention = new MongoRetention(
      { events: other.db.collection<EventDoc>('mailwheel_events'), deliveries: other.db.collection<DeliveryDoc>('mailwheel_deliveries'), messages: col },
      { eventsDays: 30, deliveriesDays: 14 },
    );
    const report = await retention.run(now);
    expect(report.messagesDeleted).toBe(1);
    expect([...(await index.find(['a'.repeat(32), 'b'.repeat(32)])).keys()]).toEqual(['b'.repeat(32)]);
  } finally {
    await other.cleanup();
  }
});
