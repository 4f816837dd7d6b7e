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
import { normaliseEmail } from '../../core/suppression-list.js';
import { mongoUserId } from './user-source.js';
import type { SuppressedAddress, SuppressionEntry, SuppressionReason, SuppressionScope, SuppressionStore } from '../../ports/index.js';
import { z } from 'zod';
import { systemClock, type Clock } from '../../ports/clock.js';
import { cursorBatches } from './cursor-batches.js';
import { decodeDoc } from './decode.js';

/**
 * What this store reads back, decoded (decode.ts): a malformed document is an error naming the
 * collection, the address and the field. Not skipped: a suppression list that silently lost an
 * address would mail someone who asked not to be mailed.
 */
const suppressedId = z.object({ _id: z.string(), scope: z.enum(['all', 'marketing']).optional() });
const bounceCount = z.object({ _id: z.string(), hardBounces: z.number().int() });

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

export class MongoSuppressionStore implements SuppressionStore {
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
