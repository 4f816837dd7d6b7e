/**
 * Preparing one batch of a broadcast run, before any of it is sent: the ledger lookup (a batch
 * confirmed by an earlier run is skipped whole), validation of each user, the suppression list,
 * and one bulk claim of the batch's delivery keys. Split out of `broadcast-run.ts` because it is
 * the run's only talk with storage before sending, and it runs ahead of the send loop (the next
 * batch is prepared while the current one is sent), so it keeps no state of the run: what it
 * found is returned as a {@link PreparedBatch}, counted into the run only when its turn comes.
 *
 * A local-time or quiet-hours broadcast (`send-window.ts`) also gives each valid recipient the
 * instant from which it may be sent: one later than now is HELD (not claimed, counted per zone as
 * waiting; the batch is then not confirmed, so the run at that instant looks at it again), and one
 * that quiet hours would hold beyond the limit is recorded as `missed` through its claim (once,
 * whatever the runs). The `invalid` and `suppressed` events of such a batch are written only by
 * the run in which nothing of it is held any more (the one that confirms it), so a batch looked
 * at in every wave does not repeat them.
 *
 * Such a batch is looked at again by every wave until its last user is served, so the run records
 * which of its keys are finished (`recordPartial`, once their outcomes are written) and the next
 * wave counts those from that record instead of claiming them again: a wave costs the read of the
 * segment plus claims for the users due in it, not for everyone served before (measured: without
 * it the runs of 5,000 users in 12 zones grew from 1.2 s to 16.6 s each; with it, 1.2-1.5 s). The claims stay the
 * authority: a key missing from the record is claimed and found finished as before.
 */
import { createHash } from 'node:crypto';
import type { BatchCounts, BroadcastRunStore, DoneStatus } from '../ports/broadcasts.js';
import type { Clock } from '../ports/clock.js';
import type { ClaimStore, EventRecorder, OutcomeEvent, RawUser } from '../ports/index.js';
import { broadcastKey } from './delivery-key.js';
import { needsZone, type SendWindow } from './send-window.js';
import type { TemplateSet } from './template-set.js';
import type { Delivery } from './types.js';
import { checkRecipient, getField, idToString, type FieldMap } from './validate-user.js';

/** What preparing a batch needs: the run's identity and content, and the ports it reads. */
export interface BatchContext {
  broadcastId: string;
  /** The broadcast's compiled content: every delivery carries this one object. */
  content: TemplateSet;
  /** The instant the broadcast was due, ms (the `dueAt` of its deliveries without a send window). */
  dueAt: number;
  /** Local time and quiet hours: each recipient's instant (absent: everyone now). */
  window?: SendWindow | undefined;
  fields: FieldMap;
  claims: Pick<ClaimStore, 'claim' | 'complete' | 'release'>;
  events: EventRecorder;
  isSuppressed(email: string): boolean;
  store: Pick<BroadcastRunStore, 'confirmedBatch' | 'partialBatch'>;
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
  /** Valid recipients whose instant is still ahead: not claimed, waiting. */
  held: number;
  /** The earliest instant of the held ones, ms. */
  nextAt?: number | undefined;
  /** Per zone (local time, quiet hours): recipients, those with an outcome, and the zone's instant. */
  zones?: Map<string, ZoneTally> | undefined;
  /** The zone of each claimed delivery (with `zones`), to count its outcome in its zone. */
  zoneOf?: Map<string, string> | undefined;
  /**
   * With a send window: the batch's keys known finished (by earlier waves, or found so while
   * claiming), to which the run adds its outcomes; recorded for the next wave when the batch
   * cannot be confirmed yet. `doneBefore`: how many the ledger already had.
   */
  done?: Map<string, DoneStatus> | undefined;
  doneBefore?: number | undefined;
}

/** One zone's share of a batch. */
export interface ZoneTally {
  users: number;
  done: number;
  /** The zone's instant (ms), when the batch computed it. */
  at?: number | undefined;
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
  return c.sent + c.failed + c.skipped + c.suppressed + (c.missed ?? 0);
}

/** The zone a recipient's local time is read in: the mapped field, UTC when absent (as scheduled mail). */
function zoneOf(u: RawUser, fields: FieldMap): unknown {
  const z = getField(u, fields.timezone);
  return z === undefined || z === null ? 'UTC' : z;
}

/**
 * Reads the ledger, validates and claims one batch. Counts nothing into the run's counters (the
 * run does that when the batch's turn comes), so progress never runs ahead of sending.
 */
