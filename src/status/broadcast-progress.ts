/**
 * Running, queued and paused broadcasts as the status page shows them: progress, pause state and
 * an ETA (what is left / the rate seen over the last minute). The counters of a broadcast this
 * daemon runs are read live from its run; the others come from the broadcast documents (what
 * their holder last published).
 *
 * The rate is measured here, from the progress seen at successive refreshes, not taken from the
 * configuration: a broadcast shares the send queue with scheduled mail and with other broadcasts,
 * so what it actually gets is the only honest basis for an ETA.
 */
import type { BroadcastCounters, BroadcastDoc, BroadcastStatus } from '../ports/broadcasts.js';

/** How far back the rate looks (ms): long enough to smooth batches, short enough to follow a pause. */
export const RATE_WINDOW_MS = 60_000;

export interface BroadcastRow {
  id: string;
  subject: string;
  status: BroadcastStatus;
  /** True when an operator (or the complaint-rate guard) paused it. */
  paused: boolean;
  /** Held until this instant (`--at`, local time or quiet hours), ISO; null when not held. */
  heldUntil: string | null;
  /** Users the segment matched (null until the run counted them). */
  total: number | null;
  /** Users with an outcome: sent, failed, skipped, suppressed or missed. */
  done: number;
  sent: number;
  failed: number;
  /** done / total, 0..1 (null without a total). */
  progress: number | null;
  /** Users done per second over the last minute (null: not measured yet). */
  ratePerSecond: number | null;
  /** Seconds until done at that rate (null: unknown, paused, or no progress). */
  etaSeconds: number | null;
  /** Whether this daemon runs it (its counters are live). */
  local: boolean;
}

export function doneOf(c: BroadcastCounters): number {
  return c.sent + c.failed + c.skipped + c.suppressed + (c.missed ?? 0);
}

/** Progress samples per broadcast, to measure its rate. Samples older than the window are dropped. */
export class ProgressRates {
  readonly #samples = new Map<string, Array<{ atMs: number; done: number }>>();

  /** Records `done` at `atMs` and answers the rate over the window (null until two samples span time). */
  observe(id: string, atMs: number, done: number): number | null {
    const list = this.#samples.get(id) ?? [];
    list.push({ atMs, done });
    while (list.length > 2 && (list[1] as { atMs: number }).atMs <= atMs - RATE_WINDOW_MS) list.shift();
    this.#samples.set(id, list);
    const first = list[0] as { atMs: number; done: number };
    const span = atMs - first.atMs;
    return span > 0 ? Math.max(0, done - first.done) / (span / 1000) : null;
  }

  /** Forgets broadcasts no longer shown. */
  keepOnly(ids: ReadonlySet<string>): void {
    for (const id of this.#samples.keys()) if (!ids.has(id)) this.#samples.delete(id);
  }
}

/** What the supervisor reports of a run it holds. */
export type LiveRun = { id: string } & BroadcastCounters;

/**
 * One row per open broadcast (queued, running, paused), newest first, plus any run this daemon
 * holds that the documents did not list yet.
 */
export function broadcastRows(docs: readonly BroadcastDoc[], live: readonly LiveRun[], rates: ProgressRates, nowMs: number): BroadcastRow[] {
  const liveById = new Map(live.map((r) => [r.id, r]));
  const rows: BroadcastRow[] = [];
  const seen = new Set<string>();
  for (const doc of docs) {
    seen.add(doc._id);
    rows.push(row(doc._id, doc.subject, doc.status, liveById.get(doc._id) ?? doc.counters, liveById.has(doc._id), heldUntil(doc, nowMs), rates, nowMs));
  }
  for (const r of live) if (!seen.has(r.id)) rows.push(row(r.id, '', 'running', r, true, null, rates, nowMs));
  rates.keepOnly(new Set(rows.map((r) => r.id)));
  return rows;
}

function heldUntil(doc: BroadcastDoc, nowMs: number): string | null {
  const at = doc.nextAt ?? doc.at;
  return at !== undefined && at.getTime() > nowMs ? at.toISOString() : null;
}

function row(id: string, subject: string, status: BroadcastStatus, c: BroadcastCounters, local: boolean, held: string | null, rates: ProgressRates, nowMs: number): BroadcastRow {
  const done = doneOf(c);
  const total = c.total ?? null;
  const rate = rates.observe(id, nowMs, done);
  const left = total === null ? null : Math.max(0, total - done);
  const paused = status === 'paused';
  return {
    id,
    subject,
    status,
    paused,
    heldUntil: held,
    total,
    done,
    sent: c.sent,
    failed: c.failed,
    progress: total === null || total === 0 ? null : Math.min(1, done / total),
    ratePerSecond: rate,
    etaSeconds: left === null || paused || rate === null || rate <= 0 ? (left === 0 ? 0 : null) : Math.round(left / rate),
    local,
  };
}
