/**
 * Turns a raw user document into a `UserRecord`, or a reason why it cannot be served.
 * One bad document must never stop the others, so this never throws: the caller logs the reason
 * once and records one `invalid` event. Field names come from config (applications differ).
 */
import type { RawUser } from '../ports/index.js';
import type { FieldMap } from './settings.js';
import { isValidZone, parseHHMM } from './fire-time.js';
import type { UserRecord } from './types.js';
import { compactUserId, encodeUserId, MAX_USER_ID_BYTES } from './user-id.js';

export type { FieldMap };

export type UserCheck =
  | { kind: 'valid'; user: UserRecord }
  /** Not to be served, and that is normal: inactive or unsubscribed. */
  | { kind: 'inactive'; id: string }
  | { kind: 'invalid'; id: string; reason: string };

/** Who a broadcast goes to: the part of a user that does not depend on a schedule. */
export interface Recipient {
  id: string;
  email: string;
  name: string | undefined;
}

export type RecipientCheck = { kind: 'valid'; recipient: Recipient } | Exclude<UserCheck, { kind: 'valid' }>;

/** Practical address syntax (not full RFC 5322): one @, no spaces, quotes or control characters. */
const EMAIL_RE = /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;
/** CR, LF and other control characters would let a value break out of a header. */
// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\u0000-\u001f\u007f]/;
const MAX_TIMES = 24;

/**
 * Reads a possibly dotted field path ("profile.email"). Own properties only: a field mapped to a
 * name such as `constructor` must read the document, never what `Object.prototype` holds.
 */
export function getField(doc: RawUser, path: string): unknown {
  if (!path.includes('.')) return Object.hasOwn(doc, path) ? doc[path] : undefined;
  let cur: unknown = doc;
  for (const part of path.split('.')) {
    if (typeof cur !== 'object' || cur === null || !Object.hasOwn(cur, part)) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/**
 * The string form of an id, unambiguous across types (`_id: 1` and `_id: "1"` differ); see
 * `user-id.ts`.
 */
export const idToString = encodeUserId;

/**
 * What keeps a string from being an address mailwheel sends to, or undefined: the one rule the
 * sending path and the suppression import (cli/suppression-csv.ts) share.
 */
export function addressProblemOf(email: string): string | undefined {
  if (CONTROL_RE.test(email)) return 'contains CR/LF or control characters';
  if (email.length > 254 || !EMAIL_RE.test(email)) return 'not a valid address';
  return undefined;
}

/**
 * The checks every email needs, scheduled or broadcast: an id, active and not unsubscribed, a
 * usable address, a name that cannot break a header. Broadcasts use only this (a user without
 * `emailTimes` still gets a broadcast); `checkUser` adds the schedule.
 */
export function checkRecipient(doc: RawUser, f: FieldMap): RecipientCheck {
  const id = idToString(getField(doc, f.id));
  if (id === undefined) return { kind: 'invalid', id: '(none)', reason: `${f.id}: missing or not a string, number or ObjectId` };
  const idBytes = Buffer.byteLength(id, 'utf8');
  // Reported by its digest: the id itself would put kilobytes into every log line and event.
  if (idBytes > MAX_USER_ID_BYTES) return { kind: 'invalid', id: compactUserId(id), reason: `${f.id}: ${idBytes} bytes long, more than ${MAX_USER_ID_BYTES} (starts ${JSON.stringify(id.slice(0, 40))})` };
  if (CONTROL_RE.test(id)) return { kind: 'invalid', id: JSON.stringify(id), reason: `${f.id}: contains control characters` };
  const bad = (reason: string): RecipientCheck => ({ kind: 'invalid', id, reason });

  if (getField(doc, f.active) !== true) return { kind: 'inactive', id };
  // Mailing someone who unsubscribed cannot be taken back: anything but false, null or absent
  // counts as unsubscribed. A value that is not a boolean ("true", 1, {}) is also reported once
  // (an `invalid` event naming the field), since the application wrote something unexpected.
  const unsubscribed = getField(doc, f.unsubscribed);
  if (unsubscribed === true) return { kind: 'inactive', id };
  if (unsubscribed !== false && unsubscribed !== null && unsubscribed !== undefined) {
    return bad(`${f.unsubscribed}: ${describe(unsubscribed)} is not true or false; treated as unsubscribed (no mail)`);
  }

  const email = getField(doc, f.email);
  if (typeof email !== 'string') return bad(`${f.email}: missing or not a string`);
  const emailProblem = addressProblemOf(email);
  if (emailProblem !== undefined) return bad(`${f.email}: ${emailProblem}`);

  const rawName = getField(doc, f.name);
  let name: string | undefined;
  if (rawName !== undefined && rawName !== null && rawName !== '') {
    if (typeof rawName !== 'string') return bad(`${f.name}: not a string`);
    if (CONTROL_RE.test(rawName)) return bad(`${f.name}: contains CR/LF or control characters`);
    if (rawName.length > 200) return bad(`${f.name}: longer than 200 characters`);
    name = rawName;
  }
  return { kind: 'valid', recipient: { id, email, name } };
}

/** A short, safe description of an unexpected value for a reason text. */
function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : typeof v;
}

export function checkUser(doc: RawUser, f: FieldMap): UserCheck {
  const checked = checkRecipient(doc, f);
  if (checked.kind !== 'valid') return checked;
  const { id, email, name } = checked.recipient;
  const bad = (reason: string): UserCheck => ({ kind: 'invalid', id, reason });

  const rawZone = getField(doc, f.timezone);
  let timezone = 'UTC';
  if (rawZone !== undefined && rawZone !== null) {
    if (typeof rawZone !== 'string' || !isValidZone(rawZone)) return bad(`${f.timezone}: unknown IANA timezone ${JSON.stringify(rawZone)}`);
    timezone = rawZone;
  }

  const rawTimes = getField(doc, f.emailTimes);
  if (!Array.isArray(rawTimes) || rawTimes.length === 0) return bad(`${f.emailTimes}: missing or empty`);
  if (rawTimes.length > MAX_TIMES) return bad(`${f.emailTimes}: more than ${MAX_TIMES} times`);
  const times = new Set<string>();
  for (const t of rawTimes) {
    if (typeof t !== 'string' || parseHHMM(t) === undefined) return bad(`${f.emailTimes}: ${JSON.stringify(t)} is not HH:MM`);
    times.add(t);
  }

  const rawDays = getField(doc, f.emailDays);
  let days: number[] | undefined;
  if (rawDays !== undefined && rawDays !== null) {
    if (!Array.isArray(rawDays) || rawDays.length === 0) return bad(`${f.emailDays}: must be a non-empty array of 0..6`);
    const set = new Set<number>();
    for (const d of rawDays) {
      if (typeof d !== 'number' || !Number.isInteger(d) || d < 0 || d > 6) return bad(`${f.emailDays}: ${JSON.stringify(d)} is not a weekday 0..6`);
      set.add(d);
    }
    days = [...set].sort((a, b) => a - b);
  }

  return { kind: 'valid', user: { id, email, name, timezone, times: [...times].sort(), days } };
}
