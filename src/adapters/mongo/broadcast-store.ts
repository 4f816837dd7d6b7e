/**
 * Broadcasts in MongoDB, written so that FerretDB v1 (no atomic read-modify-write between
 * clients, a full scan for anything but `{_id}`) and MongoDB give the same guarantees:
 *
 * - `<prefix>broadcasts`: one document per broadcast (content, status, counters, checkpoint).
 *   The CLI inserts it; after that only the holder of the run lease writes it, so no two writers
 *   ever update it at once (FerretDB v1 rewrites the whole document on update: two concurrent
 *   writers lose one another's fields).
 * - `<prefix>broadcast_runs`, small documents keyed by `_id`:
 *   - `lease:<id>:<gen>`: who holds generation `gen` of the run. Taking a run is inserting the
 *     next generation: the unique `_id` decides between daemons (findAndModify is not atomic
 *     on FerretDB v1). The next generation may be taken only when the holder of the current one
 *     released it or is gone (InstanceRegistry.isAlive: stale heartbeat, or a dead local pid); a holder that finds `gen + 1` taken knows
 *     it was superseded and stops.
 *   - `control:<id>`: the operator's latest request (pause / resume / cancel), written only by
 *     the CLI, read by the lease holder before every batch and within long batches.
 *   - `batch:<id>:<hash>`: the ledger of confirmed batches (see core/broadcast-run.ts), with the
 *     batch's counts (and users per zone for a local-time or quiet-hours broadcast); before that,
 *     while some of a batch's users are held for a later wave, the same `_id` holds the keys
 *     earlier waves finished (`type: 'partial'`). Dropped when the broadcast ends.
 * The broadcasts collection is small (one document per broadcast), so listing it is cheap even
 * as a scan; the hot path reads only by `_id`.
 */
import { randomBytes } from 'node:crypto';
import type { Collection, Db } from 'mongodb';
import type {
  BatchCounts,
  BroadcastDoc,
  BroadcastRunStore,
  BroadcastStore,
  BroadcastUpdate,
  ControlAction,
  ControlRequest,
  DoneStatus,
  IsAlive,
  NewBroadcast,
  RunVerdict,
} from '../../ports/broadcasts.js';
import { systemClock, type Clock } from '../../ports/clock.js';

export type { BroadcastDoc, IsAlive, NewBroadcast } from '../../ports/broadcasts.js';
import { decodeBroadcast } from './broadcast-decode.js';

export interface LeaseDoc {
  _id: string;
  type: 'lease';
  broadcastId: string;
  gen: number;
  owner: string;
  at: Date;
  releasedAt?: Date;
}

export interface ControlDoc {
  _id: string;
  type: 'control';
  broadcastId: string;
  action: ControlAction;
  at: Date;
  /** Why (an automatic pause says which rate crossed which threshold); null: an operator's plain request. */
  reason?: string | null;
}

export interface LedgerDoc {
  _id: string;
  type: 'batch';
  broadcastId: string;
  counts: BatchCounts;
  at: Date;
}

/**
 * A batch of a local-time or quiet-hours broadcast with users still held: which keys earlier
 * waves finished, so the next wave counts them without claiming them again. Same `_id` as the
 * batch's {@link LedgerDoc}, which replaces it once the whole batch is done.
 */
export interface PartialLedgerDoc {
  _id: string;
  type: 'partial';
  broadcastId: string;
  /**
   * The finished keys by final status (keys hold dots and colons: not usable as field names;
   * FerretDB v1 stores no nested arrays, so not [key, status] pairs either).
   */
  done: Record<DoneStatus, string[]>;
  at: Date;
}

export type BroadcastRunDoc = LeaseDoc | ControlDoc | LedgerDoc | PartialLedgerDoc;

const DUPLICATE_KEY = 11000;
/** How far one `acquire` walks generations whose holders are gone before giving up this poll. */
const MAX_LEASE_STEPS = 16;

function isDuplicate(err: unknown): boolean {
  return (err as { code?: unknown }).code === DUPLICATE_KEY;
}

const leaseId = (id: string, gen: number): string => `lease:${id}:${gen}`;

const DONE_STATUSES: readonly DoneStatus[] = ['sent', 'failed', 'missed'];

function byStatus(done: ReadonlyMap<string, DoneStatus>): Record<DoneStatus, string[]> {
  const out: Record<DoneStatus, string[]> = { sent: [], failed: [], missed: [] };
  for (const [key, status] of done) out[status].push(key);
  return out;
}
const controlId = (id: string): string => `control:${id}`;
const ledgerId = (id: string, batch: string): string => `batch:${id}:${batch}`;