export async function prepareBatch(ctx: BatchContext, users: RawUser[]): Promise<PreparedBatch> {
  const { fields, broadcastId, events, clock } = ctx;
  const ids = users.map((u) => idToString(getField(u, fields.id)) ?? '');
  const batchId = batchIdOf(ids);
  const base = { users: users.length, lastUserId: ids[ids.length - 1] ?? null, batchId, held: 0 };
  const counts = zeroCounts();
  const known = await ctx.store.confirmedBatch(batchId);
  if (known !== undefined) return { ...base, known, counts, deliveries: [], heldElsewhere: 0 };

  const now = clock.now();
  const window = ctx.window !== undefined && needsZone(ctx.window.rule) ? ctx.window : undefined;
  const zones = window === undefined ? undefined : new Map<string, ZoneTally>();
  const earlier = window === undefined ? undefined : await ctx.store.partialBatch(batchId);
  const done = window === undefined ? undefined : new Map<string, DoneStatus>();
  const zoneByKey = new Map<string, string>();
  const tally = (zone: string, at: number | undefined, done: number): void => {
    if (zones === undefined) return;
    const t = zones.get(zone) ?? { users: 0, done: 0 };
    t.users++;
    t.done += done;
    if (at !== undefined) t.at = at;
    zones.set(zone, t);
  };
  // Written now for a plain batch; for a batch with held users, only by the run that confirms it.
  const deferred: OutcomeEvent[] = [];
  const missed: Array<{ key: string; userId: string; zone: string; reason: string }> = [];
  let held = 0;
  let nextAt: number | undefined;
  /** Keys held now that an earlier run may have served: key -> the instant they are held until. */
  const probe = new Map<string, number>();
  const byKey = new Map<string, Delivery>();
  for (const u of users) {
    const c = checkRecipient(u, fields);
    if (c.kind !== 'valid') {
      counts.skipped++;
      if (c.kind === 'invalid') deferred.push({ type: 'invalid', at: new Date(now), kind: 'broadcast', userId: c.id, reason: c.reason });
      continue;
    }
    const { id, email, name } = c.recipient;
    const key = broadcastKey(broadcastId, id);
    let dueAt = ctx.dueAt;
    if (window !== undefined) {
      const zone = zoneOf(u, fields);
      const when = typeof zone === 'string' ? window.at(zone, now) : new RangeError('not a string');
      if (typeof zone !== 'string' || when instanceof Error) {
        counts.skipped++;
        deferred.push({ type: 'invalid', at: new Date(now), kind: 'broadcast', userId: id, reason: `${fields.timezone}: unknown IANA timezone ${JSON.stringify(zone)}; its local time cannot be told` });
        continue;
      }
      const before = earlier?.get(key);
      if (before !== undefined) {
        // Finished by an earlier wave (its outcome written): counted, not claimed again.
        counts[before] = (counts[before] ?? 0) + 1;
        done?.set(key, before);
        tally(zone, when.kind === 'at' ? when.at : undefined, 1);
        continue;
      }
      if (when.kind === 'missed') {
        missed.push({ key, userId: id, zone, reason: when.reason });
        continue;
      }
      if (when.at > now && when.first > now) {
        held++;
        nextAt = Math.min(nextAt ?? Infinity, when.at);
        tally(zone, when.at, 0);
        continue;
      }
      // Held now, but eligible before (a window opened since): an earlier run may have sent it,
      // which only its claim knows. Claimed with the rest; if it was not done, it goes back.
      if (when.at > now) probe.set(key, when.at);
      // The recipient's own instant: its wave in its zone, or the end of its quiet hours.
      dueAt = when.at;
      zoneByKey.set(key, zone);
      tally(zone, when.at, 0);
    }
    if (ctx.isSuppressed(email)) {
      counts.suppressed++;
      const z = zoneByKey.get(key);
      if (z !== undefined) (zones?.get(z) as ZoneTally).done++;
      deferred.push({ type: 'suppressed', at: new Date(now), key, kind: 'broadcast', userId: id, reason: 'address is on the suppression list' });
      continue;
    }
    byKey.set(key, { key, kind: 'broadcast', userId: id, email, name, broadcastId, dueAt, content: ctx.content });
  }
  if (held === 0 && probe.size === 0) for (const e of deferred) await events.record(e);
  let heldElsewhere = missed.length > 0 ? await recordMissed(ctx, missed, counts, tally, done) : 0;

  // adoptOwn: under the run lease nothing else of this process sends these keys, so an
  // unfinished claim of ours is a leftover of an interrupted earlier attempt.
  const { claimed, taken, finished } = await ctx.claims.claim([...byKey.keys()], { adoptOwn: true, recipients: byKey });
  for (const key of taken) {
    const status = finished?.get(key);
    if (status !== undefined) {
      counts[status] = (counts[status] ?? 0) + 1;
      done?.set(key, status);
      const z = zoneByKey.get(key);
      if (z !== undefined) (zones?.get(z) as ZoneTally).done++;
      continue;
    }
    counts.skipped++;
    heldElsewhere++;
    const d = byKey.get(key);
    await events.record({ type: 'skipped', at: new Date(now), key, kind: 'broadcast', userId: d?.userId ?? '', reason: 'claimed by another live instance' });
  }
  // Probed keys we won were not served: released, and held like the others.
  const unserved = claimed.filter((k) => probe.has(k));
  if (unserved.length > 0) {
    await ctx.claims.release(unserved);
    for (const k of unserved) nextAt = Math.min(nextAt ?? Infinity, probe.get(k) ?? Infinity);
    held += unserved.length;
  }
  const deliveries = claimed.flatMap((k) => (probe.has(k) ? [] : (byKey.get(k) ?? [])));
  return { ...base, counts, deliveries, heldElsewhere, held, nextAt, zones, zoneOf: zones === undefined ? undefined : zoneByKey, done, doneBefore: earlier?.size ?? 0 };
}

