/**
 * Counts the sends recorded in the last minute / hour / day, so a start restores the rate windows
 * (core/rate-windows.ts) instead of handing out a fresh budget.
 *
 * The source is the delivery records' outcomes (`<key>#done` with status `sent`, and its `at`),
 * not the `sent` events: events are buffered and a crash loses those not yet written, while the
 * outcome record is written first and the start-up event check rebuilds lost events from it
 * (event-reconciler.ts). The records carry no instance: every instance's sends count, which is
 * also what the provider sees. What they miss is a crash's last `send.recordFlushMs`: messages
 * accepted by the server whose outcome was not written yet (at most `send.recordBatch`; a
 * takeover re-sends them, and that send is recorded).
 *
 * Bounded: one streamed read of the longest window (`at` >= now - longest), projected to `_id`
 * and `at`, the shorter windows derived from it. On MongoDB the `at` index serves it; FerretDB v1
 * scans the collection once (see `npm run bench restore` for the cost).
 */
import type { Collection } from 'mongodb';
import { z } from 'zod';
import type { SentCounter } from '../../ports/stores.js';
import { decodeDoc, zDate } from './decode.js';
import type { DeliveryDoc } from './store.js';

const sentAt = z.object({ at: zDate });

export class MongoSentCounter implements SentCounter {
  readonly #col: Collection<DeliveryDoc>;
  readonly #batchSize: number;

  constructor(col: Collection<DeliveryDoc>, opts: { batchSize: number }) {
    this.#col = col;
    this.#batchSize = opts.batchSize;
  }

  async countSent(now: number, windowsMs: readonly number[]): Promise<number[]> {
    const counts = windowsMs.map(() => 0);
    if (windowsMs.length === 0) return counts;
    const since = new Date(now - Math.max(...windowsMs));
    const cursor = this.#col.find({ type: 'done', status: 'sent', at: { $gte: since } }, { projection: { _id: 1, at: 1 } }).batchSize(this.#batchSize);
    try {
      for await (const raw of cursor) {
        // A record dated after `now` (another host's clock ahead) is in every window.
        const age = now - decodeDoc(sentAt, this.#col.collectionName, raw).at.getTime();
        for (let i = 0; i < windowsMs.length; i++) if (age <= (windowsMs[i] ?? 0)) counts[i] = (counts[i] ?? 0) + 1;
      }
    } finally {
      await cursor.close();
    }
    return counts;
  }
}