export function newBroadcastId(now: Date): string {
  const iso = now.toISOString(); // 2026-03-08T09:15:00.000Z
  return `${iso.slice(0, 10).replaceAll('-', '')}-${iso.slice(11, 19).replaceAll(':', '')}-${randomBytes(3).toString('hex')}`;
}

export class MongoBroadcastStore implements BroadcastStore {
  readonly broadcasts: Collection<BroadcastDoc>;
  readonly runs: Collection<BroadcastRunDoc>;
  /** Timestamps written (createdAt, lease and request times); default the system clock. */
  readonly #clock: Clock;

  constructor(db: Db, prefix: string, clock: Clock = systemClock) {
    this.#clock = clock;
    this.broadcasts = db.collection<BroadcastDoc>(`${prefix}broadcasts`);
    this.runs = db.collection<BroadcastRunDoc>(`${prefix}broadcast_runs`);
  }

  #now(): Date {
    return new Date(this.#clock.now());
  }

  async create(input: NewBroadcast): Promise<BroadcastDoc> {
    for (;;) {
      const now = this.#now();
      const doc: BroadcastDoc = {
        _id: newBroadcastId(now),
        subject: input.subject,
        text: input.text,
        ...(input.html === undefined ? {} : { html: input.html }),
        segment: input.segment,
        status: 'queued',
        ...(input.at === undefined ? {} : { at: input.at }),
        ...(input.localTime === undefined ? {} : { localTime: input.localTime }),
        createdAt: now,
        counters: { sent: 0, failed: 0, skipped: 0, suppressed: 0 },
        gen: 0,
        updatedAt: now,
      };
      try {
        await this.broadcasts.insertOne(doc);
        return doc;
      } catch (err) {
        if (!isDuplicate(err)) throw err;
      }
    }
  }

  /** Documents are decoded on the way in (null is not undefined): see broadcast-decode.ts. */
  async get(id: string): Promise<BroadcastDoc | undefined> {
    const raw = await this.broadcasts.findOne({ _id: id });
    return raw === null ? undefined : decodeBroadcast(raw);
  }

