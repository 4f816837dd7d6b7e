/**
 * DkimWorkerPool: signs in worker threads what the in-thread DkimSigner signs (the same fields
 * but for the signing time), replaces a worker that dies, and refuses work once closed.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { DkimWorkerPool, messageSigner } from '../../src/adapters/smtp/dkim-pool.js';
import { DkimSigner } from '../../src/adapters/smtp/dkim-signer.js';
import { loadDkimKeys } from '../../src/config/dkim-keys.js';

const dir = mkdtempSync(join(tmpdir(), 'mailwheel-dkim-pool-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(join(dir, 'ed.pem'), generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }));
const keys = loadDkimKeys([{ domain: 'example.com', selector: 'p1', keyFile: 'ed.pem', headers: null }], dir);
const msg = (i: number) => `Date: Mon, 05 Jan 2026 09:00:00 +0000\r\nFrom: a@example.com\r\nTo: u${i}@example.org\r\nSubject: n${i}\r\nMessage-ID: <m${i}@example.com>\r\n\r\nHello ${i}\r\n`;

describe('DkimWorkerPool', () => {
  it('signs like the in-thread signer', { timeout: 60_000 }, async () => {
    const pool = new DkimWorkerPool(keys, 2);
    const local = new DkimSigner(keys);
    try {
      const raws = Array.from({ length: 40 }, (_, i) => msg(i));
      const [pooled, inThread] = await Promise.all([Promise.all(raws.map((r) => pool.sign(r))), Promise.all(raws.map((r) => local.sign(r)))]);
      // The same fields but for the signing time (t=) and so the signature (b=); both are
      // verified independently in test/integration/dkim-signing.test.ts.
      const timeless = (s: string) => s.replace(/\r\n[ \t]+/g, ' ').replace(/\bt=\d+;/, 't=T;').replace(/\bb=[A-Za-z0-9+/= ]+/, 'b=B');
      expect(pooled.map(timeless)).toEqual(inThread.map(timeless));
      expect(timeless(pooled[0] ?? '')).toMatch(/^DKIM-Signature: .*a=ed25519-sha256.*bh=.*b=B/);
      for (const [i, s] of pooled.entries()) expect(s.endsWith(raws[i] ?? '')).toBe(true);
    } finally {
      await pool.close();
    }
  });

  it('a worker that dies is replaced and signing goes on; after close nothing is signed', { timeout: 60_000 }, async () => {
    const pool = new DkimWorkerPool(keys, 1);
    try {
      await pool.sign(msg(0));
      const first = pool.workers[0] as Worker;
      await first.terminate();
      // The exit event replaces it: wait for the new thread, then sign through it.
      const deadline = Date.now() + 30_000;
      while (pool.workers[0] === first && Date.now() < deadline) await new Promise((r) => setImmediate(r));
      expect(pool.workers[0]).not.toBe(first);
      expect(await pool.sign(msg(1))).toMatch(/^DKIM-Signature: /);
    } finally {
      await pool.close();
    }
    await expect(pool.sign(msg(2))).rejects.toThrow(/closed/);
    expect(pool.workers).toHaveLength(0);
  });

  it('messageSigner: without keys nothing is started and messages pass unchanged', async () => {
    const s = messageSigner([]);
    expect(s).toBeInstanceOf(DkimSigner);
    expect(await s.sign(msg(3))).toBe(msg(3));
    await s.close();
  });
});
