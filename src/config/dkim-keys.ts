/**
 * The DKIM private keys of `dkim[]`, read and parsed once at start-up (loadConfig), never per
 * message: re-parsing an RSA-2048 PEM costs about as much as the signature itself. A key that
 * cannot be used stops start-up with a ConfigError naming its field (exit 78), instead of every
 * message going out unsigned or failing later.
 *
 * Also the DNS TXT record each key needs (`config check` prints it): RFC 6376 `k=rsa` with the
 * SubjectPublicKeyInfo DER, RFC 8463 `k=ed25519` with the raw 32-byte public key. Only the public
 * half is ever formatted; the private key object is never serialised anywhere.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { ConfigError, type ConfigProblem } from '../errors.js';
import type { Config } from './schema.js';

/** RFC 8301 §3.2: verifiers must not accept signatures from RSA keys under 1024 bits. */
const MIN_RSA_BITS = 1024;

/** Headers signed when `headers` is null (those present in the message are signed). */
export const DEFAULT_SIGNED_HEADERS: readonly string[] = [
  'From',
  'To',
  'Subject',
  'Date',
  'Message-ID',
  'MIME-Version',
  'Content-Type',
  'List-Unsubscribe',
  'List-Unsubscribe-Post',
  'Feedback-ID',
];

export interface DkimKey {
  readonly domain: string;
  readonly selector: string;
  readonly algorithm: 'rsa-sha256' | 'ed25519-sha256';
  /** Parsed once; handed to the signer as is. */
  readonly privateKey: KeyObject;
  readonly headers: readonly string[];
  /** The TXT record to publish, `v=DKIM1; k=...; p=...`. */
  readonly txt: string;
  /** `<selector>._domainkey.<domain>` */
  readonly recordName: string;
  /** e.g. `RSA-2048`, `Ed25519` (for config check). */
  readonly describe: string;
}

/**
 * Reads and checks every key. `baseDir` is the operator's config folder (relative key files
 * are resolved there, like feedback.webhooks.ses.certificates). Every bad key is reported.
 */
export function loadDkimKeys(entries: Config['dkim'], baseDir: string): DkimKey[] {
  const problems: ConfigProblem[] = [];
  const keys: DkimKey[] = [];
  entries.forEach((e, i) => {
    const field = `dkim[${i}].keyFile`;
    const file = isAbsolute(e.keyFile) ? e.keyFile : join(baseDir, e.keyFile);
    let pem: Buffer;
    try {
      pem = readFileSync(file);
    } catch (err) {
      problems.push({ field, message: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` });
      return;
    }
    let key: KeyObject;
    try {
      key = createPrivateKey({ key: pem, format: 'pem' });
    } catch {
      // The parser's message may quote the file; say only what is wrong.
      problems.push({ field, message: `${file} holds no usable PEM private key (PKCS#8 or PKCS#1, unencrypted)` });
      return;
    }
    const type = key.asymmetricKeyType;
    if (type === 'rsa') {
      const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
      if (bits < MIN_RSA_BITS) {
        problems.push({ field, message: `RSA key of ${bits} bits: at least ${MIN_RSA_BITS} are needed (2048 recommended)` });
        return;
      }
      keys.push(makeKey(e, key, 'rsa-sha256', `RSA-${bits}`));
    } else if (type === 'ed25519') {
      keys.push(makeKey(e, key, 'ed25519-sha256', 'Ed25519'));
    } else {
      problems.push({ field, message: `a ${type ?? 'unknown'} key: DKIM signs with RSA or Ed25519 keys only` });
    }
  });
  if (problems.length > 0) throw ConfigError.of(problems);
  return keys;
}

function makeKey(e: Config['dkim'][number], privateKey: KeyObject, algorithm: DkimKey['algorithm'], describe: string): DkimKey {
  const domain = e.domain.toLowerCase();
  return {
    domain,
    selector: e.selector,
    algorithm,
    privateKey,
    headers: e.headers ?? DEFAULT_SIGNED_HEADERS,
    txt: txtRecord(privateKey),
    recordName: `${e.selector}._domainkey.${domain}`,
    describe,
  };
}

/** The `v=DKIM1` record for the public half of `privateKey`. */
export function txtRecord(privateKey: KeyObject): string {
  const pub = createPublicKey(privateKey);
  if (pub.asymmetricKeyType === 'ed25519') {
    // RFC 8463 §4.2: p= is the raw public key, not the SPKI structure; JWK's x is exactly it.
    const x = pub.export({ format: 'jwk' }).x ?? '';
    return `v=DKIM1; k=ed25519; p=${Buffer.from(x, 'base64url').toString('base64')}`;
  }
  return `v=DKIM1; k=rsa; p=${pub.export({ type: 'spki', format: 'der' }).toString('base64')}`;
}

/** DMARC relaxed alignment: the From domain equals d= or lies below it. */
export function alignsWith(fromDomain: string, signingDomain: string): boolean {
  const f = fromDomain.toLowerCase();
  const d = signingDomain.toLowerCase();
  return f === d || f.endsWith(`.${d}`);
}
