/**
 * The suppression collection (`<prefix>suppressions`): one document per address, `_id` = the
 * lower-cased email, the only filter FerretDB v1 pushes down. Every write is a single-document
 * upsert by `_id`; nothing here is a bulk of updates (FerretDB v1.24 never answers a bulk of 100
 * or more updates).
 *
 * FerretDB v1 applies an update as read-modify-write without a lock: measured here, 20 concurrent
 * `$inc` of one document from one client left the count at 9, and concurrent upserts of a new
 * `_id` fail with E11000. So writes to one address are chained within this process (bounces of
 * one address are rare, so the chain costs nothing in practice), and an upsert that loses the
 * insert race is retried as an update.
 */
import type { Collection, ObjectId } from 'mongodb';
import pLimit from 'p-limit';
import { normaliseEmail } from '../../core/suppression-list.js';
import { mongoUserId } from './user-source.js';
import type {
  SuppressedAddress,
  SuppressionAdmin,
  SuppressionEntry,
  SuppressionImport,
  SuppressionImportResult,
  SuppressionQuery,
  SuppressionReason,
  SuppressionRecord,
  SuppressionScope,
  SuppressionStore,
} from '../../ports/index.js';
import { SUPPRESSION_REASONS } from '../../ports/index.js';
import { z } from 'zod';
import { systemClock, type Clock } from '../../ports/clock.js';
import { cursorBatches } from './cursor-batches.js';
import { decodeDoc } from './decode.js';
import { insertUnique } from './insert-unique.js';

/**
 * What this store reads back, decoded (decode.ts): a malformed document is an error naming the
 * collection, the address and the field. Not skipped: a suppression list that silently lost an
 * address would mail someone who asked not to be mailed.
 */
const suppressedId = z.object({ _id: z.string(), scope: z.enum(['all', 'marketing']).optional() });
const bounceCount = z.object({ _id: z.string(), hardBounces: z.number().int() });
const recordDoc = z.object({
  _id: z.string(),
  reason: z.enum(SUPPRESSION_REASONS),
  source: z.string().optional(),
  scope: z.enum(['all', 'marketing']).optional(),
  detail: z.string().optional(),
  updatedAt: z.date(),
});
const stateDoc = z.object({ _id: z.string(), suppressed: z.boolean(), scope: z.enum(['all', 'marketing']).optional() });
const RECORD_PROJECTION = { _id: 1, reason: 1, source: 1, scope: 1, detail: 1, updatedAt: 1 };

export interface SuppressionDoc {
  /** The lower-cased email address. */
  _id: string;
  /** True once the address must not be mailed; a document may exist only to count bounces. */
  suppressed: boolean;
  /** Why it was suppressed (the latest reason when suppressed more than once). */
  reason?: SuppressionReason;
  /** Who reported it (SuppressionEntry.source). */
  source?: string;
  /** What it stops; absent (documents from before scopes) is `all`. */
  scope?: SuppressionScope;
  /** The user's `_id`, with its type (`1` and `"1"` are different users). */
  userId?: string | number | ObjectId;
  /** For a user whose id reached us only as a digest (`h:...`, a long id; see user-id.ts). */
  userIdDigest?: string;
  /** The last SMTP answer of a hard bounce, or a note for a manual suppression. */
  detail?: string;
  hardBounces: number;
  updatedAt: Date;
}

export interface MongoSuppressionStoreOptions {
  /** Documents per cursor batch when streaming the list at start-up. Default 1000. */
  batchSize?: number;
  clock?: Clock;
}

const DUPLICATE_KEY = 11000;
/**
 * Documents per `insertMany` of an import: one round trip each (FerretDB v1 answers inserts of
 * any size; only bulks of updates hang).
 */
const IMPORT_CHUNK = 1000;
/** An import scans the collection first when it is at most this many times the entries. */
const SCAN_FACTOR = 10;
/** What an address has now: suppressed for all mail, for marketing only, or not at all. */
type SuppressionState = SuppressionScope | 'none';
/** Addresses of an import found already in the collection, checked (and updated) at once. */
const EXISTING_CONCURRENCY = 8;

export class MongoSuppressionStore implements SuppressionStore, SuppressionAdmin {
  readonly #col: Collection<SuppressionDoc>;
  readonly #batchSize: number;
  readonly #clock: Clock;
  /** Per address: the tail of the chain of writes in progress, removed when it drains. */
  readonly #writing = new Map<string, Promise<unknown>>();

  constructor(col: Collection<SuppressionDoc>, options: MongoSuppressionStoreOptions = {}) {
    this.#col = col;
    this.#batchSize = options.batchSize ?? 1000;
    this.#clock = options.clock ?? systemClock;
  }

