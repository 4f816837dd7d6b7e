/**
 * Rebuilds the outcome events a crash lost. Analytics events are buffered and written in batches
 * (analytics/buffer.ts), so a SIGKILL loses those not yet written, while the delivery records
 * (`<key>#done`, written first) survive: they are the truth. At start, every delivery settled since
 * the last point known to have its events gets its missing `sent` / `failed` / `missed` event back,
 * marked as rebuilt, with the record's time.
 *
 * Bounded: only outcomes settled after the `events` state document's `checkedUntil` (less a margin
 * for other instances' buffers and clocks), and never further back than the catch-up lookback,
 * read through the `at` index in batches; each batch is one `_id` lookup of its events. Written at
 * start after a check, and at a clean stop after the buffer is flushed, so after a clean stop the
 * next start reads only the margin.
 *
 * Idempotent: an outcome event's `_id` is `<key>#<type>` (event-id.ts), so a rebuilt event and a
 * live instance's late write of the same event store one document. Events written before those
 * ids existed (random `_id`) are found by user and key (the `userId` index) before anything is
 * rebuilt, so the first start after an upgrade does not duplicate them.
 */
import { MongoBulkWriteError, type Collection } from 'mongodb';
import type { Logger } from 'pino';
import { z } from 'zod';
import { describeKey } from './claim-store.js';
import { writeErrorsOf } from './insert-unique.js';
import { cursorBatches } from './cursor-batches.js';
import { FINAL_OUTCOMES, outcomeEventId } from '../../analytics/event-id.js';
import { systemClock, type Clock } from '../../ports/clock.js';
import type { EventReconciler, ReconcileReport } from '../../ports/stores.js';
import { decodeDoc, MalformedDocumentError, zDate } from './decode.js';
import type { DeliveryDoc, DoneDoc, EventDoc, StateDoc } from './store.js';

const ID = 'events';
const DUPLICATE_KEY = 11000;

/**
 * What the check reads, decoded (decode.ts). The state document is one of ours: malformed, it is
 * an error (the start logs it and checks again next time). A malformed outcome record is skipped
 * with a warning naming it: rebuilding analytics is not worth stopping the others for it.
 */
const stateDoc = z.object({ _id: z.literal(ID), checkedUntil: zDate.optional() });
const doneDoc = z.object({ _id: z.string(), type: z.literal('done'), key: z.string(), status: z.enum(FINAL_OUTCOMES), at: zDate });
const legacyEvent = z.object({ key: z.string().optional(), type: z.enum(FINAL_OUTCOMES) });
/** Checked again behind `checkedUntil`: another instance's unflushed buffer, clock differences. */
export const RECHECK_MARGIN_MS = 10 * 60_000;
export const REBUILT_REASON = 'rebuilt from the delivery record: the event was lost (process killed before its analytics were written)';

export type { ReconcileReport };

export class MongoEventReconciler implements EventReconciler {
  readonly #deliveries: Collection<DeliveryDoc>;
  readonly #events: Collection<EventDoc>;
  readonly #state: Collection<StateDoc>;

  readonly #log: Pick<Logger, 'warn'> | undefined;
  readonly #clock: Clock;

  constructor(cols: { deliveries: Collection<DeliveryDoc>; events: Collection<EventDoc>; state: Collection<StateDoc> }, log?: Pick<Logger, 'warn'>, clock: Clock = systemClock) {
    this.#deliveries = cols.deliveries;
    this.#events = cols.events;
    this.#state = cols.state;
    this.#log = log;
    this.#clock = clock;
  }

  /** Rebuilds the missing events of deliveries settled in (checkedUntil - margin, now]; at most `lookbackMs` back. */
  async reconcile(opts: { now: number; lookbackMs: number; batchSize: number }): Promise<ReconcileReport> {
    const raw = await this.#state.findOne({ _id: ID });
    const state = raw === null ? undefined : decodeDoc(stateDoc, this.#state.collectionName, raw);
    const checked = state?.checkedUntil !== undefined ? state.checkedUntil.getTime() - RECHECK_MARGIN_MS : Number.NEGATIVE_INFINITY;
    const from = new Date(Math.max(checked, opts.now - opts.lookbackMs));
    const to = new Date(opts.now);
    const cursor = this.#deliveries.find({ type: 'done', at: { $gte: from, $lte: to } }, { projection: { _id: 1, type: 1, key: 1, status: 1, at: 1 } }).batchSize(opts.batchSize);
    const report: ReconcileReport = { from, to, checked: 0, rebuilt: 0 };
    for await (const batch of cursorBatches(cursor, opts.batchSize)) {
      const done = batch.flatMap((d) => this.#decodeDone(d));
      report.checked += done.length;
      report.rebuilt += await this.#rebuild(done);
    }
    await this.markChecked(to);
    return report;
  }

  /** Records that every outcome settled before `until` has its event (a clean stop after its flush). */
  async markChecked(until: Date): Promise<void> {
    await this.#state.updateOne({ _id: ID }, { $max: { checkedUntil: until }, $set: { updatedAt: new Date(this.#clock.now()) } }, { upsert: true });
  }

  /** The outcome record `d` decoded, or nothing (with a warning) when it is malformed. */
  #decodeDone(d: unknown): DoneDoc[] {
    try {
      return [decodeDoc(doneDoc, this.#deliveries.collectionName, d)];
    } catch (err) {
      if (!(err instanceof MalformedDocumentError)) throw err;
      this.#log?.warn({ err: err.message, collection: err.collection, id: err.docId, field: err.field }, 'malformed delivery record skipped by the event check');
      return [];
    }
  }

  async #rebuild(done: readonly DoneDoc[]): Promise<number> {
    const wanted = new Map<string, DoneDoc>();
    for (const d of done) wanted.set(outcomeEventId(d.key, d.status), d);
    if (wanted.size === 0) return 0;
    for (const e of await this.#events.find({ _id: { $in: [...wanted.keys()] } }, { projection: { _id: 1 } }).toArray()) wanted.delete(e._id);
    if (wanted.size === 0) return 0;
    // Events from before the key-derived ids: same key and type under a random `_id`.
    const missing = [...wanted.values()];
    const legacy = await this.#events
      .find(
        { userId: { $in: [...new Set(missing.map((d) => describeKey(d.key).userId))] }, key: { $in: missing.map((d) => d.key) }, type: { $in: [...FINAL_OUTCOMES] } },
        { projection: { key: 1, type: 1 } },
      )
      .toArray();
    for (const raw of legacy) {
      const e = decodeDoc(legacyEvent, this.#events.collectionName, raw);
      if (e.key !== undefined) wanted.delete(outcomeEventId(e.key, e.type));
    }
    if (wanted.size === 0) return 0;
    const docs: EventDoc[] = [...wanted].map(([id, d]) => ({ _id: id, type: d.status, at: d.at, key: d.key, ...describeKey(d.key), reason: REBUILT_REASON }));
    try {
      await this.#events.insertMany(docs, { ordered: false });
      return docs.length;
    } catch (err) {
      // A duplicate: a live instance wrote that event meanwhile; it is there either way.
      if (!(err instanceof MongoBulkWriteError)) throw err;
      const errors = writeErrorsOf(err);
      if (!errors.every((e) => e.code === DUPLICATE_KEY)) throw err;
      return docs.length - errors.length;
    }
  }
}
