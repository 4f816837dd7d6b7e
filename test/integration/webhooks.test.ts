/**
 * The webhooks through the daemon's real HttpServer on 127.0.0.1 with a bearer token set, a
 * recording sink and the MongoDB replay guard on real FerretDB: configured `/webhooks/*` paths
 * are open to their providers (and only those), the other routes still need the token, a body
 * streamed without a length stops being read at the cap, and a notification accepted by one
 * instance is a replay at another.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MongoReplayGuard, type SeenDoc } from '../../src/adapters/mongo/replay-guard.js';
import { RefusalCounter } from '../../src/core/feedback-refusals.js';
import { FeedbackWebhooks } from '../../src/feedback/webhooks/index.js';
import { HttpServer } from '../../src/http/server.js';
import { testDb, type TestDb } from '../helpers/db.js';
import { silentLogger } from '../helpers/fakes.js';
import { feedbackConfig, RecordingSink } from '../helpers/webhook-fixtures.js';

const TOKEN = 'http-token-0123456789';
const KEY = 'key-integration-0123456789';
const feedback = feedbackConfig({ mailgun: { signingKey: KEY }, maxBodyBytes: 50_000 });

let t: TestDb;
const sink = new RecordingSink();
const refusals = new RefusalCounter();
const servers: HttpServer[] = [];
const bases: string[] = [];

beforeAll(async () => {
  t = await testDb('webhooks');
  // Two instances, as two daemons, sharing one replay collection.
  for (let i = 0; i < 2; i++) {
    const webhooks = new FeedbackWebhooks({
      feedback,
      certificates: new Map(),
      sink,
      refusals,
      replay: new MongoReplayGuard(t.db.collection<SeenDoc>('mw_feedback_seen')),
      clock: { now: () => Date.now() },
      log: silentLogger(),
    });
    const server = new HttpServer({ ready: () => Promise.resolve(true), stats: () => ({ webhooks: webhooks.stats }), webhooks }, silentLogger(), { token: TOKEN });
    servers.push(server);
    bases.push(`http://127.0.0.1:${await server.listen('127.0.0.1', 0)}`);
  }
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
  await t?.cleanup();
});

function mailgunBody(recipient: string, id: string): string {
  const timestamp = String(Math.floor(Date.now() / 1000));
  const token = randomBytes(25).toString('hex');
  const signature = createHmac('sha256', KEY).update(timestamp + token).digest('hex');
  return JSON.stringify({ signature: { timestamp, token, signature }, 'event-data': { event: 'failed', severity: 'permanent', recipient, id, timestamp: Number(timestamp), message: { headers: { 'message-id': 'abcd@mw.example' } } } });
}

const post = (base: string, path: string, body: string, headers: Record<string, string> = {}) => fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });

it('serves a configured provider without the bearer token; applies once across two instances', async () => {
  const body = mailgunBody('gone@example.com', 'evt-1');
  const first = await post(bases[0] as string, '/webhooks/mailgun', body);
  expect(first.status).toBe(200);
  expect(await first.json()).toEqual({ ok: true, applied: 1, duplicates: 0, suppressed: 1, ignored: 0 });
  const replay = await post(bases[1] as string, '/webhooks/mailgun', body);
  expect(replay.status).toBe(200);
  expect(await replay.json()).toEqual({ ok: true, replayed: true });
  expect(sink.reports.map((r) => [r.source, r.kind, r.email, r.messageId])).toEqual([['mailgun', 'hard-bounce', 'gone@example.com', '<abcd@mw.example>']]);
  expect(refusals.count('mailgun', 'replayed')).toBe(1);
  expect(await t.db.collection('mw_feedback_seen').countDocuments()).toBe(1);
});

it('keeps the bearer token on every other route, unconfigured webhook paths included', async () => {
  const base = bases[0] as string;
  expect((await fetch(`${base}/stats`)).status).toBe(401);
  expect((await post(base, '/webhooks/ses', '{}')).status).toBe(401);
  // With the token it is like any unknown path: the server refuses a POST there (405), a GET 404.
  expect((await post(base, '/webhooks/ses', '{}', { authorization: `Bearer ${TOKEN}` })).status).toBe(405);
  expect((await fetch(`${base}/webhooks/ses`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(404);
  const stats = (await (await fetch(`${base}/stats`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { webhooks: { accepted: number } };
  expect(stats.webhooks.accepted).toBe(1);
  expect((await fetch(`${base}/webhooks/mailgun`)).status).toBe(405);
});

it('stops reading a body streamed without a length at webhooks.maxBodyBytes (413) and applies nothing', async () => {
  const n = sink.batches.length;
  const url = new URL(`${bases[0] as string}/webhooks/mailgun`);
  const status = await new Promise<number>((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    // The server may close the socket while chunks are still going out: that is the point.
    req.on('error', (err) => (String(err).includes('EPIPE') || String(err).includes('ECONNRESET') ? undefined : reject(err)));
    let sent = 0;
    const chunk = Buffer.alloc(16_384, 'x');
    const pump = () => {
      while (sent < 5_000_000) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
  expect(status).toBe(413);
  expect(refusals.count('mailgun', 'too-large')).toBe(1);
  expect(sink.batches.length).toBe(n);
});
