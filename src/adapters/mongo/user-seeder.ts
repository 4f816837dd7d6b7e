/**
 * The users collection as `seed-users` writes it (test and demo data): counts, a drop, and
 * unordered inserts where a bad document (a duplicate `_id` from an earlier run) costs only itself.
 */
import { MongoBulkWriteError, type Collection, type Document } from 'mongodb';
import type { UserSeeder } from '../../ports/stores.js';

export class MongoUserSeeder implements UserSeeder {
  readonly #users: Collection<Document>;

  constructor(users: Collection<Document>) {
    this.#users = users;
  }

  count(notMarked?: { field: string; value: unknown }): Promise<number> {
    return this.#users.countDocuments(notMarked === undefined ? {} : { [notMarked.field]: { $ne: notMarked.value } });
  }

  async drop(): Promise<void> {
    await this.#users.drop().catch((err: unknown) => {
      // Dropping a collection that does not exist is not an error here.
      if (!(err instanceof Error && /ns not found|NamespaceNotFound/i.test(err.message))) throw err;
    });
  }

  /** Which documents made it, by position; other errors (connection lost) are thrown. */
  async insert(docs: Document[]): Promise<{ ok: boolean[]; errors: string[] }> {
    const ok = docs.map(() => true);
    const errors: string[] = [];
    try {
      await this.#users.insertMany(docs, { ordered: false });
    } catch (err) {
      if (!(err instanceof MongoBulkWriteError)) throw err;
      const writeErrors = Array.isArray(err.writeErrors) ? err.writeErrors : [err.writeErrors];
      // No per-document errors means the whole batch failed for some other reason.
      if (writeErrors.length === 0) throw err;
      for (const we of writeErrors) {
        ok[we.index] = false;
        errors.push(we.errmsg ?? `code ${we.code}`);
      }
    }
    return { ok, errors };
  }
}
