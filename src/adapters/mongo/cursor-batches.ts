/**
 * One streamed cursor read in batches of exactly `size` (the last may be shorter): the way every
 * large read here goes (users, broadcast recipients, suppressions), since FerretDB v1 pushes down
 * nothing but `_id` filters and a `skip`-paged read would rescan from the start for each page.
 *
 * The next batch is read while the consumer works on the current one, so the server prepares it
 * in parallel instead of waiting for the consumer to ask (a full user sync spent about a third of
 * its time with the server idle: `npm run bench sync`). At most one batch is read ahead. The
 * cursor is closed however the consumer stops.
 */
import type { FindCursor } from 'mongodb';

export async function* cursorBatches<T, R = T>(cursor: FindCursor<T>, size: number, map: (doc: T) => R = (d) => d as unknown as R): AsyncGenerator<R[]> {
  const read = async (): Promise<R[]> => {
    const batch: R[] = [];
    while (batch.length < size) {
      const doc = await cursor.next();
      if (doc === null) break;
      batch.push(map(doc));
    }
    return batch;
  };
  /** The batch being read; undefined once the last one was handed out. */
  let ahead: Promise<R[]> | undefined = read();
  try {
    while (ahead !== undefined) {
      const batch: R[] = await ahead;
      ahead = undefined;
      if (batch.length === 0) return;
      if (batch.length === size) {
        ahead = read();
        // Marked handled here; a failed read still throws when it is awaited above.
        ahead.catch(() => undefined);
      }
      yield batch;
    }
  } finally {
    await ahead?.catch(() => undefined);
    await cursor.close();
  }
}
