import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { messageIdFor } from '../../src/core/message.js';
import { readVerp, verpAddress, verpReturnPath } from '../../src/core/verp.js';

const verp = { domain: 'bounce.example.com', localPart: 'bounces', secret: 'a-long-verp-secret-0123456789' };
const digestOf = (key: string): string => (/^<([0-9a-f]{32})@/.exec(messageIdFor(key, 'example.com')) as RegExpExecArray)[1] as string;
const digest = digestOf('2026-12-03T09:00|user-1|scheduled');

/** Replaces the character at `i` with another one of the same alphabet. */
function flip(s: string, i: number, alphabet: string): string {
  const c = s[i] as string;
  const other = alphabet[(alphabet.indexOf(c) + 1) % alphabet.length] as string;
  return s.slice(0, i) + other + s.slice(i + 1);
}

describe('verpAddress', () => {
  it('is <localPart>+<digest>.<sig>@<domain>, the sig the HMAC-SHA256 of the digest as 10 base32 chars', () => {
    const a = verpAddress(digest, verp);
    const m = /^bounces\+([0-9a-f]{32})\.([a-z2-7]{10})@bounce\.example\.com$/.exec(a);
    expect(m).not.toBeNull();
    expect(m?.[1]).toBe(digest);
    // Independent computation: the top 50 bits of the MAC, read as a big integer.
    const mac = createHmac('sha256', verp.secret).update(`mailwheel-verp-v1\n${digest}`).digest();
    const top50 = BigInt(`0x${mac.subarray(0, 8).toString('hex')}`) >> 14n;
    const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
    let want = '';
    for (let i = 9; i >= 0; i--) want += alphabet[Number((top50 >> BigInt(i * 5)) & 31n)];
    expect(m?.[2]).toBe(want);
  });

  it('keeps the local part within 64 octets with the longest allowed localPart (20)', () => {
    const a = verpAddress(digest, { ...verp, localPart: 'b'.repeat(20) });
    expect(a.slice(0, a.indexOf('@')).length).toBeLessThanOrEqual(64);
  });

  it('differs per digest and per secret', () => {
    const other = digestOf('another-key');
    expect(verpAddress(other, verp).split('.')[1]).not.toBe(verpAddress(digest, verp).split('.')[1]);
    expect(verpAddress(digest, { ...verp, secret: 'another-secret-of-sixteen+' })).not.toBe(verpAddress(digest, verp));
  });

  it('refuses a digest that is not 32 hex', () => {
    expect(() => verpAddress('xyz', verp)).toThrow(/not a message digest/);
    expect(() => verpAddress(createHash('sha256').update('k').digest('hex'), verp)).toThrow(/not a message digest/);
  });
});

describe('readVerp', () => {
  const address = verpAddress(digest, verp);

  it('reads back the digest of its own address, with brackets, upper case, or a trailing dot in the domain', () => {
    expect(readVerp(address, verp)).toEqual({ digest });
    expect(readVerp(`<${address}>`, verp)).toEqual({ digest });
    expect(readVerp(address.toUpperCase(), verp)).toEqual({ digest });
    expect(readVerp(`${address}.`, verp)).toEqual({ digest });
  });

  it('refuses a tampered digest or signature as bad-signature', () => {
    const [local, domain] = address.split('@') as [string, string];
    const [head, sig] = local.split('.') as [string, string];
    const digestAt = head.indexOf('+') + 1;
    for (let i = 0; i < 32; i += 7) expect(readVerp(`${flip(head, digestAt + i, '0123456789abcdef')}.${sig}@${domain}`, verp)).toEqual({ refusal: 'bad-signature' });
    for (let i = 0; i < 10; i += 3) expect(readVerp(`${head}.${flip(sig, i, 'abcdefghijklmnopqrstuvwxyz234567')}@${domain}`, verp)).toEqual({ refusal: 'bad-signature' });
    expect(readVerp(address, { ...verp, secret: 'not-the-signing-secret' })).toEqual({ refusal: 'bad-signature' });
  });

  it('calls another domain or another local part foreign, and a broken token malformed', () => {
    expect(readVerp(address.replace('bounce.example.com', 'example.org'), verp)).toEqual({ refusal: 'foreign' });
    expect(readVerp(address.replace('bounces+', 'returns+'), verp)).toEqual({ refusal: 'foreign' });
    expect(readVerp('postmaster@bounce.example.com', verp)).toEqual({ refusal: 'foreign' });
    expect(readVerp('no-at-sign', verp)).toEqual({ refusal: 'foreign' });
    expect(readVerp(address.replace(/\.[a-z2-7]{10}@/, '@'), verp)).toEqual({ refusal: 'malformed' });
    expect(readVerp(address.replace(/\.([a-z2-7]{10})@/, '.$1x@'), verp)).toEqual({ refusal: 'malformed' });
    expect(readVerp(`bounces+${digest.slice(1)}.abcdefghij@bounce.example.com`, verp)).toEqual({ refusal: 'malformed' });
  });
});

describe('verpReturnPath', () => {
  it('is off without a domain or secret, and signs with the config otherwise', () => {
    expect(verpReturnPath({ domain: null, localPart: 'bounces', secret: null })).toBeUndefined();
    expect(verpReturnPath({ domain: 'x.example', localPart: 'bounces', secret: null })).toBeUndefined();
    expect(verpReturnPath(verp)?.(digest)).toBe(verpAddress(digest, verp));
  });
});
