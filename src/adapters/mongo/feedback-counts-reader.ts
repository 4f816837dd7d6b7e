/**
 * Reads the feedback counts the sink keeps in `<prefix>feedback_counts` (one document per
 * broadcast, `_id` `b:<id>`, and per UTC day, `_id` `d:<YYYY-MM-DD>`, with the numeric fields
 * hardBounces, softBounces, complaints). Read only, and only by `_id` (the one filter FerretDB v1
 * pushes down): `broadcast status`, `broadcast list` and the rates of `/metrics` read here; the
 * sink writes.
 */
import type { Collection, Db } from 'mongodb';
import { z } from 'zod';
import type { FeedbackCounts, FeedbackTally } from '../../ports/feedback.js';
import { decodeDoc } from './decode.js';

/** A field the sink has not written yet (no report of that kind) counts as 0. */
const count = z.number().int().nonnegative().default(0);
const tally = z.object({ hardBounces: count, softBounces: count, complaints: count });

export class MongoFeedbackCountsReader implements FeedbackCounts {
  readonly #col: Collection<{ _id: string }>;

  constructor(db: Db, prefix: string) {
    this.#col = db.collection<{ _id: string }>(`${prefix}feedback_counts`);
  }

  forBroadcast(id: string): Promise<FeedbackTally> {
    return this.#read(`b:${id}`);
  }

  forDay(day: string): Promise<FeedbackTally> {
    return this.#read(`d:${day}`);
  }

  async #read(_id: string): Promise<FeedbackTally> {
    const raw = await this.#col.findOne({ _id });
    if (raw === null) return { hardBounces: 0, softBounces: 0, complaints: 0 };
    const t = decodeDoc(tally, this.#col.collectionName, raw);
    return { hardBounces: t.hardBounces, softBounces: t.softBounces, complaints: t.complaints };
  }
}
