/**
 * One streamed cursor read in batches of exactly `size` (the last may be shorter): the way every
 * large read here goes (users, broadcast recipients, suppressions), since FerretDB v1 pushes down
 * nothing but `_id` filters and a `skip`-paged read would rescan from the start for each page.
 * The cursor is closed however the consumer stops.
 */
import type { FindCursor } from 'mongodb';

export async function* cursorBatches<T, R = T>(cursor: FindCursor<T>, size: number, map: (doc: T) => R = (d) => d as unknown as R): AsyncGenerator<R[]> {
  try {
    let batch: R[] = [];
    for await (const doc of cursor) {
      batch.push(map(doc));
      if (batch.length >= size) {
        yield batch;
        batch = [];
      }
    }
    if (batch.length > 0) yield batch;
  } finally {
    await cursor.close();
  }
}
