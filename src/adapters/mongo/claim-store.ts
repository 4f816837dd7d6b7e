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
import type { Collection } from 'mongodb';
import type { ClaimOptions, ClaimResult, ClaimStore } from '../../ports/index.js';
import type { MessageIndex, SentMessage } from '../../ports/feedback.js';
import { digestOfKey } from '../../core/feedback.js';
import type { DeliveryKind } from '../../core/types.js';
import { insertUnique } from './insert-unique.js';
import { systemClock, type Clock } from '../../ports/clock.js';
import type { InstanceDirectory } from '../../ports/stores.js';
import { z } from 'zod';
import { decodeDoc } from './decode.js';
import type { ClaimDoc, DeliveryDoc, DoneDoc, TakeoverDoc } from './store.js';

/**
 * The delivery records as this store reads them (the fields it uses). A malformed one is an
 * error naming the collection, the id and the field (decode.ts), never skipped: guessing who owns
 * a key could send a mail twice or never.
 */
const readDoc = z.discriminatedUnion('type', [
  z.object({ _id: z.string(), type: z.literal('claim'), owner: z.string(), gen: z.string(), v: z.literal(2).optional() }),
  z.object({ _id: z.string(), type: z.literal('done'), key: z.string(), status: z.enum(['sent', 'failed', 'missed']) }),
  z.object({ _id: z.string(), type: z.literal('takeover'), key: z.string(), owner: z.string(), gen: z.string().optional() }),
]);
type ReadDoc = z.output<typeof readDoc>;

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
  readonly #instances: InstanceDirectory;
  readonly stats = { claimed: 0, taken: 0, takenOver: 0, takeoverErrors: 0 };
  /** Whether any claim was written by a version without typed ids (asked once per process). */
  #legacyClaims: Promise<boolean> | undefined;

  readonly #clock: Clock;
  /** Set when any feedback input is configured: claimed messages are recorded there first. */
  readonly #index: Pick<MessageIndex, 'record'> | undefined;

  constructor(col: Collection<DeliveryDoc>, instances: InstanceDirectory, clock: Clock = systemClock, opts: { index?: Pick<MessageIndex, 'record'> | undefined } = {}) {
    this.#col = col;
    this.#instances = instances;
    this.#clock = clock;
    this.#index = opts.index;
  }

  async claim(keys: readonly string[], options: ClaimOptions = {}): Promise<ClaimResult> {
    if (keys.length === 0) return { claimed: [], taken: [] };
    const at = new Date(this.#clock.now());
    const owner = this.#instances.id;
    const finished = new Map<string, 'sent' | 'failed' | 'missed'>();
    const legacy = await this.#claimedUnderLegacyKey(keys, finished);
    if (legacy.size > 0) keys = keys.filter((k) => !legacy.has(k));
    // Into the message index before the claims exist, so before any of these can be sent: a
    // bounce that comes back seconds after the send still finds its delivery. One extra round
    // trip per batch; entries of keys another instance wins are the same data it writes itself.
    // If this write fails nothing is claimed yet, and the batch is tried again like any failed claim.
    if (this.#index !== undefined && options.recipients !== undefined) await this.#index.record(indexEntries(keys, options.recipients, at));
    const docs: ClaimDoc[] = keys.map((key) => ({ _id: key, type: 'claim', ...describeKey(key), owner, gen: randomUUID(), at, v: 2 }));
    const dupIdx = await insertUnique(this.#col, docs);
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
    const at = new Date(this.#clock.now());
    const docs: DoneDoc[] = outcomes.map((o) => ({ _id: `${o.key}#done`, type: 'done', key: o.key, status: o.status, at }));
    // A duplicate means an earlier attempt of this same write got through: already recorded.
    await insertUnique(this.#col, docs);
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
  async #claimedUnderLegacyKey(keys: readonly string[], finished: Map<string, 'sent' | 'failed' | 'missed'>): Promise<Set<string>> {
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
    const docs = await this.#read({ _id: { $in: [...olds, ...olds.map((k) => `${k}#done`)] } });
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
      if (s === 'sent' || s === 'failed' || s === 'missed') finished.set(key, s);
    }
    return found;
  }

  /**
   * Keys among `dups` whose claim was abandoned unfinished by a gone owner, and that we won.
   * Fills `finished` with the keys already done and their status.
   */
  async #takeOverAbandoned(dups: readonly string[], finished: Map<string, 'sent' | 'failed' | 'missed'>, adoptOwn: boolean): Promise<Set<string>> {
    const won = new Set<string>();
    if (dups.length === 0) return won;
    // Reads by set (`$in`) and writes by insert only, a fixed number of round trips per batch
    // rather than one or two per key. FerretDB v1 (SQLite) answers every read, update and delete
    // by `_id` with a scan of the whole collection, and an update of many documents costs far
    // more (measured under load: `updateMany` of 150 keys in 5,000 documents 17.9 s, one `$in`
    // read of 500 ids 1.0 s, `insertMany` of 150 documents 24 ms); only inserts use the unique
    // `_id` index. The earlier code did an update (a scan) per key taken over, so a broadcast
    // takeover after a crash cost hundreds of scans of a growing deliveries table.
    //
    // Who holds a key is therefore a chain, never rewritten: the claim (`gen` g0), then each
    // takeover record `<key>#<gen>` names the next holder and its own new `gen`. The holder is
    // the last link; a takeover inserts the next link, and the unique `_id` decides the race.
    const wanted = new Set<string>();
    for (const k of dups) wanted.add(k).add(`${k}#done`);
    const done = new Set<string>();
    const head = new Map<string, { owner: string; gen: string }>();
    for (const d of await this.#read({ _id: { $in: [...wanted] } })) {
      if (d.type === 'done') {
        done.add(d.key);
        finished.set(d.key, d.status);
      } else if (d.type === 'claim') head.set(d._id, { owner: d.owner, gen: d.gen });
    }
    for (const k of done) head.delete(k);
    // Follow the chains: one set read per link (one per earlier takeover of the same keys).
    for (let next = [...head].map(([k, h]) => `${k}#${h.gen}`); next.length > 0; ) {
      // A record without `gen` predates chains: the claim itself was updated then, so it is not a link.
      const links = (await this.#read({ _id: { $in: next } })).filter((d): d is Extract<ReadDoc, { type: 'takeover' }> & { gen: string } => d.type === 'takeover' && typeof d.gen === 'string');
      for (const l of links) head.set(l.key, { owner: l.owner, gen: l.gen });
      next = links.map((l) => `${l.key}#${l.gen}`);
    }
    const alive = new Map<string, Promise<boolean>>();
    const isAlive = (owner: string) => {
      let p = alive.get(owner);
      if (!p) alive.set(owner, (p = this.#instances.isAlive(owner)));
      return p;
    };
    const abandoned: Array<{ key: string; gen: string }> = [];
    for (const [key, h] of head) {
      if (!(adoptOwn && h.owner === this.#instances.id) && (await isAlive(h.owner))) continue;
      abandoned.push({ key, gen: h.gen });
    }
    if (abandoned.length === 0) return won;
    // One unordered bulk insert of the next links; a duplicate is a key another instance won.
    const at = new Date(this.#clock.now());
    const records: TakeoverDoc[] = abandoned.map((a) => ({ _id: `${a.key}#${a.gen}`, type: 'takeover', key: a.key, owner: this.#instances.id, gen: randomUUID(), at }));
    const lost = await insertUnique(this.#col, records);
    abandoned.forEach((a, i) => {
      if (!lost.has(i)) won.add(a.key);
    });
    return won;
  }

  /** Reads delivery records by `_id` and decodes them. */
  async #read(filter: { _id: { $in: string[] } }): Promise<ReadDoc[]> {
    return (await this.#col.find(filter).toArray()).map((d) => decodeDoc(readDoc, this.#col.collectionName, d));
  }
}

/** The message-index entries of the keys whose recipient the caller gave. */
function indexEntries(keys: readonly string[], recipients: NonNullable<ClaimOptions['recipients']>, at: Date): SentMessage[] {
  const out: SentMessage[] = [];
  for (const key of keys) {
    const r = recipients.get(key);
    if (r !== undefined) out.push({ digest: digestOfKey(key), key, email: r.email, userId: r.userId, broadcastId: r.broadcastId, at });
  }
  return out;
}
