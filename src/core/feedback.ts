/**
 * The FeedbackSink: what a bounce or complaint report does (docs/ARCHITECTURE.md "Bounces and
 * complaints"). Every source (provider webhooks, the inbound DSN/ARF listener) hands its
 * authenticated, parsed reports here; nothing else suppresses anyone for a report.
 *
 * Per report: find the delivery (the report's delivery key, else the Message-ID's digest in the
 * message index); store one record per (delivery, kind), or per (source, event id) without a
 * delivery, under a unique id, so the same report twice changes nothing; then apply the rules:
 * - hard bounce: suppress the address (scope `all`);
 * - soft bounce: count it for the address; suppress once `softBounce.limit` fall within `windowHours`;
 * - complaint: suppress (scope `all` with `complaintStopsScheduled`, else `marketing`);
 * each one an analytics event tied to the delivery key, and counted per broadcast and per UTC
 * day. A report from the inbound listener (`dsn`, `arf`) that matches no delivery is ignored:
 * anyone can mail the listener, so an unmatched report must never suppress an address. A
 * provider's report is signed by the provider and applies by address even without a delivery.
 *
 * After applying, each broadcast touched is checked against `broadcastPause`: once it has sent
 * `minSent`, a bounce or complaint rate at or over its threshold pauses it, once, with a reason
 * naming the rate, its value and the threshold.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { BroadcastStore } from '../ports/broadcasts.js';
import type { Clock } from '../ports/clock.js';
import type { FeedbackApplyResult, FeedbackKind, FeedbackRefusal, FeedbackRefusals, FeedbackReport, FeedbackSink, FeedbackSource, MessageIndex, SentMessage } from '../ports/feedback.js';
import { FEEDBACK_SOURCES } from '../ports/feedback.js';
import type { FeedbackRecord, FeedbackStore, FeedbackTally } from '../ports/feedback-store.js';
import { feedbackRates } from './feedback-rates.js';
import type { EventRecorder, SuppressionEntry } from '../ports/index.js';
import { normaliseEmail } from './suppression-list.js';
import { HOUR_MS } from './time.js';
import type { DeliveryKind } from './types.js';

export interface FeedbackRules {
  softBounce: { limit: number; windowHours: number };
  complaintStopsScheduled: boolean;
  broadcastPause: { minSent: number; bounceRate: number | null; complaintRate: number | null };
}

export interface FeedbackSinkDeps {
  index: Pick<MessageIndex, 'find'>;
  store: FeedbackStore;
  /** core/suppression-list.ts SuppressionList.suppress: stored, then skipped in memory. */
  suppressions: { suppress(entry: SuppressionEntry): Promise<boolean> };
  broadcasts: Pick<BroadcastStore, 'get' | 'control' | 'requestControl'>;
  events: EventRecorder;
  refusals: FeedbackRefusals;
  clock: Clock;
  log: Logger;
}

/** The delivery a report is about, as far as it is known. */
interface Target {
  report: FeedbackReport;
  email: string;
  key?: string | undefined;
  userId?: string | undefined;
  broadcastId?: string | undefined;
  deliveryKind?: DeliveryKind | undefined;
}

const KINDS: readonly FeedbackKind[] = ['hard-bounce', 'soft-bounce', 'complaint'];
/** Sources whose input anyone can send (the inbound listener): applied only when matched to a delivery. */
const UNSIGNED_SOURCES: ReadonlySet<FeedbackSource> = new Set(['dsn', 'arf']);
const DIGEST = /^[0-9a-f]{32}$/;

/** The digest of a delivery key: the Message-ID's local part (core/message.ts messageIdFor). */
export function digestOfKey(key: string): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 32);
}

/** The digest in a Message-ID (`<digest@domain>`), or undefined when it is not one of ours. */
export function digestOfMessageId(messageId: string): string | undefined {
  const id = messageId.trim().replace(/^<|>$/g, '');
  const at = id.lastIndexOf('@');
  const local = (at < 0 ? id : id.slice(0, at)).toLowerCase();
  return DIGEST.test(local) ? local : undefined;
}

/** What a delivery key says of its delivery (docs/ARCHITECTURE.md "Claims"; see core/delivery-key.ts). */
export function describeDeliveryKey(key: string): { kind: DeliveryKind; userId: string; broadcastId?: string } {
  const parts = key.split(':');
  // b:<broadcastId>:<userId> (broadcast ids hold no ':'); s:<userId>:<HH:MM>:<date> (the user id
  // may hold ':', so it is everything between the prefix and the last three parts).
  if (parts[0] === 'b') return { kind: 'broadcast', broadcastId: parts[1] ?? '', userId: parts.slice(2).join(':') };
  return { kind: 'scheduled', userId: parts.slice(1, -3).join(':') };
}

/** `0.60%`: rates are small; two decimals show the 0.1 % and 0.3 % thresholds apart. */
function percent(rate: number): string {
  return `${(rate * 100).toFixed(2)}%`;
}

