/**
 * The replay guard in MongoDB (ports/feedback.ts ReplayGuard): one document per accepted
 * notification, `{_id: '<source>:<id>', at}`, in the collection the app names
 * `<prefix>feedback_seen`. The unique `_id` makes "first seen" atomic across every instance: the
 * insert that lands first wins, any other gets a duplicate-key error and is a replay. `_id` is the
 * only filter FerretDB v1 pushes down, so both calls are one indexed round trip.
 */
import { type Collection, MongoServerError } from 'mongodb';
import { systemClock, type Clock } from '../../ports/clock.js';
import type { FeedbackSource, ReplayGuard } from '../../ports/feedback.js';

export interface SeenDoc {
  _id: string;
  at: Date;
}

const DUPLICATE_KEY = 11000;

export class MongoReplayGuard implements ReplayGuard {
  readonly #col: Collection<SeenDoc>;
  readonly #clock: Pick<Clock, 'now'>;

  constructor(col: Collection<SeenDoc>, clock: Pick<Clock, 'now'> = systemClock) {
    this.#col = col;
    this.#clock = clock;
  }

  async firstSeen(source: FeedbackSource, id: string): Promise<boolean> {
    try {
      await this.#col.insertOne({ _id: seenId(source, id), at: new Date(this.#clock.now()) });
      return true;
    } catch (err) {
      if (err instanceof MongoServerError && err.code === DUPLICATE_KEY) return false;
      throw err;
    }
  }

  /**
   * Takes an id back: the webhook calls it when the sink failed after the id was recorded, so the
   * provider's retry of that notification is applied rather than refused as a replay.
   */
  async forget(source: FeedbackSource, id: string): Promise<void> {
    await this.#col.deleteOne({ _id: seenId(source, id) });
  }
}

export function seenId(source: FeedbackSource, id: string): string {
  return `${source}:${id}`;
}
