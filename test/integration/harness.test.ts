/**
 * Proves the test harness itself: the MongoDB-wire server (FerretDB unless MONGODB_URI is set)
 * does what the design relies on, and the in-process SMTP server's fault modes behave as the
 * sender will see them. If this file fails, every other integration test is suspect.
 */
import { MongoBulkWriteError, MongoClient, type Collection } from 'mongodb';
import nodemailer, { type Transporter } from 'nodemailer';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { canConnect } from '../../scripts/lib/mongo-server.js';
import { testDb, type TestDb } from '../helpers/db.js';
import { TestSmtpServer } from '../helpers/smtp-server.js';

describe('MongoDB-wire server', () => {
  let t: TestDb;

  beforeAll(async () => {
    t = await testDb('harness');
  });
  afterAll(async () => {
    await t.cleanup();
  });

  it('is provided to tests and to child processes, and the per-file URI names the database', () => {
    const serverUri = inject('mongoUri');
    expect(serverUri).toMatch(/^mongodb(\+srv)?:\/\//);
    expect(process.env['MAILWHEEL_TEST_MONGODB_URI']).toBe(serverUri);
    expect(t.dbName).toMatch(/^mw_test_harness_[0-9a-f]{12}$/);
    expect(t.uri.split('?')[0]?.endsWith(`/${t.dbName}`)).toBe(true);
  });

  it('streams 2,500 documents through one cursor with batchSize 1000 (no cap)', async () => {
    const users = t.db.collection<{ _id: number; email: string; active: boolean }>('users');
    const docs = Array.from({ length: 2_500 }, (_, i) => ({ _id: i, email: `u${i}@example.test`, active: true }));
    const inserted = await users.insertMany(docs);
    expect(inserted.insertedCount).toBe(2_500);

    // One cursor, several getMore round trips: 1000 + 1000 + 500. The old design's
    // to_list(1000) stopped after the first batch. A second client with command monitoring
    // shows the batches on the wire, so this also proves the server honours batchSize.
    const monitored = new MongoClient(t.uri, { monitorCommands: true });
    const batches: Array<[string, number]> = [];
    monitored.on('commandSucceeded', (event) => {
      if (event.commandName !== 'find' && event.commandName !== 'getMore') return;
      const reply = event.reply as { cursor?: { firstBatch?: unknown[]; nextBatch?: unknown[] } };
      batches.push([event.commandName, (reply.cursor?.firstBatch ?? reply.cursor?.nextBatch ?? []).length]);
    });
    try {
      const cursor = monitored
        .db(t.dbName)
        .collection<{ _id: number; active: boolean }>('users')
        .find({ active: true }, { batchSize: 1_000 });
      const seen = new Set<number>();
      for await (const doc of cursor) seen.add(doc._id);
      expect(seen.size).toBe(2_500);
      expect(Math.min(...seen)).toBe(0);
      expect(Math.max(...seen)).toBe(2_499);
      expect(batches).toEqual([
        ['find', 1_000],
        ['getMore', 1_000],
        ['getMore', 500],
      ]);
    } finally {
      await monitored.close();
    }
  });

  describe('unordered insertMany with duplicates reports one E11000 per duplicate and inserts the rest', () => {
    type Claim = { _id: string; n: number };

    async function expectPerDuplicateErrors(
      coll: Collection<Claim>,
      docs: Claim[],
      duplicateIndexes: number[],
    ): Promise<void> {
      const error = await coll.insertMany(docs, { ordered: false }).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(error).toBeInstanceOf(MongoBulkWriteError);
      if (!(error instanceof MongoBulkWriteError)) return;
      const writeErrors = Array.isArray(error.writeErrors) ? error.writeErrors : [error.writeErrors];
      expect(writeErrors.map((e) => e.code)).toEqual(duplicateIndexes.map(() => 11000));
      expect(writeErrors.map((e) => e.index).sort((a, b) => a - b)).toEqual(duplicateIndexes);
      expect(error.result.insertedCount).toBe(docs.length - duplicateIndexes.length);
    }

    it('on _id', async () => {
      const claims = t.db.collection<Claim>('claims_id');
      await claims.insertMany([
        { _id: 'k1', n: 0 },
        { _id: 'k3', n: 0 },
      ]);
      await expectPerDuplicateErrors(
        claims,
        [
          { _id: 'k1', n: 1 }, // duplicate of an existing doc
          { _id: 'k2', n: 1 },
          { _id: 'k3', n: 1 }, // duplicate of an existing doc
          { _id: 'k4', n: 1 },
          { _id: 'k2', n: 2 }, // duplicate within the batch
        ],
        [0, 2, 4],
      );
      expect(await claims.countDocuments()).toBe(4);
      // The pre-existing documents were not overwritten.
      expect((await claims.findOne({ _id: 'k1' }))?.n).toBe(0);
      expect((await claims.findOne({ _id: 'k2' }))?.n).toBe(1);
    });

    it('on a unique secondary index', async () => {
      const claims = t.db.collection<Claim & { key: string }>('claims_key');
      await claims.createIndex({ key: 1 }, { unique: true });
      await claims.insertOne({ _id: 'a', key: 's:u1:09:00:2026-01-01', n: 0 });
      const error = await claims
        .insertMany(
          [
            { _id: 'b', key: 's:u1:09:00:2026-01-01', n: 1 }, // duplicate key
            { _id: 'c', key: 's:u2:09:00:2026-01-01', n: 1 },
            { _id: 'd', key: 's:u2:09:00:2026-01-01', n: 1 }, // duplicate within the batch
            { _id: 'e', key: 's:u3:09:00:2026-01-01', n: 1 },
          ],
          { ordered: false },
        )
        .then(
          () => undefined,
          (err: unknown) => err,
        );
      expect(error).toBeInstanceOf(MongoBulkWriteError);
      if (!(error instanceof MongoBulkWriteError)) return;
      const writeErrors = Array.isArray(error.writeErrors) ? error.writeErrors : [error.writeErrors];
      expect(writeErrors.map((e) => [e.index, e.code])).toEqual([
        [0, 11000],
        [2, 11000],
      ]);
      expect(error.result.insertedCount).toBe(2);
      expect((await claims.find({}).toArray()).map((d) => d._id).sort()).toEqual(['a', 'c', 'e']);
    });
  });
});

describe('TestSmtpServer', () => {
  let smtp: TestSmtpServer;
  let transport: Transporter;

  function makeTransport(): Transporter {
    return nodemailer.createTransport({
      host: '127.0.0.1',
      port: smtp.port,
      secure: false,
      ignoreTLS: true,
      pool: true,
      maxConnections: 2,
      // Keep failures fast: the defaults (2 min connect, 10 min socket) would outlast a test.
      connectionTimeout: 2_000,
      greetingTimeout: 2_000,
      socketTimeout: 5_000,
    });
  }

  function send(to: string, subject = 'hello'): Promise<unknown> {
    return transport.sendMail({ from: 'mailwheel@example.test', to, subject, text: `to ${to}` });
  }

  beforeAll(async () => {
    smtp = await TestSmtpServer.start();
    transport = makeTransport();
  });
  afterEach(() => {
    smtp.setFault({ kind: 'none' });
    smtp.reset();
  });
  afterAll(async () => {
    transport.close();
    await smtp.close();
  });

  it('listens on 127.0.0.1 on the port it reports', () => {
    expect(smtp.port).toBeGreaterThan(0);
    expect(smtp.url).toBe(`smtp://127.0.0.1:${smtp.port}`);
  });

  it('receives messages over a pooled connection and parses them', async () => {
    await Promise.all([send('a@example.test', 'Grüße aus Köln 🌅'), send('b@example.test'), send('a@example.test')]);
    const messages = await smtp.waitFor(3, 5_000);
    expect(messages).toHaveLength(3);
    expect(smtp.countByRecipient()).toEqual(
      new Map([
        ['a@example.test', 2],
        ['b@example.test', 1],
      ]),
    );
    const first = messages.find((m) => m.subject.startsWith('Grü'));
    expect(first?.subject).toBe('Grüße aus Köln 🌅');
    expect(first?.from).toBe('mailwheel@example.test');
    expect(first?.messageId).toMatch(/^<.+@.+>$/);
    expect(first?.headers.get('to')).toBe('a@example.test');
    expect(first?.raw).toContain('to a@example.test');
    // pool: true with maxConnections 2: three messages cannot need three connections.
    expect(smtp.connections).toBeLessThanOrEqual(2);
  });

  it('waitFor rejects on timeout, naming the current count', async () => {
    await expect(smtp.waitFor(1, 200)).rejects.toThrow(/0 of 1 messages after 200 ms/);
  });

  it('reply 451 (ratio 1) rejects every message at DATA and records it only in `rejected`', async () => {
    smtp.setFault({ kind: 'reply', code: 451, ratio: 1 });
    const results = await Promise.allSettled([send('c@example.test'), send('d@example.test')]);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      if (r.status === 'rejected') expect(r.reason).toMatchObject({ responseCode: 451 });
    }
    expect(smtp.messages).toHaveLength(0);
    expect(smtp.rejected.map((r) => [r.stage, r.code, r.to[0]]).sort()).toEqual([
      ['data', 451, 'c@example.test'],
      ['data', 451, 'd@example.test'],
    ]);
    expect(smtp.rejected[0]?.message?.subject).toBe('hello');
  });

  it('reply 550 at RCPT TO with match rejects only matching recipients', async () => {
    smtp.setFault({ kind: 'reply', code: 550, stage: 'rcpt', match: (rcpt) => rcpt.startsWith('bad') });
    const results = await Promise.allSettled([send('bad@example.test'), send('good@example.test')]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'fulfilled']);
    expect(smtp.rejected).toMatchObject([{ stage: 'rcpt', code: 550, to: ['bad@example.test'], message: undefined }]);
    expect(smtp.messages.map((m) => m.to)).toEqual([['good@example.test']]);
  });

  it('ratio uses the injected random source', async () => {
    const values = [0.9, 0.1];
    const local = await TestSmtpServer.start({
      fault: { kind: 'reply', code: 452, ratio: 0.5 },
      random: () => values.shift() ?? 0,
    });
    const tx = nodemailer.createTransport({ host: '127.0.0.1', port: local.port, secure: false, ignoreTLS: true });
    try {
      await tx.sendMail({ from: 'x@example.test', to: 'first@example.test', text: '1' }); // 0.9 >= 0.5: accepted
      await expect(tx.sendMail({ from: 'x@example.test', to: 'second@example.test', text: '2' })).rejects.toMatchObject({
        responseCode: 452,
      });
      expect(local.messages.map((m) => m.to[0])).toEqual(['first@example.test']);
      expect(local.rejected.map((r) => r.to[0])).toEqual(['second@example.test']);
    } finally {
      tx.close();
      await local.close();
    }
  });

  it('stall delays the DATA reply', async () => {
    smtp.setFault({ kind: 'stall', ms: 400 });
    const started = Date.now();
    await send('slow@example.test');
    expect(Date.now() - started).toBeGreaterThanOrEqual(380);
    expect(smtp.messages).toHaveLength(1);
  });

  it('drop cuts the connection without a reply: nodemailer errors, the message is in `dropped`', async () => {
    smtp.setFault({ kind: 'drop' });
    await expect(send('dropped@example.test')).rejects.toThrow();
    expect(smtp.messages).toHaveLength(0);
    expect(smtp.dropped.map((m) => m.to)).toEqual([['dropped@example.test']]);
    // The pool recovers with a fresh connection once the fault is gone.
    smtp.setFault({ kind: 'none' });
    await send('after-drop@example.test');
    expect(smtp.messages.map((m) => m.to)).toEqual([['after-drop@example.test']]);
  });

  it('down() makes the server unreachable and up() brings it back on the same port', async () => {
    const port = smtp.port;
    await send('before@example.test');
    await smtp.down();
    expect(smtp.isUp).toBe(false);
    expect(await canConnect(port)).toBe(false);
    await expect(send('while-down@example.test')).rejects.toMatchObject({ code: expect.stringMatching(/ECONNREFUSED|ECONNECTION|ESOCKET/) });

    await smtp.up();
    expect(smtp.port).toBe(port);
    expect(await canConnect(port)).toBe(true);
    await send('after@example.test');
    expect(smtp.messages.map((m) => m.to[0])).toEqual(['before@example.test', 'after@example.test']);
  });
});

