/**
 * Reads a broadcast's recipients: ONE streamed cursor over the users collection with the
 * validated segment filter (batchSize + getMore, never `skip`, no cap, no sort; see docs/ARCHITECTURE.md
 * "Known limits" for why no sort), projecting only the fields a broadcast needs.
 */
import type { Collection, Document, Filter } from 'mongodb';
import type { Config } from '../../config/schema.js';
import type { SegmentFilter } from '../../core/segment.js';
import type { RecipientSource } from '../../ports/broadcasts.js';
import type { RawUser } from '../../ports/index.js';
import { cursorBatches } from './cursor-batches.js';

export class MongoRecipientSource implements RecipientSource {
  readonly #users: Collection<Document>;
  readonly #projection: Record<string, 1>;

  constructor(users: Collection<Document>, fields: Config['users']['fields']) {
    this.#users = users;
    const f = fields;
    // The zone too: local-time broadcasts and quiet hours read each recipient's local time.
    this.#projection = Object.fromEntries([f.id, f.email, f.name, f.active, f.unsubscribed, f.timezone].map((name) => [name, 1]));
  }

  /** Users matching `filter`, in batches of exactly `batchSize` (the last may be shorter). */
  stream(filter: SegmentFilter, batchSize: number): AsyncGenerator<RawUser[]> {
    return cursorBatches<RawUser>(this.#users.find(filter as Filter<Document>, { projection: this.#projection, batchSize }), batchSize);
  }

  /** How many users match (a scan on FerretDB v1; not for the hot path). */
  async count(filter: SegmentFilter): Promise<number> {
    return this.#users.countDocuments(filter as Filter<Document>);
  }

  /**
   * Runs the filter once so the server can refuse what it does not support, before anything is
   * written (the allow-list is checked already; servers differ in what they implement).
   */
  async probe(filter: SegmentFilter): Promise<void> {
    await this.#users.find(filter as Filter<Document>, { projection: { _id: 1 }, limit: 1 }).toArray();
  }
}