  async suppress(entry: SuppressionEntry): Promise<void> {
    const set: Partial<SuppressionDoc> = { suppressed: true, reason: entry.reason, updatedAt: new Date(this.#clock.now()) };
    if (entry.source !== undefined) set.source = entry.source;
    // Only what is known is written: a later suppression without a user id keeps the earlier one.
    if (entry.userId !== undefined) {
      const typed = mongoUserId(entry.userId);
      if (typed !== undefined) set.userId = typed;
      else set.userIdDigest = entry.userId;
    }
    if (entry.detail !== undefined) set.detail = entry.detail;
    const _id = normaliseEmail(entry.email);
    await this.#serial(_id, async () => {
      // A marketing-only suppression never narrows one that stops all mail: read first (a race
      // between instances can at worst leave the narrower scope until the next suppression).
      if ((entry.scope ?? 'all') === 'marketing') {
        const cur = await this.#col.findOne({ _id }, { projection: { suppressed: 1, scope: 1 } });
        set.scope = cur?.suppressed === true && (cur.scope ?? 'all') === 'all' ? 'all' : 'marketing';
      } else set.scope = 'all';
      await upsertOnce(() => this.#col.updateOne({ _id }, { $set: set, $setOnInsert: { hardBounces: 0 } }, { upsert: true }));
    });
  }

  /**
   * On MongoDB `findOneAndUpdate` with `$inc` is atomic. On FerretDB v1 it is atomic only thanks
   * to the chain within this process; two instances counting a bounce of the same address at the
   * same instant may count it once. At worst the suppression comes one bounce later, which is why
   * no unique-key race is spent on it.
   */
  async recordHardBounce(email: string, detail: string): Promise<number> {
    const _id = normaliseEmail(email);
    const doc = await this.#serial(_id, () =>
      upsertOnce(() =>
        this.#col.findOneAndUpdate(
          { _id },
          { $inc: { hardBounces: 1 }, $set: { detail, updatedAt: new Date(this.#clock.now()) }, $setOnInsert: { suppressed: false } },
          { upsert: true, returnDocument: 'after' },
        ),
      ),
    );
    return doc === null ? 1 : decodeDoc(bounceCount, this.#col.collectionName, doc).hardBounces;
  }

  /** One streamed cursor (a full scan on FerretDB v1): meant for start-up and periodic reloads. */
  allSuppressed(): AsyncIterable<SuppressedAddress[]> {
    return cursorBatches(this.#col.find({ suppressed: true }, { projection: { _id: 1, scope: 1 }, batchSize: this.#batchSize }), this.#batchSize, (doc) => {
      const d = decodeDoc(suppressedId, this.#col.collectionName, doc);
      return { email: d._id, scope: d.scope ?? 'all' };
    });
  }

  async find(email: string): Promise<SuppressionRecord | undefined> {
    // By `_id` alone (the filter FerretDB v1 pushes down); `suppressed` is checked here.
    const doc = await this.#col.findOne({ _id: normaliseEmail(email) }, { projection: { ...RECORD_PROJECTION, suppressed: 1 } });
    return doc?.suppressed === true ? this.#record(doc) : undefined;
  }

  /** One streamed cursor; on FerretDB v1 a scan of the collection (nothing but `_id` is pushed down). */
  list(query: SuppressionQuery = {}): AsyncIterable<SuppressionRecord[]> {
    const filter = query.reason === undefined ? { suppressed: true } : { suppressed: true, reason: query.reason };
    const cursor = this.#col.find(filter, { projection: RECORD_PROJECTION, batchSize: this.#batchSize });
    if (query.limit !== undefined) cursor.limit(query.limit);
    return cursorBatches(cursor, this.#batchSize, (doc) => this.#record(doc));
  }

  /**
   * Lifts a suppression by setting `suppressed: false` rather than deleting the document: the
   * hard-bounce count (and the last SMTP answer) stay, so an address that bounces again after an
   * operator lifted it is suppressed at its next hard bounce instead of after another full
   * `send.hardBounceLimit`, and nothing another part keeps on the document is lost. The reason,
   * source and scope go: they described the suppression that was lifted.
   */
  async remove(email: string): Promise<SuppressionRecord | undefined> {
    const _id = normaliseEmail(email);
    return this.#serial(_id, async () => {
      const before = await this.find(_id);
      if (before === undefined) return undefined;
      await this.#col.updateOne({ _id }, { $set: { suppressed: false, updatedAt: new Date(this.#clock.now()) }, $unset: { reason: '', source: '', scope: '' } });
      return before;
    });
  }

  /**
   * New addresses go in with unordered `insertMany` of up to {@link IMPORT_CHUNK} documents keyed
   * by `_id`. An address that already has a document is looked at on its own: left alone when
   * suppressed at least as widely, else updated with a single-document update. Never a bulk of
   * updates (FerretDB v1 never answers one of 100 or more), and a re-run changes nothing.
   *
   * Which addresses exist is learnt the cheaper way (as in claimed-keys.ts): for an import into a
   * collection no larger than {@link SCAN_FACTOR} x the entries, one scan of `_id`s and states
   * first; otherwise the insert's duplicate keys, each then read by `_id`. Measured on FerretDB
   * v1 with 100,000 documents on a loaded 2-core machine: a scan 40 s, a point read 50 ms, and an
   * `insertMany` of 1,000 duplicates 3.3 s, so a re-import of a whole file must not go by duplicates.
   */
  async importMany(entries: readonly SuppressionImport[]): Promise<SuppressionImportResult> {
    const result: SuppressionImportResult = { added: 0, widened: 0, alreadySuppressed: 0 };
    const all = entries.map((e) => ({ ...e, email: normaliseEmail(e.email) }));
    const size = all.length === 0 ? 0 : await this.#col.estimatedDocumentCount();
    const known = size > 0 && size <= all.length * SCAN_FACTOR ? await this.#states(new Set(all.map((e) => e.email))) : undefined;
    const limit = pLimit(EXISTING_CONCURRENCY);
    for (let i = 0; i < all.length; i += IMPORT_CHUNK) {
      const chunk = all.slice(i, i + IMPORT_CHUNK);
      const existing = known === undefined ? [] : chunk.filter((e) => known.has(e.email));
      const fresh = known === undefined ? chunk : chunk.filter((e) => !known.has(e.email));
      const docs: SuppressionDoc[] = fresh.map((e) => ({
        _id: e.email,
        suppressed: true,
        reason: e.reason,
        source: e.source,
        scope: e.scope,
        ...(e.detail === undefined ? {} : { detail: e.detail }),
        hardBounces: 0,
        updatedAt: e.at,
      }));
      const dups = [...(await insertUnique(this.#col, docs))].sort((a, b) => a - b);
      result.added += fresh.length - dups.length;
      // In file order per address (the chain): a file naming one address twice adds it with the
      // first row and counts the second as already suppressed.
      const later = [...existing, ...dups.map((idx) => fresh[idx] as SuppressionImport)];
      const outcomes = await Promise.all(later.map((e) => limit(() => this.#importExisting(e, known))));
      for (const o of outcomes) result[o]++;
    }
    return result;
  }

  /** `_id` -> state of the documents among `wanted`: one streamed scan. */
  async #states(wanted: ReadonlySet<string>): Promise<Map<string, SuppressionState>> {
    const states = new Map<string, SuppressionState>();
    for await (const raw of this.#col.find({}, { projection: { _id: 1, suppressed: 1, scope: 1 }, batchSize: 10_000 })) {
      if (!wanted.has(raw._id)) continue;
      const d = decodeDoc(stateDoc, this.#col.collectionName, raw);
      states.set(d._id, d.suppressed ? (d.scope ?? 'all') : 'none');
    }
    return states;
  }

  async #importExisting(e: SuppressionImport, known: Map<string, SuppressionState> | undefined): Promise<keyof SuppressionImportResult> {
    return this.#serial(e.email, async () => {
      let was = known?.get(e.email);
      if (was === undefined) {
        const raw = await this.#col.findOne({ _id: e.email }, { projection: { _id: 1, suppressed: 1, scope: 1 } });
        const cur = raw === null ? undefined : decodeDoc(stateDoc, this.#col.collectionName, raw);
        was = cur?.suppressed === true ? (cur.scope ?? 'all') : 'none';
      }
      if (was === 'all' || (was === 'marketing' && e.scope === 'marketing')) return 'alreadySuppressed';
      const set: Partial<SuppressionDoc> = { suppressed: true, reason: e.reason, source: e.source, scope: e.scope, updatedAt: e.at };
      if (e.detail !== undefined) set.detail = e.detail;
      // Upserted: a document removed by hand since it was seen is simply added again.
      await upsertOnce(() => this.#col.updateOne({ _id: e.email }, { $set: set, $setOnInsert: { hardBounces: 0 } }, { upsert: true }));
      known?.set(e.email, e.scope);
      return was === 'none' ? 'added' : 'widened';
    });
  }

  #record(doc: unknown): SuppressionRecord {
    const d = decodeDoc(recordDoc, this.#col.collectionName, doc);
    const r: SuppressionRecord = { email: d._id, reason: d.reason, scope: d.scope ?? 'all', updatedAt: d.updatedAt };
    if (d.source !== undefined) r.source = d.source;
    if (d.detail !== undefined) r.detail = d.detail;
    return r;
  }

  /** Runs `write` after every earlier write to `key` from this process has settled. */
  #serial<T>(key: string, write: () => Promise<T>): Promise<T> {
    // Tails never reject (see below), so `write` runs whatever the earlier write's outcome.
    const run = (this.#writing.get(key) ?? Promise.resolve()).then(write);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.#writing.set(key, tail);
    void tail.then(() => {
      if (this.#writing.get(key) === tail) this.#writing.delete(key);
    });
    return run;
  }
}

/**
 * Two concurrent upserts of one new `_id` can both try to insert and one gets E11000 (MongoDB
 * retries that itself only in some versions); the retry then finds the document and updates it.
 */
async function upsertOnce<T>(write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (err) {
    if ((err as { code?: unknown }).code !== DUPLICATE_KEY) throw err;
    return write();
  }
}
