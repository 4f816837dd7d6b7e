/**
 * The start-up count of recent sends (adapters/mongo/sent-counter.ts) against the real
 * MongoDB-wire server: only the delivery records' `sent` outcomes count (not failures, misses,
 * claims or takeovers), each in every window it falls in, a record dated ahead of `now` in all of
 * them; one `find` for all windows, none when there is no window; and the store factory opens it.
 */
import { MongoClient, type CommandStartedEvent } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MongoSentCounter } from '../../src/adapters/mongo/sent-counter.js';
import type { DeliveryDoc } from '../../src/adapters/mongo/store.js';
import { withStores } from '../../src/app/stores.js';
import { loadConfig } from '../../src/config/load.js';
import { DAY_MS, HOUR_MS, MINUTE_MS, SECOND_MS } from '../../src/core/time.js';
import { writeTestConfig } from '../helpers/cli.js';
import { testDb, type TestDb } from '../helpers/db.js';

const NOW = Date.parse('2027-03-01T12:00:00Z');
const WINDOWS = [MINUTE_MS, HOUR_MS, DAY_MS];
let db: TestDb;

const done = (key: string, status: 'sent' | 'failed' | 'missed', agoMs: number): DeliveryDoc => ({ _id: `${key}#done`, type: 'done', key, status, at: new Date(NOW - agoMs) });

beforeAll(async () => {
  db = await testDb('sent_counter');
  const docs: DeliveryDoc[] = [
    // In the last minute: 3 (the oldest exactly on the window's edge).
    done('s:a:11:59:2027-03-01', 'sent', 10 * SECOND_MS),
    done('s:b:11:59:2027-03-01', 'sent', 30 * SECOND_MS),
    done('s:c:11:59:2027-03-01', 'sent', MINUTE_MS),
    // In the last hour, not the last minute: 2.
    done('s:d:11:30:2027-03-01', 'sent', MINUTE_MS + 1),
    done('b:bc1:e', 'sent', 59 * MINUTE_MS),
    // In the last day, not the last hour: 2.
    done('s:f:10:00:2027-03-01', 'sent', 2 * HOUR_MS),
    done('s:g:12:01:2027-02-28', 'sent', DAY_MS - 1),
    // Older than a day: none.
    done('s:h:11:00:2027-02-28', 'sent', DAY_MS + 1),
    done('s:i:09:00:2027-02-20', 'sent', 9 * DAY_MS),
    // Dated after `now` (another host's clock ahead): in every window.
    done('s:j:12:00:2027-03-01', 'sent', -5 * SECOND_MS),
    // Not sends: failures, misses, claims and takeovers, however recent.
    done('s:k:11:59:2027-03-01', 'failed', 5 * SECOND_MS),
    done('s:l:11:59:2027-03-01', 'missed', 5 * SECOND_MS),
    { _id: 's:m:11:59:2027-03-01', type: 'claim', kind: 'scheduled', userId: 'm', owner: 'x', gen: 'g0', at: new Date(NOW - 5 * SECOND_MS), v: 2 },
    { _id: 's:m:11:59:2027-03-01#g0', type: 'takeover', key: 's:m:11:59:2027-03-01', owner: 'y', gen: 'g1', at: new Date(NOW - 4 * SECOND_MS) },
  ];
  await db.db.collection<DeliveryDoc>('mailwheel_deliveries').insertMany(docs);
});

afterAll(async () => {
  await db?.cleanup();
});

describe('MongoSentCounter', () => {
  it('counts the sent outcomes of each window, every shorter window derived from one find of the longest', async () => {
    const client = new MongoClient(db.uri, { monitorCommands: true });
    await client.connect();
    try {
      const commands: string[] = [];
      client.on('commandStarted', (e: CommandStartedEvent) => {
        if (e.command[e.commandName] === 'mailwheel_deliveries' || e.commandName === 'getMore') commands.push(e.commandName);
      });
      // A batch of 2 so the read streams through several batches.
      const counter = new MongoSentCounter(client.db(db.dbName).collection<DeliveryDoc>('mailwheel_deliveries'), { batchSize: 2 });
      expect(await counter.countSent(NOW, WINDOWS)).toEqual([4, 6, 8]);
      expect(commands.filter((c) => c === 'find')).toEqual(['find']);
      expect(commands.filter((c) => c === 'getMore').length).toBeGreaterThan(0);

      commands.length = 0;
      expect(await counter.countSent(NOW, [HOUR_MS])).toEqual([6]);
      expect(await counter.countSent(NOW + 2 * DAY_MS, [DAY_MS])).toEqual([0]);
      expect(await counter.countSent(NOW, [])).toEqual([]);
      expect(commands.filter((c) => c === 'find')).toHaveLength(2);
    } finally {
      await client.close();
    }
  });

  it('is opened by the store factory over the configured prefix', async () => {
    const file = writeTestConfig({ http: { enabled: false } });
    const { config } = loadConfig({ file, env: { MONGODB_URI: db.uri, SMTP_URL: 'smtp://127.0.0.1:9' } });
    expect(await withStores(config, (stores) => stores.sent.countSent(NOW, [MINUTE_MS, DAY_MS]))).toEqual([4, 8]);
  });
});
