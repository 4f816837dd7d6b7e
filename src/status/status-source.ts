/**
 * The status page's data (`GET /status.json`) and its curve (`GET /status/curve.svg`), read from
 * what the daemon already holds: the registry's buckets, the send path's counters, the broadcast
 * runs, the relays, the recent failures, the feedback rates and the cluster view. Read-only.
 *
 * Each part is cached for a short while, so a page left open in several tabs costs the daemon
 * one read per interval, not one per tab: the curve (a pass over the registry's buckets and the
 * plan's drain model) and its SVG for {@link CURVE_TTL_MS}, the open broadcasts (one small query)
 * for {@link DATA_TTL_MS}.
 */
import type { RelayStatus } from '../adapters/smtp/relay-set.js';
import type { SendPath } from '../adapters/smtp/send-options.js';
import type { ClusterStats } from '../app/stats.js';
import type { FeedbackRateView } from '../app/feedback-rates.js';
import { planChartSvg } from '../charts/plan-chart.js';
import type { RateWindows } from '../core/capacity-plan.js';
import type { JobRegistry } from '../core/job-registry.js';
import type { BroadcastDoc } from '../ports/broadcasts.js';
import type { Clock } from '../ports/clock.js';
import { broadcastRows, ProgressRates, type BroadcastRow, type LiveRun } from './broadcast-progress.js';
import type { RecentFailures } from './recent-failures.js';
import { sendCurve, type FiredMinutes, type SendCurve } from './send-curve.js';

/** How long the curve (and its picture) is reused (ms): it moves by the minute. */
export const CURVE_TTL_MS = 15_000;
/** How long the rest of the data is reused (ms): shorter than the page's refresh. */
export const DATA_TTL_MS = 1_000;
/**
 * How long the bounce and complaint rates are reused (ms): they read every broadcast document and
 * the feedback counts, and move slowly.
 */
export const FEEDBACK_TTL_MS = 10_000;
/** The curve spans this many minutes (24 h). */
export const CURVE_MINUTES = 1440;
/** The page reloads its data this often (ms); sent to it in the data. */
export const REFRESH_MS = 2_000;

/** What the status page reads (the App gives these). */
export interface StatusParts {
  readonly clock: Clock;
  readonly instance: string;
  readonly rate: RateWindows;
  readonly registry: Pick<JobRegistry, 'bucketSizes' | 'userCount' | 'size'>;
  readonly fired: FiredMinutes;
  readonly queue: Pick<SendPath, 'waiting' | 'inFlight' | 'ratePerSecond' | 'breaker' | 'groups' | 'stats'>;
  readonly backlog: () => number;
  readonly relays: () => RelayStatus[];
  readonly running: () => LiveRun[];
  /** Queued, running and paused broadcasts (the store's `open()`). */
  readonly openBroadcasts: () => Promise<BroadcastDoc[]>;
  readonly failures: RecentFailures;
  /** Bounce and complaint rates (undefined: the feedback side does not run). */
  readonly feedbackRates?: (() => Promise<FeedbackRateView>) | undefined;
  readonly cluster: () => Promise<ClusterStats>;
}

export interface StatusData {
  generatedAt: string;
  refreshMs: number;
  instance: string;
  users: number;
  jobs: number;
  curve: Omit<SendCurve, 'scheduled' | 'claimed' | 'peaks'> & { peaks: Array<{ at: string; sends: number; drainSeconds: number | null }>; svg: string };
  broadcasts: BroadcastRow[];
  queue: { waiting: number; inFlight: number; backlog: number; ratePerSecond: number | null; sent: number; failed: number };
  breaker: SendPath['breaker'];
  relays: RelayStatus[];
  destinations: SendPath['groups'] | null;
  feedback: FeedbackRateView | null;
  failures: { seen: number; recent: ReturnType<RecentFailures['list']> };
  cluster: ClusterStats | { error: string };
  /** Parts that could not be read this time, with why (the rest of the page still shows). */
  errors: string[];
}

export class StatusSource {
  readonly #p: StatusParts;
  readonly #rates = new ProgressRates();
  #curve: { atMs: number; curve: SendCurve; svg: string | undefined } | undefined;
  #data: { atMs: number; data: Promise<StatusData> } | undefined;
  #feedback: { atMs: number; rates: Promise<FeedbackRateView | undefined> } | undefined;

