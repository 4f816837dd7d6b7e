/** Writes analytics events in one unordered `insertMany`; a retried batch never duplicates. */
import { MongoBulkWriteError, type Collection } from 'mongodb';
import type { EventDoc } from './store.js';
import { writeErrorsOf } from './insert-unique.js';
import type { EventSink, StoredEvent } from '../../ports/index.js';

const DUPLICATE_KEY = 11000;

export class MongoEventSink implements EventSink {
  readonly #events: Collection<EventDoc>;
  constructor(events: Collection<EventDoc>) {
    this.#events = events;
  }

  async write(events: readonly StoredEvent[]): Promise<void> {
    const docs = events.map(({ id, ...rest }) => ({ _id: id, ...dropUndefined(rest) }));
    try {
      await this.#events.insertMany(docs, { ordered: false });
    } catch (err) {
      // An earlier attempt may have written part of this batch before failing; those come back as
      // duplicate keys, which means "already stored" here. Anything else is a real failure.
      if (err instanceof MongoBulkWriteError && allDuplicates(err)) return;
      throw err;
    }
  }
}

function allDuplicates(err: MongoBulkWriteError): boolean {
  const list = writeErrorsOf(err);
  return list.length > 0 && list.every((e) => e.code === DUPLICATE_KEY);
}

function dropUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
