/**
 * DKIM signing of the raw MIME that MimeBuilder makes, with the keys loadConfig parsed once
 * (config/dkim-keys.ts). Canonicalisation and signing are the libraries', not ours:
 *
 * - RSA keys: nodemailer's DKIM signer, because it hands the KeyObject straight to
 *   crypto.Sign (mailauth re-parses a PEM string per message, which for RSA-2048 costs more than
 *   a third of the signature again: measured 2.2 ms per message against 3.5 ms here);
 * - Ed25519 keys: mailauth's dkimSign (RFC 8463), because nodemailer's signer is RSA only.
 *   mailauth takes the key only as PEM (or raw bytes) and parses it per message; with OpenSSL 3
 *   that parse (~0.9 ms here) costs more than the Ed25519 signature itself, so an Ed25519
 *   signature ends up costing about as much CPU as an RSA-2048 one (bench/mime.bench.ts).
 *
 * Both sign relaxed/relaxed and only the listed header fields that are present. The result is
 * the DKIM-Signature field(s) followed by the message unchanged. A signature that cannot be made
 * is an error (never a silently unsigned message: providers would reject or junk it).
 */
import type { Readable } from 'node:stream';
import { dkimSign } from 'mailauth/lib/dkim/sign.js';
import DKIM from 'nodemailer/lib/dkim';
import type { DkimKey } from '../../config/dkim-keys.js';
import { ErrorCodes, MailwheelError } from '../../errors.js';

type Signer = (raw: string) => Promise<string>;

export class DkimSigner {
  readonly #signers: readonly Signer[];
  /** How many signatures each message gets. */
  readonly count: number;

  constructor(keys: readonly DkimKey[]) {
    this.#signers = keys.map((k) => (k.algorithm === 'rsa-sha256' ? rsaSigner(k) : ed25519Signer(k)));
    this.count = keys.length;
  }

  /** `raw` with every configured DKIM-Signature field in front (`raw` itself when none is). */
  async sign(raw: string): Promise<string> {
    if (this.#signers.length === 0) return raw;
    return (await this.fields(raw)) + raw;
  }

  /** Just the DKIM-Signature fields for `raw` (each ending in CRLF), to go in front of it. */
  async fields(raw: string): Promise<string> {
    const fields = await Promise.all(this.#signers.map((s) => s(raw)));
    return fields.join('');
  }

  async close(): Promise<void> {
    // Nothing held: the in-thread signer has no threads or handles.
  }
}

/** Just the DKIM-Signature field nodemailer puts in front of the message. */
function rsaSigner(k: DkimKey): Signer {
  const dkim = new DKIM({ domainName: k.domain, keySelector: k.selector, privateKey: k.privateKey, headerFieldNames: k.headers.join(':') });
  return async (raw) => {
    const signed = await readAll(dkim.sign(raw));
    // nodemailer writes no field (and no error) when crypto refuses the key; refuse to send then.
    if (!signed.startsWith('DKIM-Signature:') || !signed.endsWith(raw)) throw signingFailed(k, 'no signature was produced');
    return signed.slice(0, signed.length - raw.length);
  };
}

function ed25519Signer(k: DkimKey): Signer {
  // mailauth takes the key as PEM and parses it per message (see the file comment).
  const pem = k.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const one = { signingDomain: k.domain, selector: k.selector, privateKey: pem, algorithm: k.algorithm, canonicalization: 'relaxed/relaxed', headerList: k.headers.join(':') };
  return async (raw) => {
    // The signer reads signatureData (and marks its entries, so each call gets a copy); the
    // typings also want the single signature at the top level.
    const r = await dkimSign(raw, { ...one, signatureData: [{ ...one }] });
    const first = r.errors[0];
    if (first !== undefined || r.signatures === '') throw signingFailed(k, first === undefined ? 'no signature was produced' : errorText(first));
    return r.signatures;
  };
}

async function readAll(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks).toString('latin1');
}

function errorText(e: unknown): string {
  const err = (e as { err?: { message?: string } }).err;
  return err?.message ?? 'signing failed';
}

function signingFailed(k: DkimKey, why: string): MailwheelError {
  // Names the selector and domain only: the key itself never reaches an error message.
  return new MailwheelError(ErrorCodes.INTERNAL, `DKIM signing with ${k.selector}._domainkey.${k.domain} failed: ${why}`);
}
