/**
 * The numbers of `/stats` (and of a stopped run's log), read from the components at request time.
 * Split out of the composition root, which only wires the parts this reads.
 */
import type { MongoClaimStore } from '../adapters/mongo/claim-store.js';
import type { InstanceRegistry } from '../adapters/mongo/instance-registry.js';
import type { SendQueue } from '../adapters/smtp/send-queue.js';
import type { AnalyticsBuffer } from '../analytics/buffer.js';
import type { CatchUp, MinuteLedger } from '../core/catch-up.js';
import type { Checkpoint } from '../core/checkpoint.js';
import type { Dispatcher } from '../core/dispatcher.js';
import type { JobRegistry } from '../core/job-registry.js';
import type { SuppressionList } from '../core/suppression-list.js';
import { minuteIso } from '../core/time.js';
import type { UserSync } from '../core/user-sync.js';
import type { BroadcastSupervisor } from '../core/broadcast-supervisor.js';
import type { Housekeeping } from './housekeeping.js';

/** The parts `/stats` reads (the App itself). */
export interface StatsParts {
  readonly instances: Pick<InstanceRegistry, 'id'>;
  readonly registry: JobRegistry;
  readonly queue: SendQueue;
  readonly dispatcher: Dispatcher;
  readonly claims: Pick<MongoClaimStore, 'stats'>;
  readonly suppressions: SuppressionList;
  readonly analytics: AnalyticsBuffer;
  readonly sync: UserSync;
  readonly catchUp: CatchUp;
  readonly ledger: MinuteLedger;
  readonly checkpoint: Checkpoint;
  readonly housekeeping: Housekeeping;
  readonly broadcasts: Pick<BroadcastSupervisor, 'running' | 'stats'>;
}

/** @param unsubscribe the unsubscribe endpoint's counters, when the HTTP server runs */
export function appStats(p: StatsParts, unsubscribe?: Record<string, number>): Record<string, unknown> {
  return {
    instance: p.instances.id,
    users: p.registry.userCount,
    jobs: p.registry.size,
    nextFire: minuteIso(p.registry.nextFireMinute()),
    queue: { waiting: p.queue.waiting, inFlight: p.queue.inFlight, backlog: p.dispatcher.backlog, ratePerSecond: p.queue.ratePerSecond },
    breaker: p.queue.breaker,
    sends: { ...p.queue.stats },
    claims: { ...p.claims.stats },
    suppressions: { size: p.suppressions.size, ...unsubscribe },
    analytics: { buffered: p.analytics.size, limit: p.analytics.limit, waiting: p.analytics.waiting, ...p.analytics.stats },
    lastSync: p.sync.lastReport ?? null,
    catchUp: { ...p.catchUp.stats, openDeliveries: p.ledger.open, checkpoint: minuteIso(p.checkpoint.saved) },
    housekeeping: p.housekeeping.stats(),
    broadcasts: { running: p.broadcasts.running(), ...p.broadcasts.stats },
  };
}
