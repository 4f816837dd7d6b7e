/**
 * The scheduler checkpoint in MongoDB: one document, `{_id: 'scheduler', lastMinute}`, in the
 * state collection. One `_id` filter (the only one FerretDB v1 pushes down) and one single-document
 * update per processed minute, never a bulk. `$max` makes instances agree on the furthest
 * checkpoint: a running instance keeps it current for one that restarts.
 */
import type { Collection } from 'mongodb';
import type { CheckpointStore } from '../../ports/index.js';
import { z } from 'zod';
import { systemClock, type Clock } from '../../ports/clock.js';
import { decodeDoc } from './decode.js';
import type { StateDoc } from './store.js';

const ID = 'scheduler';
/** A stored null or a non-integer is an error naming the document (decode.ts), not "no checkpoint". */
const schedulerDoc = z.object({ _id: z.literal(ID), lastMinute: z.number().int().optional() });

export class MongoCheckpointStore implements CheckpointStore {
  readonly #col: Collection<StateDoc>;
  readonly #instance: string;

  readonly #clock: Clock;

  constructor(col: Collection<StateDoc>, instance: string, clock: Clock = systemClock) {
    this.#col = col;
    this.#instance = instance;
    this.#clock = clock;
  }

  async load(): Promise<number | undefined> {
    const doc = await this.#col.findOne({ _id: ID });
    return doc === null ? undefined : decodeDoc(schedulerDoc, this.#col.collectionName, doc).lastMinute;
  }

  async save(minute: number): Promise<void> {
    await this.#col.updateOne({ _id: ID }, { $max: { lastMinute: minute }, $set: { updatedAt: new Date(this.#clock.now()), instance: this.#instance } }, { upsert: true });
  }
}
