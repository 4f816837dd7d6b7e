/**
 * One MongoDB connection and the collections mailwheel uses. The users collection is the
 * application's (read-only here, except `seed-users`); the others carry the configured prefix.
 */
import { MongoClient, type Collection, type Db, type Document } from 'mongodb';
import { databaseName } from '../../config/load.js';
import { scrubUri, uriHosts } from '../../config/urls.js';
import { UnavailableError } from '../../errors.js';
import type { Config } from '../../config/schema.js';
import type { StoredEvent } from '../../ports/index.js';
import type { SuppressionDoc } from './suppression-store.js';

/**
 * The deliveries collection holds three kinds of document, all written by insert only (a unique
 * `_id` insert is the one operation that is fast and race-free on every server we support;
 * FerretDB v1 updates cost milliseconds each and a bulk of 100 or more updates never returns):
 * - a claim, `_id` = the delivery key: who owns the send;
 * - an outcome, `_id` = `<key>#done`: the send finished (sent or failed for good);
 * - a takeover, `_id` = `<key>#<gen>`: the record that one process recovered a dead owner's claim
 *   (the next link of the key's chain of holders, see TakeoverDoc).
 */
export type DeliveryDoc = ClaimDoc | DoneDoc | TakeoverDoc;

export interface ClaimDoc {
  _id: string;
  type: 'claim';
  kind: 'scheduled' | 'broadcast';
  userId: string;
  /** Instance that owns the claim; liveness is read from the instances collection. */
  owner: string;
  /** Changes at every (re)claim, so a takeover races on a unique key for this generation. */
  gen: string;
  at: Date;
  /**
   * 2: the key holds the typed user id (`core/user-id.ts`). Absent on claims written before,
   * whose keys printed `_id: 1` as `1`; see `legacyKeyOf` in claim-store.ts.
   */
  v?: 2;
}

export interface DoneDoc {
  _id: string;
  type: 'done';
  key: string;
  /** `missed`: due while no instance was running, and older than the catch-up grace period. */
  status: 'sent' | 'failed' | 'missed';
  at: Date;
}

/**
 * The next holder of a claim whose holder was gone: `_id` = `<key>#<gen of the link before>`.
 * Claims are never updated (FerretDB v1 updates scan the collection): the holder of a key is the
 * last link of claim -> takeover -> takeover ... (see MongoClaimStore).
 */
export interface TakeoverDoc {
  _id: string;
  type: 'takeover';
  key: string;
  owner: string;
  /** This link's generation: the next takeover inserts `<key>#<gen>`. Absent in records written
   *  before chains (the claim itself was updated then), which end a chain. */
  gen?: string;
  at: Date;
}

/** An analytics event as stored; `_id` is made by the client (see AnalyticsBuffer). */
export type EventDoc = Omit<StoredEvent, 'id'> & { _id: string };

export interface StateDoc {
  _id: string;
  /** `scheduler`: the last epoch minute whose fires all have an outcome. */
  lastMinute?: number;
  /** `events`: delivery outcomes settled before this have their events (event-reconciler.ts). */
  checkedUntil?: Date;
  updatedAt: Date;
  /** The instance that last moved it. */
  instance?: string;
}

export interface InstanceDoc {
  _id: string;
  host: string;
  pid: number;
  startedAt: Date;
  heartbeatAt: Date;
}

export class MongoStore {
  readonly client: MongoClient;
  readonly db: Db;
  readonly #prefix: string;
  readonly #usersName: string;

  private constructor(client: MongoClient, db: Db, config: Config) {
    this.client = client;
    this.db = db;
    this.#prefix = config.mongodb.collectionPrefix;
    this.#usersName = config.users.collection;
  }

  /**
   * Connects, or throws an `UnavailableError` (exit 69) whose one line names the setting, the
   * host (never the credentials) and the cause, instead of the driver's stack.
   */
  static async connect(config: Config, opts: { serverSelectionTimeoutMs?: number } = {}): Promise<MongoStore> {
    const client = new MongoClient(config.mongodb.uri, {
      // Fail fast at start-up rather than hang for the driver's default 30 s.
      serverSelectionTimeoutMS: opts.serverSelectionTimeoutMs ?? config.mongodb.serverSelectionTimeoutMs,
      appName: 'mailwheel',
    });
    try {
      await client.connect();
    } catch (err) {
      await client.close().catch(() => undefined);
      throw new UnavailableError(`mongodb.uri (MONGODB_URI): cannot connect to ${uriHosts(config.mongodb.uri)}: ${mongoCause(err, config.mongodb.uri)}`, { cause: err });
    }
    return new MongoStore(client, client.db(databaseName(config.mongodb.uri)), config);
  }

  get users(): Collection<Document> {
    return this.db.collection(this.#usersName);
  }
  get deliveries(): Collection<DeliveryDoc> {
    return this.db.collection<DeliveryDoc>(`${this.#prefix}deliveries`);
  }
  get events(): Collection<EventDoc> {
    return this.db.collection<EventDoc>(`${this.#prefix}events`);
  }
  get instances(): Collection<InstanceDoc> {
    return this.db.collection<InstanceDoc>(`${this.#prefix}instances`);
  }
  get suppressions(): Collection<SuppressionDoc> {
    return this.db.collection<SuppressionDoc>(`${this.#prefix}suppressions`);
  }
  /** Small documents keyed by name; `scheduler` holds the catch-up checkpoint. */
  get state(): Collection<StateDoc> {
    return this.db.collection<StateDoc>(`${this.#prefix}state`);
  }

  /**
   * Indexes for queries outside the hot path (retention, CLI). Claims need none: the delivery key
   * is the `_id`, unique on every server and the only filter FerretDB v1 pushes down.
   */
  async ensureIndexes(): Promise<void> {
    // Retention deletes events and deliveries by age; the CLI reads a user's history.
    await this.events.createIndex({ at: 1 });
    await this.events.createIndex({ userId: 1, at: 1 });
    await this.deliveries.createIndex({ at: 1 });
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}

/** The driver's reason in one line, scrubbed of the URI's credentials. */
export function mongoCause(err: unknown, uri: string): string {
  const e = err as { message?: string; reason?: { servers?: Map<string, { error?: { message?: string } | null }> } };
  // A server-selection timeout wraps the real cause (refused, DNS, TLS, auth) per server.
  const inner = [...(e.reason?.servers?.values() ?? [])].map((s) => s.error?.message).find((m) => m !== undefined && m !== '');
  const text = inner ?? e.message ?? String(err);
  return scrubUri(uri, text.split('\n')[0] ?? text);
}
