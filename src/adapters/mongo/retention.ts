/**
 * Retention: deletes analytics events and delivery records older than the configured ages. Run by
 * the `retention` housekeeping cron (FerretDB v1 has no TTL indexes; on MongoDB the `at` indexes
 * from `MongoStore.ensureIndexes` make these deletes index range scans). One `deleteMany` per
 * collection: a single statement, not a bulk of single-document writes.
 *
 * Deleting a delivery record forgets that its key was sent. Keys carry the user's local date, and
 * nothing schedules a past date again except an operator's `run-minute` of a minute that old, so
 * `deliveriesDays` must stay well above the catch-up lookback (the schema enforces >= 2 days).
 */
import type { Collection } from 'mongodb';
import { DAY_MS } from '../../core/time.js';
import { systemClock } from '../../ports/clock.js';
import type { Retention, RetentionReport } from '../../ports/stores.js';
import type { DeliveryDoc, EventDoc } from './store.js';
import type { MessageIndexDoc } from './message-index.js';

export interface RetentionOptions {
  eventsDays: number;
  deliveriesDays: number;
}

export type { RetentionReport };

export class MongoRetention implements Retention {
  readonly #events: Collection<EventDoc>;
  readonly #deliveries: Collection<DeliveryDoc>;
  /** The message index (when a feedback input is configured): kept as long as the delivery records. */
  readonly #messages: Collection<MessageIndexDoc> | undefined;
  readonly #opts: RetentionOptions;

  constructor(cols: { events: Collection<EventDoc>; deliveries: Collection<DeliveryDoc>; messages?: Collection<MessageIndexDoc> | undefined }, opts: RetentionOptions) {
    this.#events = cols.events;
    this.#deliveries = cols.deliveries;
    this.#messages = cols.messages;
    this.#opts = opts;
  }

  async run(nowMs: number = systemClock.now()): Promise<RetentionReport> {
    const eventsBefore = new Date(nowMs - this.#opts.eventsDays * DAY_MS);
    const deliveriesBefore = new Date(nowMs - this.#opts.deliveriesDays * DAY_MS);
    const events = await this.#events.deleteMany({ at: { $lt: eventsBefore } });
    const deliveries = await this.#deliveries.deleteMany({ at: { $lt: deliveriesBefore } });
    // A report about a message older than this no longer finds it: ignored as unknown, as it would
    // be anyway once its delivery record is gone.
    const messages = this.#messages === undefined ? undefined : await this.#messages.deleteMany({ at: { $lt: deliveriesBefore } });
    return {
      ...(messages === undefined ? {} : { messagesDeleted: messages.deletedCount }),
      eventsDeleted: events.deletedCount,
      deliveriesDeleted: deliveries.deletedCount,
      eventsBefore: eventsBefore.toISOString(),
      deliveriesBefore: deliveriesBefore.toISOString(),
    };
  }
}
