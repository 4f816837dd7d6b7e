/**
 * One unordered `insertMany` in which a duplicate `_id` means "already stored": the one write that
 * is idempotent, race-free and fast on every server we support (FerretDB v1 pushes down nothing
 * but `_id`, and never answers a bulk of 100 or more updates).
 */
import { MongoBulkWriteError, type Collection, type Document, type OptionalUnlessRequiredId } from 'mongodb';

const DUPLICATE_KEY = 11000;

/** The per-document errors of an unordered bulk write (the driver gives one or an array). */
export function writeErrorsOf(err: MongoBulkWriteError): Array<{ index: number; code: number }> {
  const we = err.writeErrors;
  const list = Array.isArray(we) ? we : [we];
  return list.map((e) => ({ index: e.index, code: e.code }));
}

/** Inserts `docs`; returns the indexes (into `docs`) that were duplicates. Any other error is thrown. */
export async function insertUnique<T extends Document>(col: Collection<T>, docs: ReadonlyArray<OptionalUnlessRequiredId<T>>): Promise<Set<number>> {
  const dups = new Set<number>();
  if (docs.length === 0) return dups;
  try {
    await col.insertMany([...docs], { ordered: false });
  } catch (err) {
    if (!(err instanceof MongoBulkWriteError)) throw err;
    for (const e of writeErrorsOf(err)) {
      if (e.code !== DUPLICATE_KEY) throw err;
      dups.add(e.index);
    }
  }
  return dups;
}
