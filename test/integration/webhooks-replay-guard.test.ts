/**
 * MongoReplayGuard on real FerretDB: the first sighting of an id wins, across concurrent callers
 * and across guards (instances) sharing the collection; `forget` takes an id back.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MongoReplayGuard, type SeenDoc } from '../../src/adapters/mongo/replay-guard.js';
import { testDb, type TestDb } from '../helpers/db.js';

let t: TestDb;
beforeAll(async () => {
  t = await testDb('replayguard');
});
afterAll(() => t?.cleanup());

it('answers true once per source and id, false after, and keeps sources apart', async () => {
  const col = t.db.collection<SeenDoc>('mw_feedback_seen');
  const guard = new MongoReplayGuard(col, { now: () => Date.parse('2026-12-03T12:00:00Z') });
  expect(await guard.firstSeen('mailgun', 'tok-1')).toBe(true);
  expect(await guard.firstSeen('mailgun', 'tok-1')).toBe(false);
  expect(await guard.firstSeen('postmark', 'tok-1')).toBe(true);
  expect(await col.findOne({ _id: 'mailgun:tok-1' })).toEqual({ _id: 'mailgun:tok-1', at: new Date('2026-12-03T12:00:00Z') });
});

it('lets exactly one of many concurrent callers on two guards see an id first', async () => {
  const col = t.db.collection<SeenDoc>('mw_feedback_seen');
  const a = new MongoReplayGuard(col);
  const b = new MongoReplayGuard(t.client.db(t.dbName).collection<SeenDoc>('mw_feedback_seen'));
  const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).firstSeen('ses', 'msg-concurrent')));
  expect(answers.filter(Boolean)).toHaveLength(1);
});

it('forgets an id so that its next sighting is first again', async () => {
  const guard = new MongoReplayGuard(t.db.collection<SeenDoc>('mw_feedback_seen'));
  expect(await guard.firstSeen('sendgrid', 'sig-1')).toBe(true);
  await guard.forget('sendgrid', 'sig-1');
  expect(await guard.firstSeen('sendgrid', 'sig-1')).toBe(true);
  expect(await guard.firstSeen('sendgrid', 'sig-1')).toBe(false);
});
