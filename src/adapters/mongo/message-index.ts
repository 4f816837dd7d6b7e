/**
 * The message index (`<prefix>message_index`): one document per message mailwheel claimed to
 * send, `_id` = its digest (the Message-ID's local part, core/message.ts messageIdFor), so a DSN
 * or ARF report that carries only the original Message-ID finds its delivery with one `_id` read.
 * Written by the claim store in the same batch as the claims, before any of them can be sent, so
 * a bounce that comes back within seconds still finds its message. Insert only: a repeat (a
 * rerun, a takeover) is a duplicate `_id`, ignored. Retention deletes entries with the delivery
 * records (adapters/mongo/retention.ts).
 */
import type { Collection, Db } from 'mongodb';
import { z } from 'zod';
import type { MessageIndex, SentMessage } from '../../ports/feedback.js';
import { decodeDoc, zDate } from './decode.js';
import { insertUnique } from './insert-unique.js';

export interface MessageIndexDoc {
  _id: string;
  key: string;
  email: string;
  userId: string;
  broadcastId?: string;
  at: Date;
}

const readDoc = z.object({ _id: z.string(), key: z.string(), email: z.string(), userId: z.string(), broadcastId: z.string().optional(), at: zDate });

/** Digests per read (one `$in`). */
const READ_CHUNK = 1000;

export function messageIndexCollection(db: Db, prefix: string): Collection<MessageIndexDoc> {
  return db.collection<MessageIndexDoc>(`${prefix}message_index`);
}

export class MongoMessageIndex implements MessageIndex {
  readonly #col: Collection<MessageIndexDoc>;

  constructor(col: Collection<MessageIndexDoc>) {
    this.#col = col;
  }

  async record(messages: readonly SentMessage[]): Promise<void> {
    await insertUnique(
      this.#col,
      messages.map((m) => ({ _id: m.digest, key: m.key, email: m.email, userId: m.userId, ...(m.broadcastId === undefined ? {} : { broadcastId: m.broadcastId }), at: m.at })),
    );
  }

  async find(digests: readonly string[]): Promise<Map<string, SentMessage>> {
    const out = new Map<string, SentMessage>();
    const unique = [...new Set(digests)];
    for (let i = 0; i < unique.length; i += READ_CHUNK) {
      for (const raw of await this.#col.find({ _id: { $in: unique.slice(i, i + READ_CHUNK) } }).toArray()) {
        const d = decodeDoc(readDoc, this.#col.collectionName, raw);
        out.set(d._id, { digest: d._id, key: d.key, email: d.email, userId: d.userId, broadcastId: d.broadcastId, at: d.at });
      }
    }
    return out;
  }
}
