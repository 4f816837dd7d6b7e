/**
 * The per-partition catch-up marks in MongoDB (ports/cluster.ts PartitionMarks): one small
 * document per partition in the state collection, `{_id: 'partition:<p>', lastMinute}`, next to
 * the scheduler checkpoint. In MongoDB rather than Redis so that a Redis restart loses no mark.
 *
 * A save of many partitions is a few round trips (unordered bulks of SAVE_CHUNK `updateOne` upserts), a load
 * one `_id $in` read (the only filter FerretDB v1 pushes down). `$max` makes the mark move forward
 * only: an old owner writing late, or a new owner pinning a partition, never moves one back.
 */
import type { AnyBulkWriteOperation, Collection } from 'mongodb';
import { z } from 'zod';
import type { PartitionMarks } from '../../ports/cluster.js';
import { systemClock, type Clock } from '../../ports/clock.js';
import { decodeDoc } from './decode.js';
import type { StateDoc } from './store.js';

const PREFIX = 'partition:';

/** A stored null or a non-integer is an error naming the document (decode.ts), not "no mark". */
const markDoc = z.object({ _id: z.string().startsWith(PREFIX), lastMinute: z.number().int() });

/** The state document id of partition `p`. */
export function partitionMarkId(p: number): string {
  return `${PREFIX}${p}`;
}

/**
 * Updates per bulk write. FerretDB v1 holds one SQLite connection per update of a request until
 * the request ends, out of 100 per database (docs/ARCHITECTURE.md "Known limits"): three instances
 * writing bulks of 50 at the same minute held them all and the database stopped answering. With 8,
 * a dozen instances marking at once stay far below it.
 */
export const SAVE_CHUNK = 8;

export class MongoPartitionMarks implements PartitionMarks {
  readonly #col: Collection<StateDoc>;
  readonly #instance: string;
  readonly #clock: Clock;

  constructor(col: Collection<StateDoc>, instance: string, clock: Clock = systemClock) {
    this.#col = col;
    this.#instance = instance;
    this.#clock = clock;
  }

  async load(partitions: readonly number[]): Promise<Map<number, number>> {
    const out = new Map<number, number>();
    if (partitions.length === 0) return out;
    const docs = await this.#col.find({ _id: { $in: partitions.map(partitionMarkId) } }).toArray();
    for (const raw of docs) {
      const doc = decodeDoc(markDoc, this.#col.collectionName, raw);
      out.set(Number(doc._id.slice(PREFIX.length)), doc.lastMinute);
    }
    return out;
  }

  async save(partitions: readonly number[], minute: number): Promise<void> {
    if (partitions.length === 0) return;
    const $set = { updatedAt: new Date(this.#clock.now()), instance: this.#instance };
    const ops: Array<AnyBulkWriteOperation<StateDoc>> = [...new Set(partitions)].map((p) => ({
      updateOne: { filter: { _id: partitionMarkId(p) }, update: { $max: { lastMinute: minute }, $set }, upsert: true },
    }));
    // Small bulks, one after the other (SAVE_CHUNK): an instance holding 256 partitions writes 32.
    for (let i = 0; i < ops.length; i += SAVE_CHUNK) await this.#col.bulkWrite(ops.slice(i, i + SAVE_CHUNK), { ordered: false });
  }
}
