/**
 * The scheduler checkpoint in MongoDB: one document, `{_id: 'scheduler', lastMinute}`, in the
 * state collection. One `_id` filter (the only one FerretDB v1 pushes down) and one single-document
 * update per processed minute, never a bulk. `$max` makes instances agree on the furthest
 * checkpoint: a running instance keeps it current for one that restarts.
 */
import type { Collection } from 'mongodb';
import type { CheckpointStore } from '../../ports/index.js';
import type { StateDoc } from './store.js';

const ID = 'scheduler';

export class MongoCheckpointStore implements CheckpointStore {
  readonly #col: Collection<StateDoc>;
  readonly #instance: string;

  constructor(col: Collection<StateDoc>, instance: string) {
    this.#col = col;
    this.#instance = instance;
  }

  async load(): Promise<number | undefined> {
    const doc = await this.#col.findOne({ _id: ID });
    return typeof doc?.lastMinute === 'number' ? doc.lastMinute : undefined;
  }

  async save(minute: number): Promise<void> {
    await this.#col.updateOne({ _id: ID }, { $max: { lastMinute: minute }, $set: { updatedAt: new Date(), instance: this.#instance } }, { upsert: true });
  }
}
