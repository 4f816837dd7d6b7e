/**
 * The bearer token on the HTTP surface, over real HTTP requests to a listening server: the
 * scheme name is case-insensitive (RFC 7235 §2.1), the token itself is not.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { HttpServer } from '../../src/http/server.js';
import { silentLogger } from '../helpers/fakes.js';

const TOKEN = 'http-token-0123456789';
let server: HttpServer;
let base: string;

beforeAll(async () => {
  server = new HttpServer(
    {
      ready: () => Promise.resolve(true),
      stats: () => ({ ok: 1 }),
      metrics: () => Promise.resolve({ contentType: 'text/plain; version=0.0.4', body: 'x 1\n' }),
    },
    silentLogger(),
    { token: TOKEN },
  );
  base = `http://127.0.0.1:${await server.listen('127.0.0.1', 0)}`;
});

afterAll(async () => {
  await server?.close();
});

const status = async (path: string, authorization?: string): Promise<number> =>
  (await fetch(`${base}${path}`, authorization === undefined ? {} : { headers: { authorization } })).status;

it.each(['Bearer', 'bearer', 'BEARER', 'bEaReR'])('accepts the scheme spelled %s on /metrics, /stats and /readyz', async (scheme) => {
  for (const path of ['/metrics', '/stats', '/readyz']) expect(await status(path, `${scheme} ${TOKEN}`), path).toBe(200);
});

it('refuses a wrong token, a token in another case, another scheme, or none', async () => {
  for (const auth of [undefined, `bearer ${TOKEN.toUpperCase()}`, `Bearer ${TOKEN}x`, `Basic ${TOKEN}`, TOKEN, `Bearer${TOKEN}`, 'Bearer ']) {
    expect(await status('/metrics', auth), String(auth)).toBe(401);
    expect(await status('/stats', auth), String(auth)).toBe(401);
  }
  expect(await status('/healthz')).toBe(200);
});