  constructor(parts: StatusParts) {
    this.#p = parts;
  }

  /** The page's data; one read per {@link DATA_TTL_MS} whatever the number of callers. */
  data(): Promise<StatusData> {
    const now = this.#p.clock.now();
    if (this.#data === undefined || now - this.#data.atMs >= DATA_TTL_MS) this.#data = { atMs: now, data: this.#read(now) };
    return this.#data.data;
  }

  /** The curve as an SVG document (rendered at most once per curve). */
  curveSvg(): string {
    const c = this.#currentCurve(this.#p.clock.now());
    c.svg ??= planChartSvg(
      {
        title: `Sends due per minute, next 24 h from ${new Date(c.curve.fromMs).toISOString().slice(0, 16)}Z`,
        fromMs: c.curve.fromMs,
        scheduled: c.curve.scheduled,
        claimed: c.curve.claimed,
        capacityPerMinute: c.curve.capacityPerMinute,
        capacityLabel: rateLabel(this.#p.rate),
        peaks: c.curve.peaks.map((p) => p.minuteMs),
      },
      { width: 1000, height: 360 },
    );
    return c.svg;
  }

  #currentCurve(now: number): { atMs: number; curve: SendCurve; svg: string | undefined } {
    if (this.#curve === undefined || now - this.#curve.atMs >= CURVE_TTL_MS || Math.floor(now / 60_000) * 60_000 !== this.#curve.curve.fromMs) {
      this.#curve = { atMs: now, curve: sendCurve(this.#p.registry.bucketSizes(), this.#p.fired, now, CURVE_MINUTES, this.#p.rate), svg: undefined };
    }
    return this.#curve;
  }

  #feedbackRates(now: number): Promise<FeedbackRateView | undefined> {
    const read = this.#p.feedbackRates;
    if (read === undefined) return Promise.resolve(undefined);
    if (this.#feedback === undefined || now - this.#feedback.atMs >= FEEDBACK_TTL_MS) {
      const rates = read();
      // A failed read is not kept: the next refresh tries again.
      rates.catch(() => (this.#feedback = undefined));
      this.#feedback = { atMs: now, rates };
    }
    return this.#feedback.rates;
  }

  async #read(now: number): Promise<StatusData> {
    const p = this.#p;
    const errors: string[] = [];
    const failed = (what: string) => (err: unknown) => {
      errors.push(`${what}: ${err instanceof Error ? err.message : String(err)}`);
      return undefined;
    };
    const [docs, feedback, cluster] = await Promise.all([
      p.openBroadcasts().catch(failed('broadcasts')),
      this.#feedbackRates(now).catch(failed('feedback rates')),
      p.cluster().catch(failed('cluster')),
    ]);
    const { curve } = this.#currentCurve(now);
    const { scheduled: _s, claimed: _c, peaks, ...curveRest } = curve;
    const stats = p.queue.stats;
    return {
      generatedAt: new Date(now).toISOString(),
      refreshMs: REFRESH_MS,
      instance: p.instance,
      users: p.registry.userCount,
      jobs: p.registry.size,
      // The picture's address changes with the curve, so the page reloads it only when it changed.
      curve: { ...curveRest, peaks: peaks.map((x) => ({ at: new Date(x.minuteMs).toISOString(), sends: x.sends, drainSeconds: x.drainSeconds ?? null })), svg: `/status/curve.svg?at=${this.#curve?.atMs ?? now}` },
      broadcasts: broadcastRows(docs ?? [], p.running(), this.#rates, now),
      queue: { waiting: p.queue.waiting, inFlight: p.queue.inFlight, backlog: p.backlog(), ratePerSecond: p.queue.ratePerSecond, sent: stats.sent, failed: stats.failed },
      breaker: { ...p.queue.breaker },
      relays: p.relays(),
      destinations: p.queue.groups ?? null,
      feedback: feedback ?? null,
      failures: { seen: p.failures.seen, recent: p.failures.list() },
      cluster: cluster ?? { error: 'not available' },
      errors,
    };
  }
}

/** The rate as the capacity line is labelled: `40/s`, `600/min`. */
export function rateLabel(rate: RateWindows): string | undefined {
  if (rate.perSecond) return `${rate.perSecond}/s`;
  if (rate.perMinute) return `${rate.perMinute}/min`;
  return undefined;
}
