/**
 * One-click unsubscribe through the real HttpServer on 127.0.0.1:0, a real SuppressionList and the
 * real suppression collection: the URL from a message's List-Unsubscribe header suppresses its
 * address on POST (again and again with the same answer); tampered, expired, unsigned and
 * other-secret tokens are refused with 4xx and write nothing; GET never writes; no secret, 503.
 */
import pino from 'pino';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MongoSuppressionStore, type SuppressionDoc } from '../../src/adapters/mongo/suppression-store.js';
import type { Config } from '../../src/config/schema.js';
import { SuppressionList } from '../../src/core/suppression-list.js';
import { signToken, unsubscribeHeaders } from '../../src/core/unsubscribe-token.js';
import { HttpServer } from '../../src/http/server.js';
import { UnsubscribeHandler, type Unsubscriber } from '../../src/http/unsubscribe.js';
import { testDb, type TestDb } from '../helpers/db.js';

const SECRET = 'integration-secret-0123456789';
const ONE_CLICK = 'List-Unsubscribe=One-Click';
const FORM = 'application/x-www-form-urlencoded';
const inOneDay = () => Math.floor(Date.now() / 1000) + 86_400;

let db: TestDb;
let list: SuppressionList;
const servers: HttpServer[] = [];
const logLines: string[] = [];
const log = pino({ level: 'debug' }, new Writable({ write: (chunk: Buffer, _enc, cb) => (logLines.push(chunk.toString()), cb()) }));
let base: string;

const col = () => db.db.collection<SuppressionDoc>('mailwheel_suppressions');
const snapshot = async () => JSON.stringify(await col().find({}).sort({ _id: 1 }).toArray());

async function start(target: Unsubscriber, secret: string | null): Promise<string> {
  const server = new HttpServer({ ready: async () => true, stats: () => ({}), unsubscribe: new UnsubscribeHandler({ list: target, secret, log }) }, log);
  servers.push(server);
  const port = await server.listen('127.0.0.1', 0);
  return `http://127.0.0.1:${port}`;
}

/** The one-click URL exactly as a message's List-Unsubscribe header carries it. */
function oneClickUrl(userId: string, email: string, secret = SECRET): string {
  const cfg: Config['unsubscribe'] = { secret, baseUrl: base, allowInsecureBaseUrl: true, mailto: 'unsubscribe@example.com', tokenTtlDays: 60 };
  const header = unsubscribeHeaders({ userId, email }, cfg, Date.now())['List-Unsubscribe'] ?? '';
  const url = [...header.matchAll(/<(http[^>]+)>/g)][0]?.[1];
  if (url === undefined) throw new Error(`no http URL in ${header}`);
  return url;
}

const post = (url: string, body: string = ONE_CLICK, contentType = FORM) => fetch(url, { method: 'POST', headers: { 'content-type': contentType }, body });
const tokenUrl = (token: string) => `${base}/unsubscribe?t=${encodeURIComponent(token)}`;

beforeAll(async () => {
  db = await testDb('unsubscribe');
  list = new SuppressionList(new MongoSuppressionStore(col()), { hardBounceLimit: 1 });
  await list.load();
  base = await start(list, SECRET);
});
afterAll(async () => {
  for (const s of servers) await s.close();
  await db?.cleanup();
});

describe('POST /unsubscribe', () => {
  it('suppresses the address of a valid token, and answers a repeat the same way', async () => {
    const url = oneClickUrl('u1', 'Ada@Example.com');
    const first = await post(url);
    expect(first.status).toBe(200);
    expect(first.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await col().findOne({ _id: 'ada@example.com' })).toMatchObject({ suppressed: true, reason: 'unsubscribe', userId: 'u1' });
    expect(list.has('ada@example.com')).toBe(true);

    const again = await post(url);
    expect(again.status).toBe(200);
    expect(await col().countDocuments({ _id: 'ada@example.com' })).toBe(1);
  });

  it('accepts the multipart/form-data body RFC 8058 recommends', async () => {
    const boundary = '----mw1234';
    const body = `--${boundary}\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\nOne-Click\r\n--${boundary}--\r\n`;
    const res = await post(oneClickUrl('u2', 'multi@example.com'), body, `multipart/form-data; boundary=${boundary}`);
    expect(res.status).toBe(200);
    expect(await col().findOne({ _id: 'multi@example.com' })).toMatchObject({ suppressed: true });
  });

  it('refuses tampered, expired, unsigned and other-secret tokens with 4xx and writes nothing', async () => {
    const before = await snapshot();
    const good = new URL(oneClickUrl('u3', 'victim@example.com')).searchParams.get('t') ?? '';
    const [payload = '', sig = ''] = good.split('.');
    const forged = Buffer.from(JSON.stringify({ u: 'u3', e: 'someone-else@example.com', x: inOneDay() })).toString('base64url');
    const cases: Array<[string, string, number]> = [
      ['tampered payload', `${forged}.${sig}`, 400],
      ['tampered signature', `${payload}.${sig.slice(0, 10)}${sig[10] === 'A' ? 'B' : 'A'}${sig.slice(11)}`, 400],
      ['expired', signToken({ userId: 'u3', email: 'victim@example.com', expiresAt: Math.floor(Date.now() / 1000) - 1 }, SECRET), 410],
      ['unsigned', payload, 400],
      ['other secret', signToken({ userId: 'u3', email: 'victim@example.com', expiresAt: inOneDay() }, 'not-the-configured-secret'), 400],
      ['empty', '', 400],
    ];
    for (const [name, token, status] of cases) {
      const res = await post(tokenUrl(token));
      expect(res.status, name).toBe(status);
      await res.arrayBuffer();
    }
    expect((await post(`${base}/unsubscribe`)).status).toBe(400);
    expect(await snapshot()).toBe(before);
    expect(list.has('victim@example.com')).toBe(false);
    expect(list.has('someone-else@example.com')).toBe(false);
  });

  it('refuses a POST without List-Unsubscribe=One-Click, and a body over 4 KB with 413', async () => {
    const before = await snapshot();
    const url = oneClickUrl('u4', 'body@example.com');
    expect((await post(url, '')).status).toBe(400);
    expect((await post(url, 'List-Unsubscribe=Maybe')).status).toBe(400);
    expect((await post(url, `${ONE_CLICK}&pad=${'x'.repeat(5000)}`)).status).toBe(413);
    expect(await snapshot()).toBe(before);
  });

  it('answers 503 and counts a failure when the suppression cannot be stored', async () => {
    const failing: Unsubscriber = { unsubscribe: () => Promise.reject(new Error('mongo down')) };
    const failingBase = await start(failing, SECRET);
    const token = signToken({ userId: 'u5', email: 'later@example.com', expiresAt: inOneDay() }, SECRET);
    const res = await post(`${failingBase}/unsubscribe?t=${token}`);
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('60');
  });
});

