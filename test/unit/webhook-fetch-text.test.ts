/**
 * The production fetcher of SNS certificates against a local https server (the test certificate
 * of test/fixtures/tls): it verifies TLS, caps the body, gives up on silence, and fetches only
 * https.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { httpsGetText } from '../../src/feedback/webhooks/fetch-text.js';

const cert = readFileSync(new URL('../fixtures/tls/cert.pem', import.meta.url), 'utf8');
const key = readFileSync(new URL('../fixtures/tls/key.pem', import.meta.url), 'utf8');
let server: Server;
let base: string;

beforeAll(async () => {
  server = createServer({ cert, key }, (req, res) => {
    if (req.url === '/cert.pem') return void res.end('-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----\n');
    if (req.url === '/big.pem') return void res.end('x'.repeat(200_000));
    if (req.url === '/missing.pem') {
      res.statusCode = 404;
      return void res.end('no');
    }
    // /silent.pem: never answers
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(
  () =>
    new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    }),
);

it('fetches over verified TLS, and refuses a server it cannot verify', async () => {
  expect(await httpsGetText(`${base}/cert.pem`, { ca: cert })).toContain('BEGIN CERTIFICATE');
  await expect(httpsGetText(`${base}/cert.pem`)).rejects.toThrow(/self-signed|certificate/i);
});

it('refuses a body over the cap, a non-200 answer, a silent server and a non-https URL', async () => {
  await expect(httpsGetText(`${base}/big.pem`, { ca: cert, maxBytes: 64 * 1024 })).rejects.toThrow(/over 65536 bytes/);
  await expect(httpsGetText(`${base}/missing.pem`, { ca: cert })).rejects.toThrow(/answered 404/);
  await expect(httpsGetText(`${base}/silent.pem`, { ca: cert, timeoutMs: 300 })).rejects.toThrow(/no answer in 300 ms/);
  await expect(httpsGetText(base.replace('https', 'http'), { ca: cert })).rejects.toThrow(/only https/);
});
