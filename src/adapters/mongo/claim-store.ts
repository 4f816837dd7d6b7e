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
import type { ClaimOptions, ClaimResult, ClaimStore } from '../../ports/index.js';
import type { DeliveryKind } from '../../core/types.js';
import { writeErrorsOf } from './event-sink.js';
import type { InstanceRegistry } from './instance-registry.js';
import type { ClaimDoc, DeliveryDoc, DoneDoc } from './store.js';

const DUPLICATE_KEY = 11000;
/** Keys per release (one `deleteMany` with `$in`). */
const DELETE_CHUNK = 1000;

/** Parses the kind and user id back out of a delivery key (see docs/ARCHITECTURE.md "Claims"). */
export function describeKey(key: string): { kind: DeliveryKind; userId: string } {
  const parts = key.split(':');
  const kind: DeliveryKind = parts[0] === 'b' ? 'broadcast' : 'scheduled';
  // s:<userId>:<HH:MM>:<date> (the user id is everything between the prefix and the last three
  // parts, since ids may contain ':'); b:<broadcastId>:<userId>.
  const userId = kind === 'scheduled' ? parts.slice(1, -3).join(':') : parts.slice(2).join(':');
  return { kind, userId };
}

/**
 * The key an earlier version gave the same delivery, when it differs. Before user ids kept their
 * type, `_id: 1` was `1` in keys (now `n:1`), and a string that reads as another type was itself
 * (now `s:` + it). A claim made under that key by a version without the typed ids (a daemon
 * upgraded mid-day, or an old instance still running) means the message may already have gone
 * out, so the new key is not claimed: counted as taken, finished with the old key's status
 * (unless that claim is unfinished and its owner gone, which a takeover would have re-sent).
 * An id over 128 bytes is now a digest in the key and its old key cannot be rebuilt from it;
 * such users may get a slot twice across the upgrade (their messages had over-long header lines
 * before it).
 */
export function legacyKeyOf(key: string): string | undefined {
  const parts = key.split(':');
  if (parts[0] === 's' && parts.length >= 6 && (parts[1] === 'n' || parts[1] === 's')) return ['s', ...parts.slice(2)].join(':');
  if (parts[0] === 'b' && parts.length >= 4 && (parts[2] === 'n' || parts[2] === 's')) return ['b', parts[1], ...parts.slice(3)].join(':');
  return undefined;
}

export class MongoClaimStore implements ClaimStore {
  readonly #col: Collection<DeliveryDoc>;
  readonly #instances: InstanceRegistry;
  /** Takeovers are rare single-key writes; bounded so a mass recovery does not flood the server. */
  readonly #limit = pLimit(16);
  readonly stats = { claimed: 0, taken: 0, takenOver: 0, takeoverErrors: 0 };
  /** Whether any claim was written by a version without typed ids (asked once per process). */
  #legacyClaims: Promise<boolean> | undefined;

  constructor(col: Collection<DeliveryDoc>, instances: InstanceRegistry) {
    this.#col = col;
    this.#instances = instances;
  }

