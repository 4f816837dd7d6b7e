/**
 * The one factory of stores: connects to MongoDB once and builds every store the daemon and the
 * CLI use, typed as their ports. Nothing outside `app/` constructs a Mongo adapter; the CLI
 * imports only this module and the ports (the lint rule in eslint.config.js checks it).
 */
import type { Logger } from 'pino';
import pino from 'pino';
import { MongoBroadcastStore } from '../adapters/mongo/broadcast-store.js';
import { MongoCheckpointStore } from '../adapters/mongo/checkpoint-store.js';
import { MongoClaimStore } from '../adapters/mongo/claim-store.js';
import { claimedKeys } from '../adapters/mongo/claimed-keys.js';
import { MongoEventReconciler } from '../adapters/mongo/event-reconciler.js';
import { MongoEventSink } from '../adapters/mongo/event-sink.js';
import { feedbackCollections, MongoFeedbackStore } from '../adapters/mongo/feedback-store.js';
import { messageIndexCollection, MongoMessageIndex, type MessageIndexDoc } from '../adapters/mongo/message-index.js';
import { InstanceRegistry } from '../adapters/mongo/instance-registry.js';
import { MongoReplayGuard } from '../adapters/mongo/replay-guard.js';
import { MongoRecipientSource } from '../adapters/mongo/recipient-source.js';
import { MongoPartitionMarks } from '../adapters/mongo/partition-marks.js';
import { MongoRetention } from '../adapters/mongo/retention.js';
import { MongoSentCounter } from '../adapters/mongo/sent-counter.js';
import { MongoStore } from '../adapters/mongo/store.js';
import { MongoSuppressionStore } from '../adapters/mongo/suppression-store.js';
import { MongoUserSeeder } from '../adapters/mongo/user-seeder.js';
import { MongoUserSource } from '../adapters/mongo/user-source.js';
import type { Config } from '../config/schema.js';
import type { BroadcastStore, RecipientSource } from '../ports/broadcasts.js';
import type { PartitionMarks } from '../ports/cluster.js';
import type { FeedbackCounts, MessageIndex, ReplayGuard } from '../ports/feedback.js';
import type { FeedbackStore } from '../ports/feedback-store.js';
import type { Collection } from 'mongodb';
import { feedbackInputsConfigured, webhooksConfigured } from './feedback-inputs.js';
import { systemClock, type CheckpointStore, type ClaimStore, type Clock, type EventSink, type SuppressionAdmin, type SuppressionStore, type UserSource } from '../ports/index.js';
import type { ClaimedKeys, EventReconciler, InstanceRegistration, Retention, SentCounter, UserSeeder } from '../ports/stores.js';

export interface StoresOptions {
  /** How long to wait for a reachable server (default `mongodb.serverSelectionTimeoutMs`). */
  serverSelectionTimeoutMs?: number;
  /** For the heartbeat's and the event check's warnings (default: silent). */
  log?: Logger;
  clock?: Clock;
}

/** Every store, as its port. Open with {@link openStores}; `close()` ends the connection. */
export interface Stores {
  readonly users: UserSource;
  readonly recipients: RecipientSource;
  readonly claims: ClaimStore;
  readonly claimed: ClaimedKeys;
  readonly suppressions: SuppressionStore & SuppressionAdmin;
  readonly checkpoint: CheckpointStore;
  /** Per partition, the last minute whose fires all have an outcome (partitioned mode). */
  readonly partitionMarks: PartitionMarks;
  readonly events: EventSink;
  readonly broadcasts: BroadcastStore;
  /** This process's entry in the instance directory (`start()` only for a sender). */
  readonly instances: InstanceRegistration;
  readonly eventCheck: EventReconciler;
  /** The sends recorded in the last minute / hour / day: what a start restores of the rate windows. */
  readonly sent: SentCounter;
  readonly retention: Retention;
  readonly seeder: UserSeeder;
  /** Bounces and complaints counted per broadcast and per UTC day (read side; the feedback sink writes them). */
  readonly feedbackCounts: FeedbackCounts;
  /** What each claimed message was, by digest: only when a feedback input is configured. */
  readonly messageIndex: MessageIndex | undefined;
  /** The FeedbackSink's records and counts (`/metrics`, the daily summary and `broadcast status` read the counts). */
  readonly feedback: FeedbackStore;
  /** Notifications already accepted by a webhook (`<prefix>feedback_seen`); set when a webhook is configured. */
  readonly replay: ReplayGuard | undefined;
  /** The database name (for messages such as `db.users holds 3 documents`). */
  readonly databaseName: string;
  /** Throws when the server does not answer a ping. */
  ping(): Promise<void>;
  /** Documents in the users collection (a scan on FerretDB v1). */
  countUsers(opts?: { maxTimeMs?: number }): Promise<number>;
  /** Whether the users collection holds any document (one read). */
  hasUsers(): Promise<boolean>;
  /** Indexes for the queries outside the hot path (retention, CLI). */
  ensureIndexes(): Promise<void>;
  close(): Promise<void>;
}

