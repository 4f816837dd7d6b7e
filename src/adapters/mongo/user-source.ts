/**
 * Reads users with ONE streamed cursor per sync (batchSize + getMore), never `skip`, never a cap:
 * the old design's `to_list(1000)` silently dropped everyone after the 1000th. Only the mapped
 * fields are projected, so a large profile document costs nothing here.
 */
import { ObjectId, type Collection, type Document, type Filter } from 'mongodb';
import type { Config } from '../../config/schema.js';
import { decodeUserId } from '../../core/user-id.js';
import type { RawUser, UserSource } from '../../ports/index.js';
import { cursorBatches } from './cursor-batches.js';

export class MongoUserSource implements UserSource {
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
