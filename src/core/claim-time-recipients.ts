/**
 * Email and name of scheduled deliveries, read at claim time (issue 17): the job registry keeps
 * only what a fire needs until it is sent (id, zone, slots, weekdays), so each batch the
 * dispatcher is about to claim is completed here with one lookup of its users by id. The document
 * read is checked again as a sync would check it: a user deleted, deactivated, unsubscribed or made
 * invalid since the last sync is not sent, and says so in a `skipped` event naming why.
 */
import type { Delivery, EventRecorder, UserLookup } from '../ports/index.js';
import type { Clock } from '../ports/clock.js';
import { checkRecipient, getField, idToString, type FieldMap } from './validate-user.js';

/** A delivery that will not be sent, and why. */
export interface GoneDelivery {
  delivery: Delivery;
  reason: string;
}

export interface ResolvedBatch {
  /** The deliveries with their current email and name, to claim and send. */
  ready: Delivery[];
  /** The deliveries whose user is gone or no longer to be mailed. */
  gone: GoneDelivery[];
}

export class ClaimTimeRecipients {
  readonly #lookup: UserLookup;
  readonly #fields: FieldMap;

  constructor(lookup: UserLookup, fields: FieldMap) {
    this.#lookup = lookup;
    this.#fields = fields;
  }

  /** Reads the batch's users once and fills in each delivery's email and name. Reads only. */
  async resolve(batch: readonly Delivery[]): Promise<ResolvedBatch> {
    const ids = [...new Set(batch.map((d) => d.userId))];
    const docs = ids.length === 0 ? [] : await this.#lookup.byIds(ids);
    const byId = new Map<string, (typeof docs)[number]>();
    for (const doc of docs) {
      const id = idToString(getField(doc, this.#fields.id));
      if (id !== undefined) byId.set(id, doc);
    }
    const ready: Delivery[] = [];
    const gone: GoneDelivery[] = [];
    for (const d of batch) {
      const doc = byId.get(d.userId);
      if (doc === undefined) {
        gone.push({ delivery: d, reason: 'user deleted since the last sync' });
        continue;
      }
      const r = checkRecipient(doc, this.#fields);
      if (r.kind === 'valid') ready.push({ ...d, email: r.recipient.email, name: r.recipient.name });
      else if (r.kind === 'inactive') gone.push({ delivery: d, reason: 'user deactivated or unsubscribed since the last sync' });
      else gone.push({ delivery: d, reason: `user no longer valid since the last sync: ${r.reason}` });
    }
    return { ready, gone };
  }

  /**
   * {@link resolve} for the send path: each gone delivery is recorded as one `skipped` event with
   * its reason (it is neither claimed nor sent, so nothing else about it changes).
   */
  async resolveAndRecord(batch: readonly Delivery[], events: EventRecorder, clock: Clock): Promise<{ ready: Delivery[]; gone: number }> {
    const { ready, gone } = await this.resolve(batch);
    for (const { delivery: d, reason } of gone) {
      await events.record({ type: 'skipped', at: new Date(clock.now()), key: d.key, kind: d.kind, userId: d.userId, reason });
    }
    return { ready, gone: gone.length };
  }
}
