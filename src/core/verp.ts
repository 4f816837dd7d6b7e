/**
 * VERP return paths (variable envelope return path): each message's envelope sender (MAIL FROM)
 * names the message, so a bounce (a DSN is mailed to the envelope sender, RFC 5321 §4.5.5) says
 * which delivery it is about even when its body is mangled or missing the original.
 *
 *     <localPart>+<digest>.<sig>@<domain>      e.g. bounces+3f2a…9c.k7q2m4x8zt@mail.example.com
 *
 * `digest` is the Message-ID's local part (core/message.ts `messageIdFor`: 32 hex of SHA-256 of
 * the delivery key), which the message index maps back to the delivery. `sig` is the HMAC-SHA256
 * of the digest under `feedback.verp.secret`, truncated to 10 base32 characters (50 bits): enough
 * that nobody guesses a valid token for a digest they did not receive, while the local part stays
 * within RFC 5321's 64 octets (20 + 1 + 32 + 1 + 10 = 64 with the longest allowed localPart).
 *
 * Everything is lower case and read case-insensitively: some relays fold the case of addresses.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export interface VerpSettings {
  domain: string;
  localPart: string;
  secret: string;
}

export type VerpReading =
  | { digest: string }
  /**
   * foreign: not a VERP address of ours (another domain or local part) — nothing to verify;
   * malformed: our prefix and domain, but the token is not `<32 hex>.<10 base32>`;
   * bad-signature: a well-formed token whose signature does not match its digest (forged or tampered).
   */
  | { refusal: 'foreign' | 'malformed' | 'bad-signature' };

const SIG_CHARS = 10;
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
/** Domain separation: the secret may be reused by an operator elsewhere; these MACs mean only this. */
const CONTEXT = 'mailwheel-verp-v1\n';

/** The return path for the message whose Message-ID digest is `digest` (32 hex). */
export function verpAddress(digest: string, verp: VerpSettings): string {
  const d = digest.toLowerCase();
  if (!/^[0-9a-f]{32}$/.test(d)) throw new RangeError(`not a message digest: ${JSON.stringify(digest)}`);
  return `${verp.localPart.toLowerCase()}+${d}.${signature(d, verp.secret)}@${verp.domain.toLowerCase()}`;
}

/** Reads and verifies a VERP address (angle brackets and surrounding space allowed). */
export function readVerp(address: string, verp: VerpSettings): VerpReading {
  const a = address.trim().replace(/^<(.*)>$/s, '$1').trim().toLowerCase();
  const at = a.lastIndexOf('@');
  if (at < 0) return { refusal: 'foreign' };
  const domain = a.slice(at + 1).replace(/\.$/, '');
  const local = a.slice(0, at);
  const prefix = `${verp.localPart.toLowerCase()}+`;
  if (domain !== verp.domain.toLowerCase() || !local.startsWith(prefix)) return { refusal: 'foreign' };
  const m = /^([0-9a-f]{32})\.([a-z2-7]{10})$/.exec(local.slice(prefix.length));
  if (m === null) return { refusal: 'malformed' };
  const digest = m[1] as string;
  const expected = Buffer.from(signature(digest, verp.secret));
  const given = Buffer.from(m[2] as string);
  // Both are exactly SIG_CHARS ASCII bytes (the pattern above), as timingSafeEqual needs.
  return timingSafeEqual(expected, given) ? { digest } : { refusal: 'bad-signature' };
}

/**
 * The return-path function for the MIME builder from `feedback.verp` (its config shape), or
 * undefined when VERP is off (no domain): the envelope sender stays the From address.
 */
export function verpReturnPath(verp: { domain: string | null; localPart: string; secret: string | null }): ((digest: string) => string) | undefined {
  const { domain, localPart, secret } = verp;
  if (domain === null || secret === null) return undefined;
  const settings = { domain, localPart, secret };
  return (digest) => verpAddress(digest, settings);
}

function signature(digest: string, secret: string): string {
  const mac = createHmac('sha256', secret).update(CONTEXT + digest).digest();
  // The first 50 bits of the MAC as 10 base32 characters, most significant first.
  let out = '';
  let acc = 0;
  let bits = 0;
  for (let i = 0; out.length < SIG_CHARS; i++) {
    acc = ((acc << 8) | (mac[i] as number)) & 0xffff;
    bits += 8;
    while (bits >= 5 && out.length < SIG_CHARS) {
      bits -= 5;
      out += BASE32[(acc >> bits) & 31];
    }
  }
  return out;
}