  async claim(keys: readonly string[], options: ClaimOptions = {}): Promise<ClaimResult> {
    if (keys.length === 0) return { claimed: [], taken: [] };
    const at = new Date();
    const owner = this.#instances.id;
    const finished = new Map<string, 'sent' | 'failed'>();
    const legacy = await this.#claimedUnderLegacyKey(keys, finished);
    if (legacy.size > 0) keys = keys.filter((k) => !legacy.has(k));
    const docs: ClaimDoc[] = keys.map((key) => ({ _id: key, type: 'claim', ...describeKey(key), owner, gen: randomUUID(), at, v: 2 }));
    const dupIdx = await insertIgnoringDuplicates(this.#col, docs);
    const claimed: string[] = [];
    const dups: string[] = [];
    keys.forEach((k, i) => (dupIdx.has(i) ? dups : claimed).push(k));
    const recovered = await this.#takeOverAbandoned(dups, finished, options.adoptOwn === true);
    const taken = [...legacy, ...dups.filter((k) => !recovered.has(k))];
    this.stats.claimed += claimed.length + recovered.size;
    this.stats.taken += taken.length;
    this.stats.takenOver += recovered.size;
    return { claimed: [...claimed, ...recovered], taken, finished };
  }

  async complete(outcomes: ReadonlyArray<{ key: string; status: 'sent' | 'failed' | 'missed' }>): Promise<void> {
    if (outcomes.length === 0) return;
    const at = new Date();
    const docs: DoneDoc[] = outcomes.map((o) => ({ _id: `${o.key}#done`, type: 'done', key: o.key, status: o.status, at }));
    // A duplicate means an earlier attempt of this same write got through: already recorded.
    await insertIgnoringDuplicates(this.#col, docs);
  }

  async release(keys: readonly string[]): Promise<void> {
    // One set delete per chunk: on MongoDB `_id` index lookups either way; on FerretDB v1 each
    // single-document delete is a table scan (measured: 200 keys 5.4 s as deleteOne x 200,
    // 0.65 s as one `$in`), which made pausing a broadcast take seconds.
    for (let i = 0; i < keys.length; i += DELETE_CHUNK) {
      await this.#col.deleteMany({ _id: { $in: keys.slice(i, i + DELETE_CHUNK) } });
    }
  }

  /**
   * Keys among `keys` claimed under their legacy key (see {@link legacyKeyOf}) by a version that
   * wrote untyped ids; fills `finished` with those already done. One set read, and only for
   * batches holding such keys (numeric ids, or strings that read as another type), and only
   * while the collection holds claims of that version (`retention.deliveriesDays`).
   */
  async #claimedUnderLegacyKey(keys: readonly string[], finished: Map<string, 'sent' | 'failed'>): Promise<Set<string>> {
    const found = new Set<string>();
    const byLegacy = new Map<string, string>();
    for (const k of keys) {
      const old = legacyKeyOf(k);
      if (old !== undefined) byLegacy.set(old, k);
    }
    if (byLegacy.size === 0) return found;
    // A database never written by such a version (or whose old claims retention has deleted)
    // needs no lookups at all.
    this.#legacyClaims ??= this.#col.findOne({ type: 'claim', v: { $exists: false } }, { projection: { _id: 1 } }).then((d) => d !== null);
    if (!(await this.#legacyClaims)) return found;
    const olds = [...byLegacy.keys()];
    const docs = await this.#col.find({ _id: { $in: [...olds, ...olds.map((k) => `${k}#done`)] } }).toArray();
    const status = new Map<string, unknown>();
    for (const d of docs) if (d.type === 'done') status.set(d.key, d.status);
    for (const d of docs) {
      // A claim of the new format under that text belongs to another user (`"1"` vs `1`).
      if (d.type !== 'claim' || d.v === 2) continue;
      const key = byLegacy.get(d._id);
      if (key === undefined) continue;
      const s = status.get(d._id);
      // Unfinished, and its owner is gone: what a takeover of the old key would have re-sent.
      if (s === undefined && !(await this.#instances.isAlive(d.owner))) continue;
      found.add(key);
      if (s === 'sent' || s === 'failed') finished.set(key, s);
    }
    return found;
  }

  /**
   * Keys among `dups` whose claim was abandoned unfinished by a gone owner, and that we won.
   * Fills `finished` with the keys already done and their status.
   */
  async #takeOverAbandoned(dups: readonly string[], finished: Map<string, 'sent' | 'failed'>, adoptOwn: boolean): Promise<Set<string>> {
    const won = new Set<string>();
    if (dups.length === 0) return won;
    // Two set reads per batch rather than two point reads per key: on MongoDB both are `_id`
    // index lookups; on FerretDB v1 each is one scan in place of a thousand round trips (a rerun
    // of a 2,500-user minute went from 24 s to well under one). Reached only for duplicates,
    // which is the rerun / second-instance path, not the normal send path.
    const doneDocs = await this.#col.find({ _id: { $in: dups.map((k) => `${k}#done`) } }, { projection: { _id: 1, status: 1 } }).toArray();
    const done = new Set<string>();
    for (const d of doneDocs) {
      const key = d._id.slice(0, -'#done'.length);
      const status = (d as Partial<DoneDoc>).status;
      done.add(key);
      if (status === 'sent' || status === 'failed') finished.set(key, status);
    }
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
          if (!(adoptOwn && claim.owner === this.#instances.id) && (await isAlive(claim.owner))) return;
          const key = claim._id;
          const takeoverId = `${key}#${claim.gen}`;
          try {
            // The unique insert decides the race between instances recovering the same key.
            await this.#col.insertOne({ _id: takeoverId, type: 'takeover', key, owner: this.#instances.id, at: new Date() });
          } catch (err) {
            if ((err as { code?: unknown }).code === DUPLICATE_KEY) return;
            throw err;
          }
          try {
            await withRetries(() => this.#col.updateOne({ _id: key }, { $set: { owner: this.#instances.id, gen: randomUUID(), at: new Date() } }));
          } catch {
            // Won but not recorded (FerretDB v1 answers concurrent updates with SQLITE_BUSY at
            // times). Left in place, the takeover record would block this key for every later
            // attempt: remove it, and leave the key to the next claim of it.
            this.stats.takeoverErrors++;
            await this.#col.deleteOne({ _id: takeoverId }).catch(() => undefined);
            return;
          }
          won.add(key);
        }),
      ),
    );
    return won;
  }
}

/** Runs `write` up to 3 times, 50 ms then 250 ms apart (a busy server answers the next one). */
async function withRetries<T>(write: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await write();
    } catch (err) {
      if (attempt >= 3) throw err;
      await new Promise((r) => setTimeout(r, attempt === 1 ? 50 : 250));
    }
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
