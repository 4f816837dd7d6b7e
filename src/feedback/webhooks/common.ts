/**
 * What every provider module shares: the verdict a provider gives on one request, and small
 * readers of untrusted JSON. A provider never throws for bad input: anything it cannot
 * authenticate or parse becomes a refusal with a reason the dispatcher counts and answers.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { FeedbackKind, FeedbackRefusal, FeedbackReport } from '../../ports/feedback.js';

/** One webhook request, its body already read (and capped) by the dispatcher. */
export interface WebhookRequest {
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** Wall-clock epoch ms when it arrived (the injected clock). */
  now: number;
}

/** A request the provider refuses: counted under `reason`, answered with `status`. */
export interface Refused {
  ok: false;
  reason: FeedbackRefusal;
  status: number;
}

/**
 * A request the provider authenticated. `replayId` names the notification for the replay guard
 * (null: nothing to remember, e.g. an SNS subscription confirmation). `skipped` counts the
 * entries that were well formed but not feedback, or malformed inside an authenticated batch.
 */
export interface Accepted {
  ok: true;
  replayId: string | null;
  reports: FeedbackReport[];
  skipped: Array<'not-feedback' | 'malformed'>;
  /** Runs after the replay check instead of the sink (SNS subscription confirmation). */
  action?: () => Promise<{ status: number; body: Record<string, unknown> }>;
}

export type Verdict = Refused | Accepted;

export const refuse = (reason: FeedbackRefusal, status: number): Refused => ({ ok: false, reason, status });

/** Status codes per refusal: a stale timestamp is an authentication failure (401), see index.ts. */
export const STATUS = { unauthenticated: 401, badSignature: 401, stale: 401, malformed: 400, forbidden: 403 } as const;

export type Json = Record<string, unknown>;

/** JSON.parse that answers undefined instead of throwing. */
export function parseJson(body: Buffer | string): unknown {
  try {
    return JSON.parse(typeof body === 'string' ? body : body.toString('utf8'));
  } catch {
    return undefined;
  }
}

export function isRecord(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A non-empty string field, else undefined. */
export function str(o: Json, key: string): string | undefined {
  const v = o[key];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** A plausible address (the sink normalises it; this only keeps garbage out of the reports). */
export function emailOf(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined;
  const s = v.trim();
  return s.length <= 320 && /^[^\s@<>]+@[^\s@<>]+$/.test(s) ? s : undefined;
}

/** A Message-ID with its angle brackets (providers give it with or without), or undefined. */
export function messageIdOf(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined;
  const s = v.trim();
  if (s === '' || s.length > 998 || /\s/.test(s)) return undefined;
  return s.startsWith('<') && s.endsWith('>') ? s : `<${s.replace(/^<|>$/g, '')}>`;
}

/** A date from an ISO string or epoch seconds; `fallback` when absent or invalid. */
export function dateOf(v: unknown, fallback: Date): Date {
  const d = typeof v === 'number' ? new Date(v * 1000) : typeof v === 'string' ? new Date(v) : undefined;
  return d !== undefined && Number.isFinite(d.getTime()) ? d : fallback;
}

/** Equal strings compared in constant time (lengths compared through fixed-size digests). */
export function safeEqual(a: string, b: string): boolean {
  const da = createHash('sha256').update(a).digest();
  const db = createHash('sha256').update(b).digest();
  return timingSafeEqual(da, db) && a.length === b.length;
}

/** True when `atMs` is within `maxAgeSeconds` of `now`, either side (clock skew both ways). */
export function fresh(atMs: number, now: number, maxAgeSeconds: number): boolean {
  return Number.isFinite(atMs) && Math.abs(now - atMs) <= maxAgeSeconds * 1000;
}

/** One header's value (the first when repeated), or undefined. */
export function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  const s = Array.isArray(v) ? v[0] : v;
  return s === undefined || s === '' ? undefined : s;
}

export function report(source: FeedbackReport['source'], kind: FeedbackKind, fields: Omit<FeedbackReport, 'source' | 'kind'>): FeedbackReport {
  return { source, kind, ...fields };
}

/** Shortens a detail for the operator (a diagnostic can be a whole bounce message). */
export function detailOf(...parts: Array<unknown>): string | undefined {
  const text = parts
    .filter((p) => (typeof p === 'string' && p.trim() !== '') || typeof p === 'number')
    .map(String)
    .join(' ')
    .replace(/\s+/g, ' ')
    .trim();
  return text === '' ? undefined : text.slice(0, 300);
}
