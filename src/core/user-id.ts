/**
 * User ids as strings. A user's `_id` may be an ObjectId, a string or a number, and everything
 * mailwheel keys by user (delivery keys, claims, the job registry, unsubscribe tokens, events)
 * needs it as a string. `String(id)` is not enough: `_id: 1` and `_id: "1"` (or an ObjectId and
 * its hex string) would be one user, and one of the two would never be mailed.
 *
 * The encoding is unambiguous and, for the common types, the same text as before (so delivery
 * keys already claimed in a running database keep matching after an upgrade):
 *
 * - ObjectId           -> its 24 lowercase hex digits (unchanged)
 * - string             -> itself (unchanged), unless it could be read as another type: 24
 *                         lowercase hex digits (an ObjectId) or a tag (`<letter>:` at the start),
 *                         which get `s:` in front
 * - number             -> `n:` + its decimal form (before: without the tag)
 *
 * A single lowercase letter followed by ':' is reserved for tags, so a later type can get one
 * without changing what any existing string encodes to.
 *
 * {@link compactUserId} bounds what goes into headers and tokens: an encoded id longer than
 * {@link COMPACT_ID_MAX_BYTES} is replaced by `h:` + a SHA-256 digest of it.
 */
import { createHash } from 'node:crypto';

/** Encoded ids longer than this (UTF-8 bytes) are not accepted at validation. */
export const MAX_USER_ID_BYTES = 4096;
/** Encoded ids up to this length (UTF-8 bytes) go into keys and tokens as they are. */
export const COMPACT_ID_MAX_BYTES = 128;

const OBJECT_ID_HEX = /^[0-9a-f]{24}$/;
const TAGGED = /^[a-z]:/;

/** The string form of an `_id`; undefined when it is of no supported type (or empty/not finite). */
export function encodeUserId(v: unknown): string | undefined {
  if (typeof v === 'string') {
    if (v.length === 0) return undefined;
    return OBJECT_ID_HEX.test(v) || TAGGED.test(v) ? `s:${v}` : v;
  }
  if (typeof v === 'number') return Number.isFinite(v) ? `n:${String(v)}` : undefined;
  if (typeof v === 'object' && v !== null && 'toHexString' in v && typeof v.toHexString === 'function') {
    return String(v.toHexString()).toLowerCase();
  }
  return undefined;
}

/** What an encoded id stands for; the Mongo adapter turns it into the `_id` value. */
export type DecodedUserId = { type: 'string'; value: string } | { type: 'number'; value: number } | { type: 'objectId'; hex: string };

/**
 * The typed `_id` an encoded id stands for (for a query or an update); undefined when the text
 * is not an encoding {@link encodeUserId} produces (e.g. a compacted `h:` id).
 */
export function decodeUserId(s: string): DecodedUserId | undefined {
  if (s.startsWith('s:')) return s.length > 2 ? { type: 'string', value: s.slice(2) } : undefined;
  if (s.startsWith('n:')) {
    const n = Number(s.slice(2));
    return Number.isFinite(n) && String(n) === s.slice(2) ? { type: 'number', value: n } : undefined;
  }
  if (OBJECT_ID_HEX.test(s)) return { type: 'objectId', hex: s };
  if (TAGGED.test(s) || s === '') return undefined;
  return { type: 'string', value: s };
}

/**
 * The id as it goes into delivery keys, headers and tokens: itself when short, else `h:` and the
 * base64url SHA-256 of the encoded id (43 characters). Stable: the same id always gives the same
 * text, so claims of a long id still decide once per delivery.
 */
export function compactUserId(encoded: string): string {
  if (Buffer.byteLength(encoded, 'utf8') <= COMPACT_ID_MAX_BYTES) return encoded;
  return digestUserId(encoded);
}

/** `h:` and the base64url SHA-256 of the encoded id. */
export function digestUserId(encoded: string): string {
  return `h:${createHash('sha256').update(encoded, 'utf8').digest('base64url')}`;
}
