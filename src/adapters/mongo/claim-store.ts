/**
 * Claims make sending idempotent across reruns, restarts and instances. A delivery key is the
 * `_id` of a claim document; whoever inserts it first owns it. Inserts are bulk and unordered, so
 * one round trip claims a thousand keys and each duplicate comes back as its own E11000 (also on
 * FerretDB v1, whose findAndModify is not atomic between clients).
 *
 * Finishing a send inserts `<key>#done`. A claim with no `#done` whose owner is gone (crashed, or
 * stopped while the send was in flight) would block its key forever, which is a missed email; so a
 * later claimant takes it over, and that race is decided the same way, by a unique insert of
 * `<key>#<gen>` for the generation being replaced. Exactly one racer wins.
 */
import { randomUUID } from 'node:crypto';
import { MongoBulkWriteError, type Collection } from 'mongodb';
import pLimit from 'p-limit';
import type { ClaimResult, ClaimStore } from '../../ports/index.js';
import type { DeliveryKind } from '../../core/types.js';
import { writeErrorsOf } from './event-sink.js';
import type { InstanceRegistry } from './instance-registry.js';
import type { ClaimDoc, DeliveryDoc, DoneDoc } from './store.js';

const DUPLICATE_KEY = 11000;
/** Deletes per bulk write; FerretDB v1 stalls on large bulks of single-document writes. */
const DELETE_CHUNK = 50;

/** Parses the kind and user id back out of a delivery key (see DESIGN.md "Claims"). */
export function describeKey(key: string): { kind: DeliveryKind; userId: string } {
  const parts = key.split(':');
  const kind: DeliveryKind = parts[0] === 'b' ? 'broadcast' : 'scheduled';
  // s:<userId>:<HH:MM>:<date> (the user id is everything between the prefix and the last three
  // parts, since ids may contain ':'); b:<broadcastId>:<userId>.
  const userId = kind === 'scheduled' ? parts.slice(1, -3).join(':') : parts.slice(2).join(':');
  return { kind, userId };
}

export class MongoClaimStore implements ClaimStore {
  readonly #col: Collection<DeliveryDoc>;
  readonly #instances: InstanceRegistry;
  /** Takeovers are rare single-key writes; bounded so a mass recovery does not flood the server. */
  readonly #limit = pLimit(16);
  readonly stats = { claimed: 0, taken: 0, takenOver: 0 };

  constructor(col: Collection<DeliveryDoc>, instances: InstanceRegistry) {
    this.#col = col;
    this.#instances = instances;
  }

  async claim(keys: readonly string[]): Promise<ClaimResult> {
    if (keys.length === 0) return { claimed: [], taken: [] };
    const at = new Date();
    const owner = this.#instances.id;
    const docs: ClaimDoc[] = keys.map((key) => ({ _id: key, type: 'claim', ...describeKey(key), owner, gen: randomUUID(), at }));
    const dupIdx = await insertIgnoringDuplicates(this.#col, docs);
    const claimed: string[] = [];
    const dups: string[] = [];
    keys.forEach((k, i) => (dupIdx.has(i) ? dups : claimed).push(k));
    const recovered = await this.#takeOverAbandoned(dups);
    const taken = dups.filter((k) => !recovered.has(k));
    this.stats.claimed += claimed.length + recovered.size;
    this.stats.taken += taken.length;
    this.stats.takenOver += recovered.size;
    return { claimed: [...claimed, ...recovered], taken };
  }

  async complete(outcomes: ReadonlyArray<{ key: string; status: 'sent' | 'failed' }>): Promise<void> {
    if (outcomes.length === 0) return;
    const at = new Date();
    const docs: DoneDoc[] = outcomes.map((o) => ({ _id: `${o.key}#done`, type: 'done', key: o.key, status: o.status, at }));
    // A duplicate means an earlier attempt of this same write got through: already recorded.
    await insertIgnoringDuplicates(this.#col, docs);
  }

  async release(keys: readonly string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += DELETE_CHUNK) {
      const ops = keys.slice(i, i + DELETE_CHUNK).map((key) => ({ deleteOne: { filter: { _id: key } } }));
      await this.#col.bulkWrite(ops, { ordered: false });
    }
  }

  /** Keys among `dups` whose claim was abandoned unfinished by a gone owner, and that we won. */
  async #takeOverAbandoned(dups: readonly string[]): Promise<Set<string>> {
    const won = new Set<string>();
    if (dups.length === 0) return won;
    // Two set reads per batch rather than two point reads per key: on MongoDB both are `_id`
    // index lookups; on FerretDB v1 each is one scan in place of a thousand round trips (a rerun
    // of a 2,500-user minute went from 24 s to well under one). Reached only for duplicates,
    // which is the rerun / second-instance path, not the normal send path.
    const done = new Set((await this.#col.find({ _id: { $in: dups.map((k) => `${k}#done`) } }, { projection: { _id: 1 } }).toArray()).map((d) => d._id.slice(0, -'#done'.length)));
    const open = dups.filter((k) => !done.has(k));
    if (open.length === 0) return won;
    const claims = (await this.#col.find({ _id: { $in: open } }).toArray()).filter((d): d is ClaimDoc => d.type === 'claim');
    const alive = new Map<string, Promise<boolean>>();
    const isAlive = (owner: string) => {
      let p = alive.get(owner);
      if (!p) alive.set(owner, (p = this.#instances.isAlive(owner)));
      return p;
    };
    await Promise.all(
      claims.map((claim) =>
        this.#limit(async () => {
          if (await isAlive(claim.owner)) return;
          const key = claim._id;
          try {
            // The unique insert decides the race between instances recovering the same key.
            await this.#col.insertOne({ _id: `${key}#${claim.gen}`, type: 'takeover', key, owner: this.#instances.id, at: new Date() });
          } catch (err) {
            if ((err as { code?: unknown }).code === DUPLICATE_KEY) return;
            throw err;
          }
          await this.#col.updateOne({ _id: key }, { $set: { owner: this.#instances.id, gen: randomUUID(), at: new Date() } });
          won.add(key);
        }),
      ),
    );
    return won;
  }
}

/** Unordered insert; returns the indexes that were duplicates. Any other error is thrown. */
async function insertIgnoringDuplicates<T extends DeliveryDoc>(col: Collection<DeliveryDoc>, docs: T[]): Promise<Set<number>> {
  const dups = new Set<number>();
  try {
    await col.insertMany(docs, { ordered: false });
  } catch (err) {
    if (!(err instanceof MongoBulkWriteError)) throw err;
    for (const e of writeErrorsOf(err)) {
      if (e.code !== DUPLICATE_KEY) throw err;
      dups.add(e.index);
    }
  }
  return dups;
}
