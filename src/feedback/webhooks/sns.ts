/**
 * Amazon SNS message authentication (AWS docs "Verifying the signatures of Amazon SNS messages"):
 * the signature covers a canonical string of `Name\nValue\n` pairs in a fixed order, which
 * differs for a Notification (Message, MessageId, Subject if present, Timestamp, TopicArn, Type)
 * and for a Subscription/UnsubscribeConfirmation (Message, MessageId, SubscribeURL, Timestamp,
 * Token, TopicArn, Type). SignatureVersion 1 is SHA1withRSA, 2 is SHA256withRSA, both against the
 * public key of the X.509 certificate at SigningCertURL.
 *
 * The certificate URL is the attacker's choice until checked: only https, on a host matching the
 * configured SNS host pattern, with a path ending in .pem. The certificate then comes from the
 * configured ones (pinned by URL) or from `fetchText` (production: an https GET, whose TLS check
 * of the AWS host is what makes the certificate trustworthy), and must be within its validity.
 */
import { X509Certificate, verify } from 'node:crypto';
import type { Json } from './common.js';
import { str } from './common.js';

export type SnsType = 'Notification' | 'SubscriptionConfirmation' | 'UnsubscribeConfirmation';

export interface SnsMessage {
  Type: SnsType;
  MessageId: string;
  TopicArn: string;
  Message: string;
  Timestamp: string;
  SignatureVersion: '1' | '2';
  Signature: string;
  SigningCertURL: string;
  Subject?: string | undefined;
  SubscribeURL?: string | undefined;
  Token?: string | undefined;
}

const TYPES: readonly string[] = ['Notification', 'SubscriptionConfirmation', 'UnsubscribeConfirmation'];

/** The SNS envelope with the fields its type needs, or undefined when any is missing. */
export function snsMessageOf(o: Json): SnsMessage | undefined {
  const type = str(o, 'Type');
  const version = str(o, 'SignatureVersion');
  const base = {
    MessageId: str(o, 'MessageId'),
    TopicArn: str(o, 'TopicArn'),
    Message: typeof o['Message'] === 'string' ? o['Message'] : undefined,
    Timestamp: str(o, 'Timestamp'),
    Signature: str(o, 'Signature'),
    SigningCertURL: str(o, 'SigningCertURL'),
  };
  if (type === undefined || !TYPES.includes(type) || (version !== '1' && version !== '2')) return undefined;
  if (Object.values(base).some((v) => v === undefined)) return undefined;
  const msg: SnsMessage = { ...(base as Omit<SnsMessage, 'Type' | 'SignatureVersion'>), Type: type as SnsType, SignatureVersion: version };
  if (typeof o['Subject'] === 'string') msg.Subject = o['Subject'];
  if (type !== 'Notification') {
    msg.SubscribeURL = str(o, 'SubscribeURL');
    msg.Token = str(o, 'Token');
    if (msg.SubscribeURL === undefined || msg.Token === undefined) return undefined;
  }
  return msg;
}

/** The canonical string SNS signed for this message. */
export function stringToSign(m: SnsMessage): string {
  const keys: Array<keyof SnsMessage> =
    m.Type === 'Notification'
      ? ['Message', 'MessageId', ...(m.Subject !== undefined ? (['Subject'] as const) : []), 'Timestamp', 'TopicArn', 'Type']
      : ['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn', 'Type'];
  return keys.map((k) => `${k}\n${m[k] ?? ''}\n`).join('');
}

/** True for an https URL on a host matching `hostPattern` whose path ends in `.pem` (`pem`) or any path. */
export function trustedSnsUrl(url: string, hostPattern: RegExp, pem: boolean): boolean {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return false;
  }
  if (u.protocol !== 'https:' || u.username !== '' || u.password !== '' || (u.port !== '' && u.port !== '443')) return false;
  if (!hostPattern.test(u.hostname)) return false;
  return !pem || (u.pathname.endsWith('.pem') && u.search === '');
}

/** Verifies `m`'s signature with the certificate's key; false for any failure (bad base64, wrong key). */
export function signatureValid(m: SnsMessage, cert: X509Certificate): boolean {
  try {
    const algorithm = m.SignatureVersion === '1' ? 'sha1' : 'sha256';
    return verify(algorithm, Buffer.from(stringToSign(m), 'utf8'), cert.publicKey, Buffer.from(m.Signature, 'base64'));
  } catch {
    return false;
  }
}

/** Fetched certificates kept, at most this many (a handful of regions and key rotations). */
const CACHE_MAX = 32;

/**
 * The signing certificates: configured ones by URL, else fetched once and cached. A certificate
 * that does not parse, or is outside its validity at `now`, is no certificate (undefined).
 */
export class SnsCertificates {
  readonly #pinned = new Map<string, X509Certificate | undefined>();
  readonly #fetched = new Map<string, Promise<X509Certificate | undefined>>();
  readonly #fetchText: ((url: string) => Promise<string>) | undefined;

  constructor(pinned: ReadonlyMap<string, string>, fetchText?: (url: string) => Promise<string>) {
    for (const [url, pem] of pinned) this.#pinned.set(url, parseCert(pem));
    this.#fetchText = fetchText;
  }

  /** Configured URLs whose PEM does not parse (a configuration error). */
  unusable(): string[] {
    return [...this.#pinned].filter(([, c]) => c === undefined).map(([url]) => url);
  }

  async get(url: string, now: number): Promise<X509Certificate | undefined> {
    let cert: X509Certificate | undefined;
    if (this.#pinned.has(url)) cert = this.#pinned.get(url);
    else if (this.#fetchText !== undefined) cert = await this.#fetch(url);
    if (cert === undefined) return undefined;
    return Date.parse(cert.validFrom) <= now && now <= Date.parse(cert.validTo) ? cert : undefined;
  }

  #fetch(url: string): Promise<X509Certificate | undefined> {
    let p = this.#fetched.get(url);
    if (p === undefined) {
      const fetchText = this.#fetchText as (url: string) => Promise<string>;
      p = fetchText(url).then(parseCert, () => undefined);
      // A failed fetch is not cached: the next notification tries again.
      void p.then((c) => {
        if (c === undefined) this.#fetched.delete(url);
      });
      if (this.#fetched.size >= CACHE_MAX) this.#fetched.delete(this.#fetched.keys().next().value as string);
      this.#fetched.set(url, p);
    }
    return p;
  }
}

function parseCert(pem: string): X509Certificate | undefined {
  try {
    return new X509Certificate(pem);
  } catch {
    return undefined;
  }
}