/**
 * Records recipients that quiet hours would hold beyond the limit, once across runs and
 * instances: each key is claimed like a send and completed `missed` (as catch-up does); a key
 * already taken was recorded (or sent) before, and its status is counted. Returns how many are
 * claimed by another live instance and unfinished (held elsewhere, looked at again later).
 */
async function recordMissed(
  ctx: BatchContext,
  missed: ReadonlyArray<{ key: string; userId: string; zone: string; reason: string }>,
  counts: BatchCounts,
  tally: (zone: string, at: number | undefined, done: number) => void,
  done: Map<string, DoneStatus> | undefined,
): Promise<number> {
  const { claimed, finished } = await ctx.claims.claim(missed.map((m) => m.key), { adoptOwn: true });
  const won = new Set(claimed);
  let elsewhere = 0;
  for (const m of missed) {
    if (won.has(m.key)) {
      tally(m.zone, undefined, 1);
      done?.set(m.key, 'missed');
      await ctx.events.record({ type: 'missed', at: new Date(ctx.clock.now()), key: m.key, kind: 'broadcast', userId: m.userId, reason: m.reason });
      counts.missed = (counts.missed ?? 0) + 1;
      continue;
    }
    const status = finished?.get(m.key);
    if (status === undefined) {
      // Another live instance holds it unfinished: it decides; looked at again later.
      tally(m.zone, undefined, 0);
      counts.skipped++;
      elsewhere++;
      continue;
    }
    tally(m.zone, undefined, 1);
    counts[status] = (counts[status] ?? 0) + 1;
    done?.set(m.key, status);
  }
  if (claimed.length > 0) await ctx.claims.complete(claimed.map((key) => ({ key, status: 'missed' as const })));
  return elsewhere;
}

/**
 * Quiet hours looked at again when a prepared batch's turn comes: it was prepared while the one
 * before was sent, so a window may have opened meanwhile. Deliveries whose zone is now inside it
 * are taken out of the batch (their claims go back) and counted as held, so the batch is not
 * confirmed and the run waits for them. Within one batch's own sending time the check is not
 * repeated (the README states that bound).
 */
export async function recheckQuiet(batch: PreparedBatch, window: SendWindow | undefined, now: number, claims: Pick<ClaimStore, 'release'>): Promise<void> {
  if (window?.rule.quiet === undefined || batch.zoneOf === undefined || batch.deliveries.length === 0) return;
  const back: Delivery[] = [];
  const keep: Delivery[] = [];
  for (const d of batch.deliveries) {
    const zone = batch.zoneOf.get(d.key);
    const w = zone === undefined ? undefined : window.at(zone, now);
    if (w !== undefined && !(w instanceof Error) && w.kind === 'at' && w.at > now) {
      back.push(d);
      batch.nextAt = Math.min(batch.nextAt ?? Infinity, w.at);
    } else keep.push(d);
  }
  if (back.length === 0) return;
  await claims.release(back.map((d) => d.key));
  batch.deliveries = keep;
  batch.held += back.length;
}