describe('GET /unsubscribe', () => {
  it('never suppresses: it shows a form that POSTs the same token, and that form works', async () => {
    const before = await snapshot();
    const url = oneClickUrl('u6', 'scanned@example.com');
    for (let i = 0; i < 3; i++) {
      const res = await fetch(url);
      expect(res.status).toBe(200);
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(res.headers.get('referrer-policy')).toBe('no-referrer');
      const html = await res.text();
      expect(html).toMatch(/<form method="post" action="\?t=[A-Za-z0-9_.%-]+">/);
    }
    expect(await snapshot()).toBe(before);
    expect(list.has('scanned@example.com')).toBe(false);

    // Submitting the page's form (as a browser would) is what unsubscribes.
    const html = await (await fetch(url)).text();
    const action = /action="([^"]+)"/.exec(html)?.[1] ?? '';
    const field = /name="([^"]+)" value="([^"]+)"/.exec(html);
    const res = await post(new URL(action, url).href, new URLSearchParams({ [field?.[1] ?? '']: field?.[2] ?? '' }).toString());
    expect(res.status).toBe(200);
    expect(await col().findOne({ _id: 'scanned@example.com' })).toMatchObject({ suppressed: true, userId: 'u6' });
  });

  it('refuses an invalid or expired token with 4xx and no form', async () => {
    const bad = await fetch(tokenUrl('not-a-token'));
    expect(bad.status).toBe(400);
    expect(await bad.text()).not.toMatch(/<form/);
    const expired = signToken({ userId: 'u7', email: 'old@example.com', expiresAt: Math.floor(Date.now() / 1000) - 60 }, SECRET);
    expect((await fetch(tokenUrl(expired))).status).toBe(410);
  });
});

describe('without a configured secret', () => {
  it('answers 503 to GET and POST, even for a token signed with some secret, and writes nothing', async () => {
    const before = await snapshot();
    const noSecretBase = await start(list, null);
    const token = signToken({ userId: 'u8', email: 'nosecret@example.com', expiresAt: inOneDay() }, SECRET);
    const url = `${noSecretBase}/unsubscribe?t=${token}`;
    expect((await post(url)).status).toBe(503);
    expect((await fetch(url)).status).toBe(503);
    expect(await snapshot()).toBe(before);
  });
});

describe('the other routes', () => {
  it('stay GET-only, and other methods on /unsubscribe are 405', async () => {
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/healthz`, { method: 'POST' })).status).toBe(405);
    expect((await fetch(`${base}/stats`, { method: 'POST', body: ONE_CLICK })).status).toBe(405);
    const put = await fetch(oneClickUrl('u9', 'put@example.com'), { method: 'PUT', body: ONE_CLICK });
    expect(put.status).toBe(405);
    expect(put.headers.get('allow')).toBe('GET, POST');
    expect((await fetch(`${base}/nope`)).status).toBe(404);
  });

  it('/unsubscribe is 404 when the server has no unsubscribe handler', async () => {
    const server = new HttpServer({ ready: async () => true, stats: () => ({}) }, log);
    servers.push(server);
    const port = await server.listen('127.0.0.1', 0);
    expect((await fetch(`http://127.0.0.1:${port}/unsubscribe?t=x`)).status).toBe(404);
  });
});

it('no log line carries a token or the secret', () => {
  const all = logLines.join('');
  expect(all).toContain('unsubscribed'); // the log was captured at all
  expect(all).not.toContain(SECRET);
  // Every token starts with base64url('{"u":"'), which nothing else in a log line would contain.
  expect(all).not.toContain(Buffer.from('{"u":"').toString('base64url').slice(0, 7));
});