  /** Every broadcast, newest first. */
  async list(): Promise<BroadcastDoc[]> {
    const all = (await this.broadcasts.find({}).toArray()).map(decodeBroadcast);
    return all.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a._id < b._id ? 1 : -1));
  }

  /** Broadcasts that may need a daemon: queued, running, paused. Oldest first. */
  async open(): Promise<BroadcastDoc[]> {
    const docs = (await this.broadcasts.find({ status: { $in: ['queued', 'running', 'paused'] } }).toArray()).map(decodeBroadcast);
    return docs.sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
  }

  async control(id: string): Promise<ControlAction | undefined> {
    const doc = await this.runs.findOne({ _id: controlId(id) });
    return doc?.type === 'control' ? doc.action : undefined;
  }

  /** The latest request, with its reason (null or absent in the document: none given). */
  async controlRequest(id: string): Promise<ControlRequest | undefined> {
    const doc = await this.runs.findOne({ _id: controlId(id) });
    if (doc?.type !== 'control') return undefined;
    const reason = typeof doc.reason === 'string' && doc.reason !== '' ? doc.reason : undefined;
    return { action: doc.action, reason, at: doc.at };
  }

  /** Records the operator's request (the CLI is its only writer). */
  async requestControl(id: string, action: ControlAction, reason?: string): Promise<void> {
    const set: Omit<ControlDoc, '_id'> = { type: 'control', broadcastId: id, action, at: this.#now(), reason: reason ?? null };
    const write = () => this.runs.updateOne({ _id: controlId(id) }, { $set: set }, { upsert: true });
    try {
      await write();
    } catch (err) {
      // Two upserts of a new `_id` at once: one insert loses; the retry updates.
      if (!isDuplicate(err)) throw err;
      await write();
    }
  }

  /**
   * Tries to take the run of `doc` for `owner`; returns the generation won, or undefined when a
   * live holder has it (or another daemon won the race).
   */
  async acquire(doc: BroadcastDoc, owner: string, isAlive: IsAlive): Promise<number | undefined> {
    let gen = doc.gen;
    for (let step = 0; step < MAX_LEASE_STEPS; step++) {
      if (gen > 0) {
        const lease = await this.runs.findOne({ _id: leaseId(doc._id, gen) });
        if (lease?.type === 'lease' && lease.releasedAt === undefined && lease.owner !== owner && (await isAlive(lease.owner))) return undefined;
      }
      try {
        await this.runs.insertOne({ _id: leaseId(doc._id, gen + 1), type: 'lease', broadcastId: doc._id, gen: gen + 1, owner, at: this.#now() });
        return gen + 1;
      } catch (err) {
        if (!isDuplicate(err)) throw err;
        // Someone took gen + 1 (the broadcast document may not say so yet): look at that holder.
        gen++;
      }
    }
    return undefined;
  }

  /** The holder gives its generation up (ended, paused, or stopping): the next may start at once. */
  async releaseLease(id: string, gen: number): Promise<void> {
    await this.runs.updateOne({ _id: leaseId(id, gen) }, { $set: { releasedAt: this.#now() } });
  }

  async superseded(id: string, gen: number): Promise<boolean> {
    return (await this.runs.findOne({ _id: leaseId(id, gen + 1) }, { projection: { _id: 1 } })) !== null;
  }

  /** Writes fields of the broadcast document; only the lease holder calls this. */
  async update(id: string, set: BroadcastUpdate): Promise<void> {
    // ignoreUndefined: an unknown field (`counters.total` while counting) is left out rather
    // than stored as null. `nextAt: null` is written as null, which decodes as absent.
    await this.broadcasts.updateOne({ _id: id }, { $set: { ...set, updatedAt: this.#now() } as Partial<BroadcastDoc> }, { ignoreUndefined: true });
  }

  async confirmedBatch(id: string, batch: string): Promise<BatchCounts | undefined> {
    const doc = await this.runs.findOne({ _id: ledgerId(id, batch) });
    return doc?.type === 'batch' ? doc.counts : undefined;
  }

  async confirmBatch(id: string, batch: string, counts: BatchCounts): Promise<void> {
    // An upsert, not an insert: the batch may hold a partial record of earlier waves.
    await this.runs.updateOne({ _id: ledgerId(id, batch) }, { $set: { type: 'batch', broadcastId: id, counts, at: this.#now() }, $unset: { done: '' } }, { upsert: true });
  }

  async partialBatch(id: string, batch: string): Promise<ReadonlyMap<string, DoneStatus> | undefined> {
    const doc = await this.runs.findOne({ _id: ledgerId(id, batch), type: 'partial' });
    if (doc?.type !== 'partial') return undefined;
    const out = new Map<string, DoneStatus>();
    for (const status of DONE_STATUSES) for (const key of doc.done[status] ?? []) out.set(key, status);
    return out;
  }

  async recordPartial(id: string, batch: string, done: ReadonlyMap<string, DoneStatus>): Promise<void> {
    try {
      // Matches only a partial record (or none): a confirmed batch's record makes the upsert's
      // insert collide on `_id`, and the confirmed one stays.
      await this.runs.updateOne({ _id: ledgerId(id, batch), type: 'partial' }, { $set: { broadcastId: id, done: byStatus(done), at: this.#now() } }, { upsert: true });
    } catch (err) {
      if (!isDuplicate(err)) throw err;
    }
  }

  /** Drops the ledger of a finished broadcast (it only serves resumes). */
  async dropLedger(id: string): Promise<void> {
    await this.runs.deleteMany({ type: { $in: ['batch', 'partial'] }, broadcastId: id });
  }

  /** The storage of one run: broadcast `id`, lease generation `gen`, holder `owner`. */
  runStore(id: string, gen: number, owner: string): BroadcastRunStore {
    return {
      check: async (): Promise<RunVerdict> => {
        if (await this.superseded(id, gen)) return 'superseded';
        const action = await this.control(id);
        return action === 'pause' || action === 'cancel' ? action : 'continue';
      },
      confirmedBatch: (batch) => this.confirmedBatch(id, batch),
      confirmBatch: (batch, counts) => this.confirmBatch(id, batch, counts),
      partialBatch: (batch) => this.partialBatch(id, batch),
      recordPartial: (batch, done) => this.recordPartial(id, batch, done),
      publish: ({ counters, checkpoint, zones }) =>
        this.update(id, { status: 'running', owner, gen, counters, ...(checkpoint === undefined ? {} : { checkpoint }), ...(zones === undefined ? {} : { zones }) }),
    };
  }
}