/** The tally field each kind counts in. */
const TALLY_FIELD: Record<FeedbackKind, keyof FeedbackTally> = { 'hard-bounce': 'hardBounces', 'soft-bounce': 'softBounces', complaint: 'complaints' };

function zeroBySource(): Record<FeedbackSource, Record<FeedbackKind, number>> {
  const out = {} as Record<FeedbackSource, Record<FeedbackKind, number>>;
  for (const s of FEEDBACK_SOURCES) out[s] = { 'hard-bounce': 0, 'soft-bounce': 0, complaint: 0 };
  return out;
}

export class FeedbackReportSink implements FeedbackSink {
  readonly #deps: FeedbackSinkDeps;
  readonly #rules: FeedbackRules;
  /** Broadcasts this process has paused (or found paused): one request each. */
  readonly #paused = new Set<string>();
  /**
   * Counters since start, for `/stats` and `/metrics`: reports received by source and kind, and
   * what became of them (a report is applied, a duplicate or ignored).
   */
  readonly stats = {
    reports: zeroBySource(),
    applied: 0,
    /** What was applied, by kind (the daily summary's bounces and complaints). */
    appliedTally: { hardBounces: 0, softBounces: 0, complaints: 0 } as FeedbackTally,
    duplicates: 0,
    suppressed: 0,
    ignored: {} as Partial<Record<FeedbackRefusal, number>>,
    pauses: 0,
  };

  constructor(deps: FeedbackSinkDeps, rules: FeedbackRules) {
    this.#deps = deps;
    this.#rules = rules;
  }

  async apply(reports: readonly FeedbackReport[]): Promise<FeedbackApplyResult> {
    const result: FeedbackApplyResult = { applied: 0, duplicates: 0, suppressed: 0, ignored: [] };
    if (reports.length === 0) return result;
    for (const r of reports) if (KINDS.includes(r.kind)) this.stats.reports[r.source][r.kind]++;
    const targets = await this.#resolve(reports, result);
    const now = new Date(this.#deps.clock.now());
    // One record per id: the first of a batch is applied, a later one in the same batch is a duplicate.
    const fresh: Array<{ target: Target; record: FeedbackRecord }> = [];
    const ids = new Set<string>();
    for (const target of targets) {
      const record = recordOf(target, now);
      if (ids.has(record.id)) result.duplicates++;
      else {
        ids.add(record.id);
        fresh.push({ target, record });
      }
    }
    const stored = fresh.length === 0 ? new Set<string>() : await this.#deps.store.insert(fresh.map((f) => f.record));
    const day = now.toISOString().slice(0, 10);
    const tallies = new Map<string, FeedbackTally>();
    for (const { target, record } of fresh) {
      if (stored.has(record.id)) {
        result.duplicates++;
        continue;
      }
      try {
        if (await this.#applyOne(target, now)) result.suppressed++;
      } catch (err) {
        // Forget the record, so the source's retry (a 5xx makes a provider send it again) applies
        // it rather than finding a duplicate of a report that changed nothing.
        await this.#deps.store.remove([record.id]).catch((e: unknown) => this.#deps.log.error({ err: e, id: record.id }, 'feedback record left after a failed apply'));
        throw err;
      }
      result.applied++;
      this.stats.appliedTally[TALLY_FIELD[target.report.kind]]++;
      const tally = await this.#deps.store.count(target.report.kind, day, target.broadcastId);
      if (target.broadcastId !== undefined && tally !== undefined) tallies.set(target.broadcastId, tally);
    }
    for (const [id, tally] of tallies) await this.#checkPause(id, tally);
    this.stats.applied += result.applied;
    this.stats.duplicates += result.duplicates;
    this.stats.suppressed += result.suppressed;
    return result;
  }

  /** Finds each report's delivery (one index read for the batch); drops the unmatched inbound ones. */
  async #resolve(reports: readonly FeedbackReport[], result: FeedbackApplyResult): Promise<Target[]> {
    const digests = reports.map((r) => (r.deliveryKey !== undefined ? digestOfKey(r.deliveryKey) : r.messageId !== undefined ? digestOfMessageId(r.messageId) : undefined));
    const wanted = [...new Set(digests.filter((d): d is string => d !== undefined))];
    const found = wanted.length === 0 ? new Map<string, SentMessage>() : await this.#deps.index.find(wanted);
    const targets: Target[] = [];
    reports.forEach((report, i) => {
      const d = digests[i];
      const sent = d === undefined ? undefined : found.get(d);
      const key = report.deliveryKey ?? sent?.key;
      // The address mailwheel sent to, when known: a DSN's recipient may be a forwarding target.
      const email = normaliseEmail(sent?.email ?? report.email);
      if (!KINDS.includes(report.kind) || email === '') return this.#ignore(report, 'malformed', result);
      if (key === undefined) {
        if (UNSIGNED_SOURCES.has(report.source)) return this.#ignore(report, 'unknown-message', result);
        targets.push({ report, email });
        return;
      }
      const described = describeDeliveryKey(key);
      targets.push({ report, email, key, userId: sent?.userId ?? described.userId, broadcastId: sent?.broadcastId ?? described.broadcastId, deliveryKind: described.kind });
    });
    return targets;
  }

  #ignore(report: FeedbackReport, reason: FeedbackRefusal, result: FeedbackApplyResult): void {
    result.ignored.push({ report, reason });
    this.stats.ignored[reason] = (this.stats.ignored[reason] ?? 0) + 1;
    this.#deps.refusals.refuse(report.source, reason);
  }

