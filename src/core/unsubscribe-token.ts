/**
 * Signed one-click unsubscribe tokens (RFC 8058) and the `List-Unsubscribe` headers that carry
 * them. Pure: no I/O, the time is passed in.
 *
 * A token is `base64url(JSON payload) + '.' + base64url(HMAC-SHA256(secret, payload part))`. The
 * signature is checked before the payload is parsed, so nothing an attacker wrote is interpreted
 * until it is proven to be ours, and it is compared as the exact encoded text: base64url has
 * several spellings of the same bytes (the unused low bits of the last character), and "tolerate
 * nothing else" means a re-spelled signature is refused like any other tampering.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { Errors } from '../errors.js';
import { DAY_MS, SECOND_MS } from './time.js';
import type { UnsubscribeSettings } from './settings.js';
import { compactUserId } from './user-id.js';

export interface TokenClaims {
  userId: string;
  email: string;
}

export interface TokenInput extends TokenClaims {
  /** Expiry, in SECONDS since the epoch. */
  expiresAt: number;
}

export type TokenRefusal = 'malformed' | 'bad-signature' | 'expired' | 'no-secret';

export type TokenCheck = ({ ok: true } & TokenClaims) | { ok: false; reason: TokenRefusal };

/** What is serialised: short keys keep the token (and the header line) short. */
interface Payload {
  u: string;
  e: string;
  /** Expiry, seconds since the epoch. */
  x: number;
}

const BASE64URL = /^[A-Za-z0-9_-]+$/;
const DAY_S = DAY_MS / SECOND_MS;

/**
 * Signs a token for `claims`; `secret` must be non-empty. A long user id is signed as its digest
 * (`compactUserId`), so every token fits a header line and the handler's length limit.
 */
export function signToken(input: TokenInput, secret: string): string {
  if (secret === '') throw new Errors.INTERNAL('signToken: empty secret');
  const payload: Payload = { u: compactUserId(input.userId), e: input.email, x: Math.floor(input.expiresAt) };
  const payloadPart = Buffer.from(JSON.stringify(payload), 'utf8').toString('base64url');
  return `${payloadPart}.${mac(payloadPart, secret)}`;
}

/**
 * Checks a token. `secret` null or empty refuses everything ('no-secret'): an unconfigured daemon
 * must never accept a token, whatever it looks like.
 */
export function verifyToken(token: string, secret: string | null, nowMs: number): TokenCheck {
  if (secret === null || secret === '') return { ok: false, reason: 'no-secret' };
  const parts = token.split('.');
  if (parts.length !== 2) return { ok: false, reason: 'malformed' };
  const [payloadPart = '', sigPart = ''] = parts;
  if (!BASE64URL.test(payloadPart) || !BASE64URL.test(sigPart)) return { ok: false, reason: 'malformed' };

  const expected = Buffer.from(mac(payloadPart, secret), 'ascii');
  const given = Buffer.from(sigPart, 'ascii');
  // timingSafeEqual throws on a length mismatch; the length of a MAC is public anyway.
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'bad-signature' };

  const payload = parsePayload(payloadPart);
  // Only reachable with our own secret, i.e. a token we signed in some other shape.
  if (payload === undefined) return { ok: false, reason: 'malformed' };
  if (nowMs >= payload.x * SECOND_MS) return { ok: false, reason: 'expired' };
  return { ok: true, userId: payload.u, email: payload.e };
}

export interface UnsubscribeMode {
  /** `one-click`: mailto and an https link with `List-Unsubscribe-Post`; `mailto`: mailto only. */
  mode: 'one-click' | 'mailto';
  /** Why, in words for an operator (`config check`, the start-up warning). */
  reason: string;
  /** True when the operator set a secret but one-click is off anyway: worth a warning. */
  warn: boolean;
}

/**
 * Which List-Unsubscribe headers messages carry. One-click needs a secret and a base URL (the
 * config refuses an http base URL unless `allowInsecureBaseUrl` on a loopback host, for tests).
 * A secret without a base URL means mailto only: there is no safe default for a public URL.
 */
export function unsubscribeMode(cfg: UnsubscribeSettings): UnsubscribeMode {
  if (cfg.secret === null || cfg.secret === '') {
    return { mode: 'mailto', reason: 'unsubscribe.secret is not set (MAILWHEEL_UNSUBSCRIBE_SECRET): messages carry a mailto: link only', warn: false };
  }
  if (cfg.baseUrl === null) {
    return {
      mode: 'mailto',
      reason: 'unsubscribe.secret is set but unsubscribe.baseUrl is not: messages carry a mailto: link only; set unsubscribe.baseUrl to the https:// URL recipients reach this daemon at for one-click links',
      warn: true,
    };
  }
  const insecure = cfg.baseUrl.startsWith('http:');
  return {
    mode: 'one-click',
    reason: insecure ? `one-click links to ${cfg.baseUrl} over plain http (unsubscribe.allowInsecureBaseUrl: development only)` : `one-click links to ${cfg.baseUrl}`,
    warn: insecure,
  };
}

/**
 * The RFC 2369 / RFC 8058 headers for one message. With a secret: a mailto link and an http(s)
 * one-click URL, both carrying a token valid for `tokenTtlDays`, plus `List-Unsubscribe-Post`.
 * Without one: only a plain mailto link (the mailbox owner identifies the sender by its address),
 * and no `List-Unsubscribe-Post`, since RFC 8058 requires it only next to an https URI that works.
 */
export function unsubscribeHeaders(claims: TokenClaims, cfg: UnsubscribeSettings, nowMs: number): Record<string, string> {
  const mailto = `mailto:${encodeAddress(cfg.mailto)}?subject=unsubscribe`;
  const mode = unsubscribeMode(cfg);
  if (mode.mode === 'mailto' || cfg.secret === null || cfg.baseUrl === null) return { 'List-Unsubscribe': `<${mailto}>` };
  const expiresAt = Math.floor(nowMs / SECOND_MS) + cfg.tokenTtlDays * DAY_S;
  // base64url and '.' need no percent-encoding in a query or a mailto subject.
  const token = signToken({ ...claims, expiresAt }, cfg.secret);
  const url = `${angleSafe(cfg.baseUrl.replace(/\/+$/, ''))}/unsubscribe?t=${token}`;
  return {
    'List-Unsubscribe': `<${mailto}%20${token}>, <${url}>`,
    'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
  };
}

function mac(payloadPart: string, secret: string): string {
  return createHmac('sha256', secret).update(payloadPart, 'ascii').digest('base64url');
}

function parsePayload(part: string): Payload | undefined {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { u, e, x } = value as Record<string, unknown>;
  if (typeof u !== 'string' || typeof e !== 'string' || typeof x !== 'number' || !Number.isFinite(x)) return undefined;
  return { u, e, x };
}

/** RFC 6068: the local part and domain are percent-encoded; '@' separates them. */
function encodeAddress(addr: string): string {
  const at = addr.lastIndexOf('@');
  return `${encodeURIComponent(addr.slice(0, at))}@${encodeURIComponent(addr.slice(at + 1))}`;
}

/** The config only forbids whitespace in baseUrl; '<' or '>' would break the header's URI list. */
function angleSafe(url: string): string {
  return url.replace(/[<>"]/g, (c) => encodeURIComponent(c));
}
