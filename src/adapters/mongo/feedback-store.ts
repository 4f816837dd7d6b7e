/**
 * The FeedbackSink's state (ports/feedback-store.ts) in two collections:
 * - `<prefix>feedback`: one document per applied report, `_id` = `<delivery key>#<kind>` or
 *   `<source>:<event id>`, written by unordered insert: a repeated report is a duplicate `_id`,
 *   which is how the sink knows it changes nothing, across instances too;
 * - `<prefix>feedback_counts`: `b:<broadcast id>` and `d:<YYYY-MM-DD>` (UTC) with `hardBounces`,
 *   `softBounces` and `complaints`, and `a:<email>` with the times of the address's recent soft
 *   bounces.
 *
 * FerretDB v1 applies an update as read-modify-write without a lock (20 concurrent `$inc` of one
 * document from one client left 9, see suppression-store.ts), so the writes to each counts
 * document are chained within this process. Two instances updating one document at the same
 * instant can still lose a count there; reports are spread over minutes, so that is rare, and it
 * only ever under-counts (never suppresses or pauses wrongly).
 */
import type { Collection, Db } from 'mongodb';
import { z } from 'zod';
import type { FeedbackKind } from '../../ports/feedback.js';
import type { FeedbackRecord, FeedbackStore, FeedbackTally } from '../../ports/feedback-store.js';
import { systemClock, type Clock } from '../../ports/clock.js';
import { decodeDoc } from './decode.js';
import { insertUnique } from './insert-unique.js';

export type FeedbackDoc = Omit<FeedbackRecord, 'id'> & { _id: string };

export interface FeedbackCountDoc {
  _id: string;
  hardBounces?: number;
  softBounces?: number;
  complaints?: number;
  /** `a:<email>` only: its latest soft bounces, oldest first. */
  softAt?: Date[];
  updatedAt: Date;
}

const tallyDoc = z.object({
  _id: z.string(),
  hardBounces: z.number().int().nonnegative().optional(),
  softBounces: z.number().int().nonnegative().optional(),
  complaints: z.number().int().nonnegative().optional(),
});
const softDoc = z.object({ _id: z.string(), softAt: z.array(z.date()).optional() });

const FIELD: Record<FeedbackKind, 'hardBounces' | 'softBounces' | 'complaints'> = { 'hard-bounce': 'hardBounces', 'soft-bounce': 'softBounces', complaint: 'complaints' };
const DUPLICATE_KEY = 11000;
const DELETE_CHUNK = 1000;

export function feedbackCollections(db: Db, prefix: string): { records: Collection<FeedbackDoc>; counts: Collection<FeedbackCountDoc> } {
  return { records: db.collection<FeedbackDoc>(`${prefix}feedback`), counts: db.collection<FeedbackCountDoc>(`${prefix}feedback_counts`) };
}

function isDuplicate(err: unknown): boolean {
  return (err as { code?: unknown }).code === DUPLICATE_KEY;
}

/** An upsert of a new `_id` that loses the insert race to another one fails with E11000: the retry updates. */
async function upsertRetrying<T>(write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (err) {
    if (!isDuplicate(err)) throw err;
    return write();
  }
}

export class MongoFeedbackStore implements FeedbackStore {
  readonly #records: Collection<FeedbackDoc>;
  readonly #counts: Collection<FeedbackCountDoc>;
  /** The last write queued per counts document (see the module comment). */
  readonly #chains = new Map<string, Promise<unknown>>();
  readonly #clock: Clock;

  constructor(cols: { records: Collection<FeedbackDoc>; counts: Collection<FeedbackCountDoc> }, clock: Clock = systemClock) {
    this.#records = cols.records;
    this.#counts = cols.counts;
    this.#clock = clock;
  }

  async insert(records: readonly FeedbackRecord[]): Promise<Set<string>> {
    const docs = records.map(({ id, ...rest }) => ({ _id: id, ...dropUndefined(rest) }) as FeedbackDoc);
    const dups = await insertUnique(this.#records, docs);
    return new Set([...dups].map((i) => records[i]?.id ?? ''));
  }

  async remove(ids: readonly string[]): Promise<void> {
    for (let i = 0; i < ids.length; i += DELETE_CHUNK) await this.#records.deleteMany({ _id: { $in: ids.slice(i, i + DELETE_CHUNK) } });
  }

  softBounce(email: string, at: Date, windowMs: number, keep: number): Promise<number> {
    const id = `a:${email}`;
    return this.#chain(id, async () => {
      const raw = await this.#counts.findOne({ _id: id });
      const prev = raw === null ? [] : (decodeDoc(softDoc, this.#counts.collectionName, raw).softAt ?? []);
      const since = at.getTime() - windowMs;
      // Only bounces that can still fall in a window count: older ones are dropped, and at most
      // `keep` (the limit) are kept, since more cannot change the answer.
      const times = [...prev.filter((t) => t.getTime() >= since), at].sort((a, b) => a.getTime() - b.getTime()).slice(-keep);
      await upsertRetrying(() => this.#counts.updateOne({ _id: id }, { $set: { softAt: times, updatedAt: new Date(this.#clock.now()) } }, { upsert: true }));
      return times.filter((t) => t.getTime() >= since && t.getTime() <= at.getTime()).length;
    });
  }

  async count(kind: FeedbackKind, day: string, broadcastId?: string): Promise<FeedbackTally | undefined> {
    await this.#inc(`d:${day}`, kind);
    return broadcastId === undefined ? undefined : this.#inc(`b:${broadcastId}`, kind);
  }

  forBroadcast(broadcastId: string): Promise<FeedbackTally> {
    return this.#tally(`b:${broadcastId}`);
  }

  forDay(day: string): Promise<FeedbackTally> {
    return this.#tally(`d:${day}`);
  }

  async #tally(id: string): Promise<FeedbackTally> {
    const raw = await this.#counts.findOne({ _id: id });
    return raw === null ? { hardBounces: 0, softBounces: 0, complaints: 0 } : tallyOf(decodeDoc(tallyDoc, this.#counts.collectionName, raw));
  }

  /** Adds one to the document's count of `kind`; returns its tally after the write. */
  #inc(id: string, kind: FeedbackKind): Promise<FeedbackTally> {
    return this.#chain(id, async () => {
      const doc = await upsertRetrying(() =>
        this.#counts.findOneAndUpdate({ _id: id }, { $inc: { [FIELD[kind]]: 1 }, $set: { updatedAt: new Date(this.#clock.now()) } }, { upsert: true, returnDocument: 'after' }),
      );
      if (doc === null) return this.#tally(id);
      return tallyOf(decodeDoc(tallyDoc, this.#counts.collectionName, doc));
    });
  }

  /** Runs `fn` after every earlier write to the same document from this process. */
  #chain<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#chains.get(id) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const settled = next.catch(() => undefined);
    this.#chains.set(id, settled);
    void settled.then(() => {
      if (this.#chains.get(id) === settled) this.#chains.delete(id);
    });
    return next;
  }
}

function tallyOf(d: { hardBounces?: number | undefined; softBounces?: number | undefined; complaints?: number | undefined }): FeedbackTally {
  return { hardBounces: d.hardBounces ?? 0, softBounces: d.softBounces ?? 0, complaints: d.complaints ?? 0 };
}

function dropUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
