/**
 * Reads users with ONE streamed cursor per sync (batchSize + getMore), never `skip`, never a cap:
 * the old design's `to_list(1000)` silently dropped everyone after the 1000th. Only the mapped
 * fields are projected, so a large profile document costs nothing here.
 */
import { ObjectId, type Collection, type Document, type Filter } from 'mongodb';
import type { Config } from '../../config/schema.js';
import { decodeUserId } from '../../core/user-id.js';
import type { RawUser, UserLookup, UserSource } from '../../ports/index.js';
import { cursorBatches } from './cursor-batches.js';

/**
 * Id bytes per `$in` find: a command stays far below the 16 MB limit, and a peak minute of a
 * million ObjectId users is a handful of finds (each a scan on FerretDB v1).
 */
const IN_BYTES = 4 * 1024 * 1024;

export class MongoUserSource implements UserSource, UserLookup {
  readonly #users: Collection<Document>;
  readonly #fields: Config['users']['fields'];
  readonly #batchSize: number;
  readonly #projection: Record<string, 1>;

  constructor(users: Collection<Document>, config: Config) {
    this.#users = users;
    this.#fields = config.users.fields;
    this.#batchSize = config.mongodb.batchSize;
    this.#projection = Object.fromEntries(Object.values(this.#fields).map((f) => [f, 1]));
  }

  allActive(): AsyncIterable<RawUser[]> {
    return this.#stream({ [this.#fields.active]: true });
  }

  changedSince(since: Date): AsyncIterable<RawUser[]> {
    return this.#stream({ [this.#fields.updatedAt]: { $gt: since } });
  }

  async byId(id: string): Promise<RawUser | undefined> {
    const field = this.#fields.id;
    // An encoded id (user-id.ts) names one typed value. Untagged text may also be typed by hand
    // (`--user 42` for `_id: 42`): tagged text is looked up exactly, plain text as before, trying
    // the plausible types in turn.
    if (/^[a-z]:/.test(id)) {
      const typed = mongoUserId(id);
      if (typed === undefined) return undefined;
      return (await this.#users.findOne({ [field]: typed }, { projection: this.#projection })) ?? undefined;
    }
    const candidates: unknown[] = ObjectId.isValid(id) && /^[0-9a-f]{24}$/i.test(id) ? [new ObjectId(id), id] : [id];
    if (/^\d+$/.test(id)) candidates.push(Number(id));
    for (const value of candidates) {
      const doc = await this.#users.findOne({ [field]: value }, { projection: this.#projection });
      if (doc) return doc;
    }
    return undefined;
  }

  /**
   * The batch's users with `find({id: {$in}})`, one find per {@link IN_BYTES} of ids. On MongoDB
   * that is an `_id` index lookup. FerretDB v1 pushes down only an exact `_id` equality: `$in` (of
   * any length) is a scan of the collection there (measured at 20,000 users on a loaded machine:
   * 2.4-4.5 s per find), and exact lookups one by one were slower still (16 in flight: ~47 s for
   * 1,000 at 5,000 users), so the send path asks once per fired minute, not per claim chunk.
   * Ids that do not decode (a digest) cannot be looked up and are simply not found.
   */
  async byIds(ids: readonly string[]): Promise<RawUser[]> {
    const out: RawUser[] = [];
    let part: unknown[] = [];
    let bytes = 0;
    const flush = async (): Promise<void> => {
      if (part.length === 0) return;
      const docs = await this.#users.find({ [this.#fields.id]: { $in: part } }, { projection: this.#projection, batchSize: 1000 }).toArray();
      for (const d of docs) out.push(d);
      part = [];
      bytes = 0;
    };
    for (const id of ids) {
      const typed = mongoUserId(id);
      if (typed === undefined) continue;
      part.push(typed);
      bytes += typeof typed === 'string' ? Buffer.byteLength(typed, 'utf8') + 16 : 24;
      if (bytes >= IN_BYTES) await flush();
    }
    await flush();
    return out;
  }

  #stream(filter: Filter<Document>): AsyncIterable<RawUser[]> {
    return cursorBatches<RawUser>(this.#users.find(filter, { projection: this.#projection, batchSize: this.#batchSize }), this.#batchSize);
  }
}

/** The typed `_id` value an encoded user id stands for; undefined for a digest or bad text. */
export function mongoUserId(encoded: string): string | number | ObjectId | undefined {
  const d = decodeUserId(encoded);
  if (d === undefined) return undefined;
  return d.type === 'objectId' ? ObjectId.createFromHexString(d.hex) : d.value;
}
