/**
 * Helpers for broadcast tests: user documents (with schedule slots far from now, so scheduled
 * mail never mixes into a broadcast test), reading a broadcast document, waiting for a status,
 * and counting what the SMTP server received per recipient for one broadcast.
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Db, Document } from 'mongodb';
import type { BroadcastDoc, ControlDoc } from '../../src/adapters/mongo/broadcast-store.js';
import type { BroadcastStatus } from '../../src/ports/broadcasts.js';
import type { TestSmtpServer } from './smtp-server.js';

/** A local time 12 hours from now (UTC): no scheduled slot falls due while a test runs. */
export function farSlot(now = Date.now()): string {
  const d = new Date(now + 12 * 3_600_000);
  return `${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')}`;
}

/** `n` active users `<prefix>000000...`, with `over(i)` applied. */
export function broadcastUsers(n: number, prefix: string, over: (i: number) => Document = () => ({})): Document[] {
  const slot = farSlot();
  return Array.from({ length: n }, (_, i) => ({
    _id: `${prefix}${String(i).padStart(6, '0')}`,
    email: `${prefix}${i}@example.test`,
    name: `User ${i}`,
    active: true,
    timezone: 'UTC',
    emailTimes: [slot],
    ...over(i),
  }));
}

/** insertMany in batches of 5,000 (fast on FerretDB; one huge insert is not). */
export async function insertUsers(db: Db, docs: Document[]): Promise<void> {
  for (let i = 0; i < docs.length; i += 5000) await db.collection('users').insertMany(docs.slice(i, i + 5000), { ordered: false });
}

export async function getBroadcast(db: Db, id: string): Promise<BroadcastDoc> {
  const doc = await db.collection<BroadcastDoc>('mailwheel_broadcasts').findOne({ _id: id });
  if (doc === null) throw new Error(`no broadcast ${id}`);
  return doc;
}

export async function controlOf(db: Db, id: string): Promise<ControlDoc | null> {
  return db.collection<ControlDoc>('mailwheel_broadcast_runs').findOne({ _id: `control:${id}` });
}

/** Polls the broadcast document until its status is one of `statuses`. */
export async function waitForStatus(db: Db, id: string, statuses: readonly BroadcastStatus[], timeoutMs = 120_000): Promise<BroadcastDoc> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const doc = await getBroadcast(db, id);
    if (statuses.includes(doc.status)) return doc;
    if (Date.now() > deadline) throw new Error(`broadcast ${id} still ${doc.status} after ${timeoutMs} ms (counters ${JSON.stringify(doc.counters)})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Messages of broadcast `id` received so far, per user id (from the X-Mailwheel-Key header). */
export function perUser(smtp: TestSmtpServer, id: string): Map<string, number> {
  const prefix = `b:${id}:`;
  const counts = new Map<string, number>();
  for (const m of smtp.messages) {
    const key = m.headers.get('x-mailwheel-key') ?? '';
    if (!key.startsWith(prefix)) continue;
    const user = key.slice(prefix.length);
    counts.set(user, (counts.get(user) ?? 0) + 1);
  }
  return counts;
}

/** Writes the body files of a broadcast next to a config file; returns their paths. */
export function writeBodies(configFile: string, text = 'Hello {{name}},\n\nnews for {{email}}.\n', html = '<p>Hello {{name}}</p>'): { textFile: string; htmlFile: string } {
  const dir = dirname(configFile);
  const textFile = join(dir, 'body.txt');
  const htmlFile = join(dir, 'body.html');
  writeFileSync(textFile, text);
  writeFileSync(htmlFile, html);
  return { textFile, htmlFile };
}

/**
 * Waits until `done()` holds, failing only when `progress()` has not moved for `stallMs`: a slow
 * machine gets all the time the work needs, a stuck one fails within `stallMs` of getting stuck
 * (rather than one fixed wall-clock limit for the whole work, which a loaded machine exceeds).
 */
export async function waitWhileProgressing(what: string, done: () => boolean | Promise<boolean>, progress: () => number | Promise<number>, stallMs: number, intervalMs = 50): Promise<void> {
  let last = await progress();
  let movedAt = Date.now();
  for (;;) {
    if (await done()) return;
    const now = await progress();
    if (now !== last) {
      last = now;
      movedAt = Date.now();
    } else if (Date.now() - movedAt > stallMs) {
      throw new Error(`${what}: no progress for ${stallMs / 1000} s (stuck at ${now})`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** A vitest timeout that only catches a hung test: the waits inside fail on a stall first. */
export const HANG_GUARD_MS = 30 * 60_000;