/** The Mongo implementation: concrete types for the daemon's wiring, the ports for everyone else. */
export class MongoStores implements Stores {
  readonly users: MongoUserSource;
  readonly recipients: MongoRecipientSource;
  readonly claims: MongoClaimStore;
  readonly claimed: ClaimedKeys;
  readonly suppressions: MongoSuppressionStore;
  readonly checkpoint: MongoCheckpointStore;
  readonly partitionMarks: MongoPartitionMarks;
  readonly events: MongoEventSink;
  readonly broadcasts: MongoBroadcastStore;
  readonly instances: InstanceRegistry;
  readonly eventCheck: MongoEventReconciler;
  readonly sent: MongoSentCounter;
  readonly retention: MongoRetention;
  readonly seeder: MongoUserSeeder;
  readonly feedbackCounts: FeedbackCounts;
  readonly messageIndex: MongoMessageIndex | undefined;
  readonly feedback: MongoFeedbackStore;
  readonly replay: ReplayGuard | undefined;
  readonly #mongo: MongoStore;
  readonly #messages: Collection<MessageIndexDoc> | undefined;

  constructor(mongo: MongoStore, config: Config, opts: StoresOptions = {}) {
    const log = opts.log ?? pino({ enabled: false });
    const clock = opts.clock ?? systemClock;
    this.#mongo = mongo;
    this.instances = new InstanceRegistry(mongo.instances, config.send.claimStaleMs, log, clock);
    this.users = new MongoUserSource(mongo.users, config);
    this.recipients = new MongoRecipientSource(mongo.users, config.users.fields);
    const prefix = config.mongodb.collectionPrefix;
    // Kept only when a report can come back to match against it (one insert per claim batch).
    this.#messages = feedbackInputsConfigured(config) ? messageIndexCollection(mongo.db, prefix) : undefined;
    this.messageIndex = this.#messages === undefined ? undefined : new MongoMessageIndex(this.#messages);
    this.feedback = new MongoFeedbackStore(feedbackCollections(mongo.db, prefix), clock);
    this.claims = new MongoClaimStore(mongo.deliveries, this.instances, clock, { index: this.messageIndex });
    this.replay = webhooksConfigured(config) ? new MongoReplayGuard(mongo.db.collection(`${prefix}feedback_seen`), clock) : undefined;
    this.claimed = { claimedKeys: (keys) => claimedKeys(mongo.deliveries, keys) };
    this.suppressions = new MongoSuppressionStore(mongo.suppressions, { batchSize: config.mongodb.batchSize, clock });
    this.checkpoint = new MongoCheckpointStore(mongo.state, this.instances.id, clock);
    this.partitionMarks = new MongoPartitionMarks(mongo.state, this.instances.id, clock);
    this.events = new MongoEventSink(mongo.events);
    this.broadcasts = new MongoBroadcastStore(mongo.db, config.mongodb.collectionPrefix, clock);
    this.eventCheck = new MongoEventReconciler({ deliveries: mongo.deliveries, events: mongo.events, state: mongo.state }, log, clock);
    this.sent = new MongoSentCounter(mongo.deliveries, { batchSize: config.mongodb.batchSize });
    this.retention = new MongoRetention({ events: mongo.events, deliveries: mongo.deliveries, messages: this.#messages }, config.retention);
    this.seeder = new MongoUserSeeder(mongo.users);
    // The sink's store is also the read side (`broadcast status`, /metrics, the daily summary).
    this.feedbackCounts = this.feedback;
  }

  get databaseName(): string {
    return this.#mongo.db.databaseName;
  }

  async ping(): Promise<void> {
    await this.#mongo.db.command({ ping: 1 });
  }

  countUsers(opts: { maxTimeMs?: number } = {}): Promise<number> {
    return this.#mongo.users.countDocuments({}, opts.maxTimeMs === undefined ? {} : { maxTimeMS: opts.maxTimeMs });
  }

  async hasUsers(): Promise<boolean> {
    return (await this.#mongo.users.findOne({}, { projection: { _id: 1 } })) !== null;
  }

  async ensureIndexes(): Promise<void> {
    await this.#mongo.ensureIndexes();
    // Retention deletes index entries by age, like the delivery records.
    await this.#messages?.createIndex({ at: 1 });
  }

  close(): Promise<void> {
    return this.#mongo.close();
  }
}

/**
 * Connects once (or throws an `UnavailableError`, exit 69, naming the setting and the host) and
 * opens every store. For the daemon (`App`), which wires the concrete stores.
 */
export async function openMongoStores(config: Config, opts: StoresOptions = {}): Promise<MongoStores> {
  const mongo = await MongoStore.connect(config, opts.serverSelectionTimeoutMs === undefined ? {} : { serverSelectionTimeoutMs: opts.serverSelectionTimeoutMs });
  return new MongoStores(mongo, config, opts);
}

/** {@link openMongoStores}, typed as the ports: what the CLI uses. */
export function openStores(config: Config, opts: StoresOptions = {}): Promise<Stores> {
  return openMongoStores(config, opts);
}

/** Runs `fn` with the stores open, and closes them however it ends. */
export async function withStores<T>(config: Config, fn: (stores: Stores) => Promise<T>, opts: StoresOptions = {}): Promise<T> {
  const stores = await openStores(config, opts);
  try {
    return await fn(stores);
  } finally {
    await stores.close().catch(() => undefined);
  }
}
