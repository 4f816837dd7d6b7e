/**
 * config/dkim-keys.ts: keys read once with the field named on every problem, the algorithm from
 * the key type, the TXT record's p= equal to the public key (RFC 6376 SPKI for RSA, RFC 8463 raw
 * 32 bytes for Ed25519), DMARC relaxed alignment. Keys are generated here with node:crypto.
 */
import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { alignsWith, loadDkimKeys, txtRecord } from '../../src/config/dkim-keys.js';
import { ConfigError } from '../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'mailwheel-dkim-keys-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, key: KeyObject | string): string {
  writeFileSync(join(dir, name), typeof key === 'string' ? key : key.export({ type: 'pkcs8', format: 'pem' }));
  return name;
}
const entry = (keyFile: string, selector = 's1') => ({ domain: 'Example.COM', selector, keyFile, headers: null });

function problemsOf(fn: () => unknown): ReadonlyArray<{ field: string; message: string }> {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('no ConfigError');
}

describe('loadDkimKeys', () => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ed = generateKeyPairSync('ed25519');

  it('reads RSA and Ed25519 keys relative to the config folder; the algorithm follows the key type', () => {
    const keys = loadDkimKeys([entry(write('rsa.pem', rsa.privateKey), 'a'), entry(write('ed.pem', ed.privateKey), 'b')], dir);
    expect(keys.map((k) => [k.algorithm, k.describe, k.recordName])).toEqual([
      ['rsa-sha256', 'RSA-2048', 'a._domainkey.example.com'],
      ['ed25519-sha256', 'Ed25519', 'b._domainkey.example.com'],
    ]);
    expect(keys[0]?.headers).toContain('List-Unsubscribe-Post');
    expect(keys[0]?.privateKey.asymmetricKeyType).toBe('rsa');
  });

  it('names dkim[i].keyFile for a missing file, a non-key, a short RSA key and an EC key, all at once', () => {
    const short = generateKeyPairSync('rsa', { modulusLength: 768 });
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const problems = problemsOf(() =>
      loadDkimKeys([entry('missing.pem'), entry(write('junk.pem', 'not a key\n')), entry(write('short.pem', short.privateKey)), entry(write('ec.pem', ec.privateKey)), entry(write('ok.pem', ed.privateKey))], dir),
    );
    expect(problems.map((p) => p.field)).toEqual(['dkim[0].keyFile', 'dkim[1].keyFile', 'dkim[2].keyFile', 'dkim[3].keyFile']);
    expect(problems[0]?.message).toMatch(/cannot read .*missing\.pem/);
    expect(problems[1]?.message).toMatch(/no usable PEM private key/);
    expect(problems[2]?.message).toMatch(/768 bits/);
    expect(problems[3]?.message).toMatch(/ec key: DKIM signs with RSA or Ed25519 keys only/);
  });

  it('a public key is not a private key', () => {
    const file = write('pub.pem', rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString());
    expect(problemsOf(() => loadDkimKeys([entry(file)], dir))[0]?.field).toBe('dkim[0].keyFile');
  });
});

describe('txtRecord', () => {
  it('RSA: k=rsa and p= the SubjectPublicKeyInfo DER of the public key', () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const m = /^v=DKIM1; k=rsa; p=([A-Za-z0-9+/=]+)$/.exec(txtRecord(privateKey));
    expect(m).not.toBeNull();
    const back = createPublicKey({ key: Buffer.from(m?.[1] ?? '', 'base64'), format: 'der', type: 'spki' });
    expect(back.equals(publicKey)).toBe(true);
  });

  it('Ed25519: k=ed25519 and p= the raw 32-byte public key (RFC 8463), not the SPKI structure', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const m = /^v=DKIM1; k=ed25519; p=([A-Za-z0-9+/=]+)$/.exec(txtRecord(privateKey));
    const raw = Buffer.from(m?.[1] ?? '', 'base64');
    expect(raw).toHaveLength(32);
    // The SPKI DER of an Ed25519 key is a fixed 12-byte prefix and the raw key.
    expect(raw.equals(publicKey.export({ type: 'spki', format: 'der' }).subarray(12))).toBe(true);
  });
});

describe('alignsWith (DMARC relaxed)', () => {
  it('equal or below the signing domain aligns; a sibling, a parent or a look-alike does not', () => {
    expect(alignsWith('example.com', 'example.com')).toBe(true);
    expect(alignsWith('News.Example.com', 'example.COM')).toBe(true);
    expect(alignsWith('example.com', 'news.example.com')).toBe(false);
    expect(alignsWith('badexample.com', 'example.com')).toBe(false);
    expect(alignsWith('example.org', 'example.com')).toBe(false);
  });
});