  /** The rules for one new report; true when it put the address on the list (or widened its scope). */
  async #applyOne(t: Target, now: Date): Promise<boolean> {
    const { report } = t;
    const { softBounce, complaintStopsScheduled } = this.#rules;
    let entry: SuppressionEntry | undefined;
    let note = '';
    if (report.kind === 'hard-bounce') entry = { email: t.email, reason: 'hard-bounce', scope: 'all' };
    else if (report.kind === 'complaint') entry = { email: t.email, reason: 'complaint', scope: complaintStopsScheduled ? 'all' : 'marketing' };
    else {
      const n = await this.#deps.store.softBounce(t.email, report.at, softBounce.windowHours * HOUR_MS, softBounce.limit);
      note = ` (soft bounce ${Math.min(n, softBounce.limit)} of ${softBounce.limit} within ${softBounce.windowHours} h)`;
      if (n >= softBounce.limit) entry = { email: t.email, reason: 'soft-bounce', scope: 'all' };
    }
    let suppressed = false;
    if (entry !== undefined) {
      if (t.userId !== undefined) entry.userId = t.userId;
      entry.source = report.source;
      if (report.detail !== undefined) entry.detail = report.detail;
      suppressed = await this.#deps.suppressions.suppress(entry);
    }
    const detail = report.detail === undefined ? '' : `: ${report.detail}`;
    await this.#deps.events.record({
      type: report.kind === 'complaint' ? 'complained' : 'bounced',
      at: now,
      ...(t.key === undefined ? {} : { key: t.key }),
      ...(t.deliveryKind === undefined ? {} : { kind: t.deliveryKind }),
      ...(t.userId === undefined ? {} : { userId: t.userId }),
      reason: `${report.kind} (${report.source})${detail}${note}${suppressed ? `; suppressed (${entry?.scope})` : ''}`,
    });
    return suppressed;
  }

  /** Pauses a running broadcast whose rate crossed a threshold; once per broadcast. */
  async #checkPause(id: string, tally: FeedbackTally): Promise<void> {
    const { minSent, bounceRate, complaintRate } = this.#rules.broadcastPause;
    if ((bounceRate === null && complaintRate === null) || this.#paused.has(id)) return;
    const doc = await this.#deps.broadcasts.get(id);
    if (doc === undefined || doc.status !== 'running') return;
    const sent = doc.counters.sent;
    if (sent < minSent || sent <= 0) return;
    // The rates `broadcast status` and /metrics show (core/feedback-rates.ts): hard bounces and
    // complaints per message sent. Soft bounces are a mailbox's passing trouble, not a list's quality.
    const rates = feedbackRates(tally, sent);
    const bounces = rates.bounceRate ?? 0;
    const complaints = rates.complaintRate ?? 0;
    const sentText = `after ${sent.toLocaleString('en-US')} sent`;
    const reason =
      complaintRate !== null && complaints >= complaintRate
        ? `complaint rate ${percent(complaints)} >= ${percent(complaintRate)} (feedback.broadcastPause.complaintRate) ${sentText}`
        : bounceRate !== null && bounces >= bounceRate
          ? `bounce rate ${percent(bounces)} >= ${percent(bounceRate)} (feedback.broadcastPause.bounceRate) ${sentText}`
          : undefined;
    if (reason === undefined || this.#paused.has(id)) return;
    // Marked before the awaits: a concurrent apply for the same broadcast does not ask again.
    this.#paused.add(id);
    try {
      // Already paused (by the operator, or by another instance's sink): nothing to ask.
      if ((await this.#deps.broadcasts.control(id)) === 'pause') return;
      await this.#deps.broadcasts.requestControl(id, 'pause', reason);
      this.stats.pauses++;
      this.#deps.log.warn({ broadcast: id, reason }, 'broadcast paused: feedback rate over its threshold');
    } catch (err) {
      // The next report for this broadcast tries again.
      this.#paused.delete(id);
      this.#deps.log.error({ err, broadcast: id, reason }, 'could not pause the broadcast');
    }
  }
}

function recordOf(t: Target, appliedAt: Date): FeedbackRecord {
  const r = t.report;
  // Without a delivery (a provider's report by address): the provider's event id, else what the
  // report says, so the same notification twice is still one record.
  const id = t.key !== undefined ? `${t.key}#${r.kind}` : `${r.source}:${r.eventId ?? `${t.email}:${r.kind}:${r.at.toISOString()}`}`;
  return {
    id,
    source: r.source,
    kind: r.kind,
    email: t.email,
    key: t.key,
    userId: t.userId,
    broadcastId: t.broadcastId,
    eventId: r.eventId,
    at: r.at,
    appliedAt,
    detail: r.detail,
  };
}
