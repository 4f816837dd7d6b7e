/**
 * Reads a broadcast's recipients: ONE streamed cursor over the users collection with the
 * validated segment filter (batchSize + getMore, never `skip`, no cap, no sort; see docs/ARCHITECTURE.md
 * "Known limits" for why no sort), projecting only the fields a broadcast needs.
 */
import type { Collection, Document, Filter } from 'mongodb';
import type { Config } from '../../config/schema.js';
import type { SegmentFilter } from '../../core/segment.js';
import { getField } from '../../core/validate-user.js';
import type { RecipientSource, ZoneCounts } from '../../ports/broadcasts.js';
import type { RawUser } from '../../ports/index.js';
import { cursorBatches } from './cursor-batches.js';

/** Cursor batch of {@link MongoRecipientSource.zoneCounts} when the caller names none. */
const ZONE_BATCH = 1000;

export class MongoRecipientSource implements RecipientSource {
  readonly #users: Collection<Document>;
  readonly #projection: Record<string, 1>;
  readonly #timezone: string;

  constructor(users: Collection<Document>, fields: Config['users']['fields']) {
    this.#users = users;
    const f = fields;
    this.#timezone = f.timezone;
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

  /**
   * Users per timezone value among those `filter` matches: one streamed cursor projecting the
   * timezone field alone (`_id` left out too), so a million users cost a scan and a few bytes
   * each, not their documents. Counted here rather than grouped by the server: FerretDB v1 would
   * scan the same way, and a `$group` cannot tell a missing field from a non-string one portably.
   */
  async zoneCounts(filter: SegmentFilter, batchSize = ZONE_BATCH): Promise<ZoneCounts> {
    const out: ZoneCounts = { zones: new Map(), missing: 0, notString: 0 };
    const cursor = this.#users.find(filter as Filter<Document>, { projection: { _id: 0, [this.#timezone]: 1 }, batchSize });
    for await (const batch of cursorBatches<Document>(cursor, batchSize)) {
      for (const doc of batch) {
        const zone = getField(doc, this.#timezone);
        if (zone === undefined || zone === null) out.missing++;
        else if (typeof zone !== 'string') out.notString++;
        else out.zones.set(zone, (out.zones.get(zone) ?? 0) + 1);
      }
    }
    return out;
  }
}
