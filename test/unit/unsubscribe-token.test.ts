/**
 * Signed unsubscribe tokens: a round trip verifies; every kind of tampering, another secret, an
 * expired or unsigned token is refused with its reason; the List-Unsubscribe headers parse back
 * into links whose tokens verify.
 */
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/schema.js';
import { signToken, unsubscribeHeaders, verifyToken } from '../../src/core/unsubscribe-token.js';

const SECRET = 'test-secret-0123456789abcdef';
const NOW = Date.UTC(2027, 0, 15, 9, 0, 0);
const inOneDay = Math.floor(NOW / 1000) + 86_400;
const claims = { userId: 'u-42', email: 'Ada.Lovelace@example.com' };
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const token = signToken({ ...claims, expiresAt: inOneDay }, SECRET);

/** Replaces the character at `i` with a different base64url character. */
function flip(s: string, i: number): string {
  const c = s[i] === 'A' ? 'B' : 'A';
  return s.slice(0, i) + c + s.slice(i + 1);
}

const cfg = (secret: string | null): Config['unsubscribe'] => ({
  secret,
  baseUrl: 'https://mail.example.com/',
  allowInsecureBaseUrl: false,
  mailto: 'unsubscribe@example.com',
  tokenTtlDays: 60,
});

describe('verifyToken', () => {
  it('accepts its own token and returns the claims', () => {
    expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(verifyToken(token, SECRET, NOW)).toEqual({ ok: true, ...claims });
  });

  it('keeps user ids and addresses with unusual characters intact', () => {
    const odd = { userId: 'ü:1/"x"', email: 'o\'neil+tag@exämple.com' };
    expect(verifyToken(signToken({ ...odd, expiresAt: inOneDay }, SECRET), SECRET, NOW)).toEqual({ ok: true, ...odd });
  });

  it('refuses a tampered payload (a re-signed-looking token with another user)', () => {
    const [, sig] = token.split('.');
    const forged = Buffer.from(JSON.stringify({ u: 'someone-else', e: 'victim@example.com', x: inOneDay })).toString('base64url');
    expect(verifyToken(`${forged}.${sig}`, SECRET, NOW)).toEqual({ ok: false, reason: 'bad-signature' });
    expect(verifyToken(flip(token, 3), SECRET, NOW)).toEqual({ ok: false, reason: 'bad-signature' });
  });

  it('refuses a tampered signature, including one that decodes to the same bytes', () => {
    const dot = token.indexOf('.');
    expect(verifyToken(flip(token, dot + 5), SECRET, NOW)).toEqual({ ok: false, reason: 'bad-signature' });
    // The last of 43 characters carries 4 bits + 2 unused ones: setting an unused bit gives
    // another spelling of the same bytes, which a bytes-only comparison would accept.
    const sig = token.slice(dot + 1);
    const last = ALPHABET.indexOf(sig.at(-1) ?? '');
    const respelled = sig.slice(0, -1) + (ALPHABET[last ^ 1] ?? '');
    expect(Buffer.from(respelled, 'base64url').equals(Buffer.from(sig, 'base64url'))).toBe(true);
    expect(verifyToken(`${token.slice(0, dot)}.${respelled}`, SECRET, NOW)).toEqual({ ok: false, reason: 'bad-signature' });
    expect(verifyToken(token.slice(0, -1), SECRET, NOW)).toEqual({ ok: false, reason: 'bad-signature' });
    expect(verifyToken(`${token}AA`, SECRET, NOW)).toEqual({ ok: false, reason: 'bad-signature' });
  });

  it('refuses a token signed with another secret', () => {
    const other = signToken({ ...claims, expiresAt: inOneDay }, 'another-secret-0123456789');
    expect(verifyToken(other, SECRET, NOW)).toEqual({ ok: false, reason: 'bad-signature' });
  });

  it('refuses an expired token, from the second of expiry on', () => {
    const exp = signToken({ ...claims, expiresAt: inOneDay }, SECRET);
    expect(verifyToken(exp, SECRET, inOneDay * 1000 - 1).ok).toBe(true);
    expect(verifyToken(exp, SECRET, inOneDay * 1000)).toEqual({ ok: false, reason: 'expired' });
  });

  it('refuses an unsigned token and other malformed input', () => {
    const [payload = ''] = token.split('.');
    expect(verifyToken(payload, SECRET, NOW)).toEqual({ ok: false, reason: 'malformed' });
    expect(verifyToken(`${payload}.`, SECRET, NOW)).toEqual({ ok: false, reason: 'malformed' });
    for (const bad of ['', '.', 'a.b.c', `${token}.x`, `${payload}.!!!`, `${payload}=.${token.split('.')[1]}`]) {
      expect(verifyToken(bad, SECRET, NOW), bad).toEqual({ ok: false, reason: 'malformed' });
    }
  });

  it('refuses everything when no secret is configured', () => {
    expect(verifyToken(token, null, NOW)).toEqual({ ok: false, reason: 'no-secret' });
    expect(verifyToken(token, '', NOW)).toEqual({ ok: false, reason: 'no-secret' });
  });

  it('refuses a correctly signed payload of the wrong shape as malformed', () => {
    const payload = Buffer.from(JSON.stringify({ u: 1, e: 'x@example.com', x: inOneDay })).toString('base64url');
    const sig = createHmac('sha256', SECRET).update(payload).digest('base64url');
    expect(verifyToken(`${payload}.${sig}`, SECRET, NOW)).toEqual({ ok: false, reason: 'malformed' });
  });
});

