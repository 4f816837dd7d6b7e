/**
 * DKIM as an operator meets it, through the real CLI: `config check` prints each signature's TXT
 * record (p= parsed back and compared with the key generated here) and never the private key; a
 * key that cannot be used stops `config check` and `start` with 78 naming `dkim[i].keyFile`; a
 * signing domain that does not align with smtp.from is a warning; `preview --raw` prints the
 * message signed as it would be sent (verified by dkimpy).
 */
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, writeTestConfig } from '../helpers/cli.js';
import { testDb, type TestDb } from '../helpers/db.js';
import { dkimpyVerify } from '../helpers/dkim-verify.js';

const EX_CONFIG = 78;
const BASE = { LOG_LEVEL: 'warn', MONGODB_URI: 'mongodb://127.0.0.1:1/app', SMTP_URL: 'smtp://127.0.0.1:1' };

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ed = generateKeyPairSync('ed25519');
const rsaPem = rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const edPem = ed.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

/** A config file whose folder holds the key files (keyFile is relative to it). */
function configWithKeys(dkim: Array<{ domain: string; selector: string; keyFile: string }>, files: Record<string, string>, extra: Record<string, unknown> = {}): string {
  const file = writeTestConfig({ ...extra, dkim: dkim.map((d) => ({ ...d, headers: null })) });
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dirname(file), name), text);
  return file;
}

