/**
 * The bounce and complaint rates `/metrics` shows (Metrics.setFeedbackSource): today's (UTC) over
 * the whole cluster, and per broadcast that runs, is paused, or finished in the last 24 hours.
 *
 * The reports come from the sink's counts in MongoDB (every instance's). The sends of today come
 * from the delivery records (SentCounter: every instance's), which costs a read of today's
 * records (a collection scan on FerretDB v1: `npm run bench restore` measured 11.2 s for 100,000
 * records), so it is read at most once per `refreshMs` and in the background: a scrape never
 * waits for it, and the sends this instance made since the read are added from its own counter.
 * Until the first read answers, the day's rates are absent rather than guessed.
 */
import { feedbackRates, NO_FEEDBACK, utcDay, utcDayStart, type FeedbackRates } from '../core/feedback-rates.js';
import { DAY_MS, MINUTE_MS } from '../core/time.js';
import type { BroadcastDoc, BroadcastStore } from '../ports/broadcasts.js';
import type { Clock } from '../ports/clock.js';
import type { FeedbackCounts, FeedbackTally } from '../ports/feedback.js';
import type { SentCounter } from '../ports/stores.js';

/** At most this many broadcasts get rate series (newest first): label cardinality stays small. */
export const MAX_RATED_BROADCASTS = 20;
/** A finished broadcast keeps its rate series this long. */
export const RECENT_BROADCAST_MS = DAY_MS;

export interface RatedFeedback extends FeedbackRates {
  tally: FeedbackTally;
  sent: number;
}

export interface FeedbackRateView {
  /** Today (UTC); undefined while today's sends are not known yet. */
  day: (RatedFeedback & { day: string }) | undefined;
  broadcasts: Array<RatedFeedback & { id: string }>;
}

/** The broadcasts worth a rate series: running or paused, or finished within `RECENT_BROADCAST_MS`. */
export function ratedBroadcasts(docs: readonly BroadcastDoc[], nowMs: number): BroadcastDoc[] {
  return docs
    .filter((d) => d.status === 'running' || d.status === 'paused' || (d.finishedAt !== undefined && nowMs - d.finishedAt.getTime() <= RECENT_BROADCAST_MS))
    .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime())
    .slice(0, MAX_RATED_BROADCASTS);
}

/**
 * Today's sends over the cluster: the delivery records' count, read in the background at most
 * every `refreshMs` (and at a new UTC day), plus this instance's sends since that read.
 */
export class DaySends {
  readonly #sent: SentCounter;
  readonly #localSent: () => number;
  readonly #clock: Clock;
  readonly #refreshMs: number;
  #base: { day: string; readAt: number; count: number; local: number } | undefined;
  #reading: Promise<void> | undefined;

  /** @param localSent this instance's sends so far (a monotonic counter, e.g. the send queue's) */
  constructor(p: { sent: SentCounter; localSent: () => number; clock: Clock; refreshMs?: number }) {
    this.#sent = p.sent;
    this.#localSent = p.localSent;
    this.#clock = p.clock;
    this.#refreshMs = p.refreshMs ?? 10 * MINUTE_MS;
  }

  /** Today's sends as last read (plus local ones since), or undefined before the first read of today. */
  today(): number | undefined {
    const now = this.#clock.now();
    const base = this.#base;
    if (base === undefined || base.day !== utcDay(now) || now - base.readAt >= this.#refreshMs) void this.refresh();
    if (base === undefined || base.day !== utcDay(now)) return undefined;
    return base.count + Math.max(0, this.#localSent() - base.local);
  }

  /** Reads today's count now (one read at a time; a failed read keeps the last one). */
  refresh(): Promise<void> {
    this.#reading ??= (async () => {
      const now = this.#clock.now();
      const local = this.#localSent();
      const [count] = await this.#sent.countSent(now, [now - utcDayStart(now)]);
      this.#base = { day: utcDay(now), readAt: now, count: count ?? 0, local };
    })()
      .catch(() => undefined)
      .finally(() => (this.#reading = undefined));
    return this.#reading;
  }
}

/** What `/metrics` asks for at each scrape: today's rates and the rated broadcasts'. */
export function feedbackRateReader(p: { counts: FeedbackCounts; broadcasts: Pick<BroadcastStore, 'list'>; daySends: Pick<DaySends, 'today'>; clock: Clock }): () => Promise<FeedbackRateView> {
  return async () => {
    const now = p.clock.now();
    const day = utcDay(now);
    const sentToday = p.daySends.today();
    const [todayTally, docs] = await Promise.all([p.counts.forDay(day), p.broadcasts.list()]);
    const rated = ratedBroadcasts(docs, now);
    const tallies = await Promise.all(rated.map((d) => p.counts.forBroadcast(d._id).catch(() => ({ ...NO_FEEDBACK }))));
    return {
      day: sentToday === undefined ? undefined : { day, tally: todayTally, sent: sentToday, ...feedbackRates(todayTally, sentToday) },
      broadcasts: rated.map((d, i) => {
        const tally = tallies[i] ?? { ...NO_FEEDBACK };
        return { id: d._id, tally, sent: d.counters.sent, ...feedbackRates(tally, d.counters.sent) };
      }),
    };
  };
}
