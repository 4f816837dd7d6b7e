/**
 * DKIM keys for the benches: an RSA-2048 and an Ed25519 key made with node:crypto, written to a
 * temp folder and read back through loadDkimKeys, the path the daemon uses (parsed once).
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDkimKeys, type DkimKey } from '../../src/config/dkim-keys.js';

export function benchDkimKeys(): { rsa: DkimKey; ed25519: DkimKey } {
  const dir = mkdtempSync(join(tmpdir(), 'mw-bench-dkim-'));
  try {
    writeFileSync(join(dir, 'rsa.pem'), generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
    writeFileSync(join(dir, 'ed.pem'), generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const [rsa, ed25519] = loadDkimKeys(
      [
        { domain: 'example.com', selector: 'bench-rsa', keyFile: 'rsa.pem', headers: null },
        { domain: 'example.com', selector: 'bench-ed', keyFile: 'ed.pem', headers: null },
      ],
      dir,
    );
    if (rsa === undefined || ed25519 === undefined) throw new Error('bench keys missing');
    return { rsa, ed25519 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
