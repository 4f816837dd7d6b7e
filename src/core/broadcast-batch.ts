/**
 * Preparing one batch of a broadcast run, before any of it is sent: the ledger lookup (a batch
 * confirmed by an earlier run is skipped whole), validation of each user, the suppression list,
 * and one bulk claim of the batch's delivery keys. Split out of `broadcast-run.ts` because it is
 * the run's only talk with storage before sending, and it runs ahead of the send loop (the next
 * batch is prepared while the current one is sent), so it keeps no state of the run: what it
 * found is returned as a {@link PreparedBatch}, counted into the run only when its turn comes.
 */
import { createHash } from 'node:crypto';
import type { BatchCounts, BroadcastRunStore } from '../ports/broadcasts.js';
import type { Clock } from '../ports/clock.js';
import type { ClaimStore, EventRecorder, RawUser } from '../ports/index.js';
import { broadcastKey } from './delivery-key.js';
import type { TemplateSet } from './template-set.js';
import type { Delivery } from './types.js';
import { checkRecipient, getField, idToString, type FieldMap } from './validate-user.js';

/** What preparing a batch needs: the run's identity and content, and the ports it reads. */
export interface BatchContext {
  broadcastId: string;
  /** The broadcast's compiled content: every delivery carries this one object. */
  content: TemplateSet;
  /** The instant the broadcast was due, ms (the `dueAt` of its deliveries). */
  dueAt: number;
  fields: FieldMap;
  claims: Pick<ClaimStore, 'claim'>;
  events: EventRecorder;
  isSuppressed(email: string): boolean;
  store: Pick<BroadcastRunStore, 'confirmedBatch'>;
  clock: Clock;
}

/** A batch read, looked up in the ledger, validated and claimed, waiting for its turn to send. */
export interface PreparedBatch {
  users: number;
  lastUserId: string | null;
  batchId: string;
  /** The ledger's counts when the batch was confirmed by an earlier run: nothing to send. */
  known?: BatchCounts;
  /** Users counted while preparing (skipped, suppressed, finished by an earlier run). */
  counts: BatchCounts;
  /** Claimed by this run, to send. */
  deliveries: Delivery[];
  /** Keys claimed by another live instance and not finished: held elsewhere. */
  heldElsewhere: number;
}

/** The ledger id of a batch: a hash of exactly which users it holds, in any order. */
export function batchIdOf(userIds: readonly string[]): string {
  return createHash('sha256')
    .update(JSON.stringify([...userIds].sort()))
    .digest('hex')
    .slice(0, 32);
}

export function zeroCounts(): BatchCounts {
  return { sent: 0, failed: 0, skipped: 0, suppressed: 0 };
}

/** Users with an outcome of any kind. */
export function handled(c: BatchCounts): number {
  return c.sent + c.failed + c.skipped + c.suppressed;
}

/**
 * Reads the ledger, validates and claims one batch. Counts nothing into the run's counters (the
 * run does that when the batch's turn comes), so progress never runs ahead of sending.
 */
export async function prepareBatch(ctx: BatchContext, users: RawUser[]): Promise<PreparedBatch> {
  const { fields, broadcastId, events, clock } = ctx;
  const ids = users.map((u) => idToString(getField(u, fields.id)) ?? '');
  const batchId = batchIdOf(ids);
  const base = { users: users.length, lastUserId: ids[ids.length - 1] ?? null, batchId };
  const counts = zeroCounts();
  const known = await ctx.store.confirmedBatch(batchId);
  if (known !== undefined) return { ...base, known, counts, deliveries: [], heldElsewhere: 0 };

  const byKey = new Map<string, Delivery>();
  for (const u of users) {
    const c = checkRecipient(u, fields);
    if (c.kind !== 'valid') {
      counts.skipped++;
      if (c.kind === 'invalid') await events.record({ type: 'invalid', at: new Date(clock.now()), kind: 'broadcast', userId: c.id, reason: c.reason });
      continue;
    }
    const { id, email, name } = c.recipient;
    const key = broadcastKey(broadcastId, id);
    if (ctx.isSuppressed(email)) {
      counts.suppressed++;
      await events.record({ type: 'suppressed', at: new Date(clock.now()), key, kind: 'broadcast', userId: id, reason: 'address is on the suppression list' });
      continue;
    }
    byKey.set(key, { key, kind: 'broadcast', userId: id, email, name, broadcastId, dueAt: ctx.dueAt, content: ctx.content });
  }

  // adoptOwn: under the run lease nothing else of this process sends these keys, so an
  // unfinished claim of ours is a leftover of an interrupted earlier attempt.
  const { claimed, taken, finished } = await ctx.claims.claim([...byKey.keys()], { adoptOwn: true, recipients: byKey });
  let heldElsewhere = 0;
  for (const key of taken) {
    const status = finished?.get(key);
    if (status !== undefined) {
      counts[status]++;
      continue;
    }
    counts.skipped++;
    heldElsewhere++;
    const d = byKey.get(key);
    await events.record({ type: 'skipped', at: new Date(clock.now()), key, kind: 'broadcast', userId: d?.userId ?? '', reason: 'claimed by another live instance' });
  }
  return { ...base, counts, deliveries: claimed.flatMap((k) => byKey.get(k) ?? []), heldElsewhere };
}