describe('unsubscribeHeaders', () => {
  /** Splits `<a>, <b>` into its URIs. */
  const uris = (header: string | undefined): string[] => [...(header ?? '').matchAll(/<([^<>]*)>/g)].map((m) => m[1] ?? '');

  it('carries a mailto and a one-click URL with a verifying token, and List-Unsubscribe-Post', () => {
    const h = unsubscribeHeaders(claims, cfg(SECRET), NOW);
    expect(Object.keys(h).sort()).toEqual(['List-Unsubscribe', 'List-Unsubscribe-Post']);
    expect(h['List-Unsubscribe-Post']).toBe('List-Unsubscribe=One-Click');
    expect(h['List-Unsubscribe']).toMatch(/^<mailto:[^<>]+>, <https:[^<>]+>$/);
    expect(h['List-Unsubscribe']).not.toMatch(/[\r\n]/);

    const [mailto = '', https = ''] = uris(h['List-Unsubscribe']);
    const m = new URL(mailto);
    expect(m.protocol).toBe('mailto:');
    expect(m.pathname).toBe('unsubscribe@example.com');
    const subject = new URLSearchParams(m.search).get('subject') ?? '';
    const [word, mailToken = ''] = subject.split(' ');
    expect(word).toBe('unsubscribe');
    expect(verifyToken(mailToken, SECRET, NOW)).toEqual({ ok: true, ...claims });

    const u = new URL(https);
    expect(u.origin + u.pathname).toBe('https://mail.example.com/unsubscribe');
    const urlToken = u.searchParams.get('t') ?? '';
    expect(verifyToken(urlToken, SECRET, NOW)).toEqual({ ok: true, ...claims });
  });

  it('makes tokens valid for tokenTtlDays', () => {
    const h = unsubscribeHeaders(claims, cfg(SECRET), NOW);
    const t = new URL(uris(h['List-Unsubscribe'])[1] ?? '').searchParams.get('t') ?? '';
    const day = 86_400_000;
    expect(verifyToken(t, SECRET, NOW + 60 * day - 1000).ok).toBe(true);
    expect(verifyToken(t, SECRET, NOW + 60 * day)).toEqual({ ok: false, reason: 'expired' });
  });

  it('without a secret: a plain mailto only, and no List-Unsubscribe-Post', () => {
    const h = unsubscribeHeaders(claims, cfg(null), NOW);
    expect(h).toEqual({ 'List-Unsubscribe': '<mailto:unsubscribe@example.com?subject=unsubscribe>' });
  });
});