/** The TXT lines `config check` prints: record name and the value with its quoted strings joined. */
function txtLines(stderr: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of stderr.matchAll(/^dkim: .*publish: (\S+) TXT ((?:"[^"]*" ?)+)$/gm)) {
    out.set(m[1] ?? '', [...(m[2] ?? '').matchAll(/"([^"]*)"/g)].map((q) => q[1]).join(''));
  }
  return out;
}

function pOf(txt: string): Buffer {
  return Buffer.from(/; p=([A-Za-z0-9+/=]+)$/.exec(txt)?.[1] ?? '', 'base64');
}

describe.concurrent('config check and start with dkim', () => {
  it('prints the TXT record of each key; p= is the generated public key; no private key in any output', async () => {
    const file = configWithKeys(
      [
        { domain: 'example.com', selector: 'mw2026', keyFile: 'rsa.pem' },
        { domain: 'example.com', selector: 'mw2026e', keyFile: 'keys/ed.pem' },
      ],
      { 'rsa.pem': rsaPem },
    );
    mkdirSync(join(dirname(file), 'keys'));
    writeFileSync(join(dirname(file), 'keys', 'ed.pem'), edPem);
    const r = await runCli(['config', 'check', '--json', '--config', file], BASE);
    expect(r.code, r.stderr).toBe(0);
    const lines = txtLines(r.stderr);
    expect([...lines.keys()]).toEqual(['mw2026._domainkey.example.com', 'mw2026e._domainkey.example.com']);
    const rsaTxt = lines.get('mw2026._domainkey.example.com') ?? '';
    const edTxt = lines.get('mw2026e._domainkey.example.com') ?? '';
    expect(rsaTxt).toMatch(/^v=DKIM1; k=rsa; p=/);
    expect(edTxt).toMatch(/^v=DKIM1; k=ed25519; p=/);
    expect(createPublicKey({ key: pOf(rsaTxt), format: 'der', type: 'spki' }).equals(rsa.publicKey)).toBe(true);
    expect(pOf(edTxt).equals(ed.publicKey.export({ type: 'spki', format: 'der' }).subarray(12))).toBe(true);
    const doc = JSON.parse(r.stdout) as { dkim: Array<{ name: string; txt: string; algorithm: string }>; warnings: Array<{ setting: string }> };
    expect(doc.dkim.map((d) => [d.name, d.algorithm, d.txt])).toEqual([
      ['mw2026._domainkey.example.com', 'rsa-sha256', rsaTxt],
      ['mw2026e._domainkey.example.com', 'ed25519-sha256', edTxt],
    ]);
    expect(doc.warnings.map((w) => w.setting)).not.toContain('dkim');
    // No line of either private key (base64 body) appears anywhere.
    const secretLines = [...rsaPem.split('\n'), ...edPem.split('\n')].filter((l) => l.length > 20 && !l.startsWith('-----'));
    for (const l of secretLines) expect(r.stdout + r.stderr).not.toContain(l);
  });

  it('a signing domain that does not align with the smtp.from domain is a warning', async () => {
    const file = configWithKeys([{ domain: 'other.example.org', selector: 's1', keyFile: 'ed.pem' }], { 'ed.pem': edPem });
    const r = await runCli(['config', 'check', '--config', file], BASE);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^warning: dkim: no signature's domain \(other\.example\.org\) aligns with the smtp\.from domain example\.com/m);
    // A parent domain of the From domain aligns (relaxed), so no warning.
    const sub = configWithKeys([{ domain: 'example.com', selector: 's1', keyFile: 'ed.pem' }], { 'ed.pem': edPem }, { smtp: { from: 'News <news@mail.example.com>' } });
    const ok = await runCli(['config', 'check', '--config', sub], BASE);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stderr).not.toMatch(/warning: dkim/);
  });

  it('a missing key file, a non-RSA/Ed25519 key and a short RSA key: 78 naming each dkim[i].keyFile, for config check and start', async () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const short = generateKeyPairSync('rsa', { modulusLength: 768 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const file = configWithKeys(
      [
        { domain: 'example.com', selector: 'a', keyFile: 'missing.pem' },
        { domain: 'example.com', selector: 'b', keyFile: 'ec.pem' },
        { domain: 'example.com', selector: 'c', keyFile: 'short.pem' },
        { domain: 'example.com', selector: 'd', keyFile: 'ed.pem' },
      ],
      { 'ec.pem': ec, 'short.pem': short, 'ed.pem': edPem },
    );
    const [check, start] = await Promise.all([runCli(['config', 'check', '--config', file], BASE), runCli(['start', '--config', file], BASE)]);
    for (const r of [check, start]) {
      expect(r.code, r.stderr).toBe(EX_CONFIG);
      expect(r.stderr).toContain('dkim[0].keyFile');
      expect(r.stderr).toContain('dkim[1].keyFile');
      expect(r.stderr).toContain('dkim[2].keyFile');
      expect(r.stderr).not.toContain('dkim[3].keyFile');
      expect(r.stderr).not.toContain(ec.split('\n')[1] ?? 'x');
    }
  });
});

describe('preview --raw with dkim', () => {
  let db: TestDb;
  beforeAll(async () => {
    db = await testDb('dkim_preview');
    await db.db.collection('users').insertOne({ _id: 'p1', email: 'ana@example.test', name: 'Ana', active: true, timezone: 'UTC', emailTimes: ['07:30'], updatedAt: new Date() } as never);
  });
  afterAll(async () => {
    await db?.cleanup();
  });

  it('prints the message signed as it would be sent: both signatures verify with dkimpy', { timeout: 60_000 }, async () => {
    const file = configWithKeys(
      [
        { domain: 'example.com', selector: 'r1', keyFile: 'rsa.pem' },
        { domain: 'example.com', selector: 'e1', keyFile: 'ed.pem' },
      ],
      { 'rsa.pem': rsaPem, 'ed.pem': edPem },
      { unsubscribe: { secret: 'preview-secret-0123456789', baseUrl: 'https://mail.example.test' } },
    );
    const env = { MONGODB_URI: db.uri, MAILWHEEL_CONFIG: file, LOG_LEVEL: 'warn' };
    const [raw, check] = await Promise.all([runCli(['preview', '--user', 'p1', '--raw'], env), runCli(['config', 'check', '--json'], env)]);
    expect(raw.code, raw.stderr).toBe(0);
    expect(raw.stdout.match(/^DKIM-Signature:/gm)).toHaveLength(2);
    expect(raw.stdout).not.toMatch(/^Precedence:/im);
    const records = Object.fromEntries((JSON.parse(check.stdout) as { dkim: Array<{ name: string; txt: string }> }).dkim.map((d) => [d.name, d.txt]));
    expect(dkimpyVerify(records, [raw.stdout])).toEqual([[true, true]]);
    // Without dkim the same preview has no signature.
    const plain = await runCli(['preview', '--user', 'p1', '--raw'], { ...env, MAILWHEEL_CONFIG: writeTestConfig({}) });
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout).not.toMatch(/^DKIM-Signature:/im);
  });
});
