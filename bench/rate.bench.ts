/**
 * Suite `rate`: does the configured `rate.perSecond` hold where it matters, at the server?
 *
 * For limits of 20, 200 and 1,000 messages/s, mailwheel's SendQueue + NodemailerTransport (the
 * daemon's own send path, built from loadConfig, pool of 10) sends `limit x 30 s` messages to
 * Postfix's smtp-sink. The figures come from the sink's side: the time each message's final "."
 * reached the sink. Per limit: the achieved rate, the busiest and quietest fixed one-second
 * windows, the busiest sliding one-second window and the share of sliding windows above the
 * limit, and the sender's CPU.
 *
 * The comparison, measured in the same run: the same sender with no limit (the physical limit of
 * this sender on this machine), so a reader can see that the limit, not the machine, sets the pace.
 *
 * The sender runs in a child process (bench/workers/rate-sender.ts): this process only reads the
 * sink's counter, so the arrival times it takes are exact to about a millisecond.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MimeBuilder } from '../src/adapters/smtp/mime.js';
import { deliveryFor, FROM, templateOfSize } from './lib/fixtures.js';
import { repoRoot, spawnWatched } from './lib/proc.js';
import { SmtpSink } from './lib/sink.js';
import { round, type Row, type Series, type Suite } from './lib/suite.js';
import { fixedWindowExtremes, perSecond, slidingWindows } from './lib/windows.js';
import type { RateSenderArgs, RateSenderResult } from './workers/rate-sender.js';

const LIMITS = [20, 200, 1_000];
const TEMPLATE_BYTES = 2_000;
const SENDER = join(repoRoot, 'bench', 'workers', 'rate-sender.ts');

interface Scale {
  /** Seconds of traffic per limit: each limit sends `limit x secondsPerLimit` messages. */
  secondsPerLimit: number;
  /** Messages of the unlimited (physical-limit) run. */
  unlimitedCount: number;
}

const FULL: Scale = { secondsPerLimit: 30, unlimitedCount: 20_000 };
const QUICK: Scale = { secondsPerLimit: 3, unlimitedCount: 2_000 };

interface SenderRun {
  /** The configured limit, null for the unlimited run. */
  limit: number | null;
  result: RateSenderResult;
  /** Arrival times at the sink (performance.now() of this process) of this run's messages. */
  arrivals: number[];
}

/** The sender's time budget: twice the nominal duration plus start-up slack, then it gives up. */
function maxSecondsFor(limit: number | null, count: number): number {
  return limit === null ? 60 : Math.ceil((count / limit) * 2) + 20;
}

/** Waits until the sink's counter has reported `n` arrivals, or `timeoutMs` passed. */
async function arrivalsReach(sink: SmtpSink, n: number, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (sink.arrivals.length < n && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}

/** Runs one sender child to completion and collects its result and this run's arrivals. */
async function runSender(sink: SmtpSink, limit: number | null, count: number, log: (line: string) => void): Promise<SenderRun> {
  const dir = mkdtempSync(join(tmpdir(), 'mailwheel-rate-'));
  try {
    return await runSenderIn(dir, sink, limit, count, log);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function runSenderIn(dir: string, sink: SmtpSink, limit: number | null, count: number, log: (line: string) => void): Promise<SenderRun> {
  const resultFile = join(dir, 'result.json');
  const args: RateSenderArgs = { smtpUrl: `smtp://127.0.0.1:${sink.port}`, perSecond: limit, count, templateBytes: TEMPLATE_BYTES, maxSeconds: maxSecondsFor(limit, count), resultFile };
  const before = sink.arrivals.length;
  // BENCH_RATE_CPU_PROF=<dir> profiles the sender (node --cpu-prof), for when a figure looks wrong.
  const profDir = process.env['BENCH_RATE_CPU_PROF'];
  const nodeArgs = ['--import', 'tsx', ...(profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : []), SENDER, JSON.stringify(args)];
  // The child reports its own peak RSS (maxrss), so the parent does not sample /proc here.
  const child = spawnWatched(process.execPath, nodeArgs, {}, 60_000);
  // A hung child is stopped by its own pid after its budget plus start-up and exit slack.
  const guard = setTimeout(() => child.kill('SIGKILL'), (args.maxSeconds + 30) * 1000);
  const fin = await child.done;
  clearTimeout(guard);
  if (fin.code !== 0 || !existsSync(resultFile)) throw new Error(`rate-sender (limit ${String(limit)}) exited ${String(fin.code ?? fin.signal)}; stderr tail:\n${fin.stderr.slice(-2000)}`);
  const result = JSON.parse(readFileSync(resultFile, 'utf8')) as RateSenderResult;
  // The sink prints its counter when it has the message; our read of that pipe may trail the
  // sender's exit by a moment.
  await arrivalsReach(sink, before + result.sent, 2_000);
  const arrivals = sink.arrivals.slice(before);
  log(`  ${result.sent} sent, ${result.failed} failed, ${arrivals.length} arrived, sender ${round(result.seconds, 1)} s, CPU ${Math.round(result.cpuMs)} ms${result.timedOut ? ' (TIMED OUT)' : ''}`);
  return { limit, result, arrivals };
}

/** Messages per second between the first and the last arrival: (n - 1) intervals over that span. */
function achievedRate(arrivals: readonly number[]): number {
  const first = arrivals[0];
  const last = arrivals[arrivals.length - 1];
  if (first === undefined || last === undefined || last <= first) return Number.NaN;
  return ((arrivals.length - 1) * 1000) / (last - first);
}

function spanSeconds(arrivals: readonly number[]): number {
  return ((arrivals[arrivals.length - 1] ?? 0) - (arrivals[0] ?? 0)) / 1000;
}

/**
 * Three views of when the messages arrived, all on the epoch clock both processes share:
 * - `readings`: when this process read each arrival from the sink's counter (the server side);
 * - `replies`: when the sender had the server's reply to each message, sorted (what the
 *   ArrivalGate in send-queue.ts counts);
 * - `capped`: each reading capped at the reply of the same rank. Every message reaches the sink
 *   before its reply reaches the sender, so the k-th earliest true arrival precedes the k-th
 *   earliest reply: a reading later than that (beyond 1 ms of clock tolerance) was taken late,
 *   because this process was not scheduled in time on a busy machine, and a late reading moves a
 *   message into a later window. The capped times undo that lateness and are the best estimate of
 *   the true arrivals.
 */
interface ArrivalViews {
  readings: number[];
  replies: number[];
  capped: number[];
  /** Readings later than the reply of their rank (share, %) and by how much at most (ms). */
  latePct: number;
  maxLateMs: number;
}

function arrivalViews(arrivals: readonly number[], completions: readonly number[]): ArrivalViews {
  const readings = arrivals.map((t) => performance.timeOrigin + t);
  const replies = [...completions].sort((a, b) => a - b);
  let late = 0;
  let maxLateMs = 0;
  const capped = readings.map((r, k) => {
    const reply = replies[k];
    if (reply === undefined) return r;
    if (r - reply > 1) late++;
    maxLateMs = Math.max(maxLateMs, r - reply);
    return Math.min(r, reply);
  });
  return { readings, replies, capped, latePct: (100 * late) / Math.max(1, readings.length), maxLateMs };
}

/** The busiest sliding one-second window and the share (%) of windows above `limit`. */
function sliding(times: readonly number[], limit: number): { max: number; abovePct: number } {
  const w = slidingWindows(times, 1000, limit);
  return { max: w.max, abovePct: round((100 * w.above) / Math.max(1, w.windows), 2) };
}

function rowFor(run: SenderRun): Row {
  const { limit, result, arrivals } = run;
  const fixed = fixedWindowExtremes(arrivals);
  const views = arrivalViews(arrivals, result.completions);
  const read = limit === null ? undefined : sliding(views.readings, limit);
  const capped = limit === null ? undefined : sliding(views.capped, limit);
  const replies = limit === null ? undefined : sliding(views.replies, limit);
  const rate = achievedRate(arrivals);
  return {
    run: limit === null ? 'unlimited (physical limit)' : `limit ${limit}/s`,
    limit,
    messages: arrivals.length,
    sent: result.sent,
    failed: result.failed,
    seconds: round(spanSeconds(arrivals), 2),
    msgsPerS: round(rate, 1),
    achievedPerLimit: limit === null ? null : round(rate / limit, 3),
    perSecondMax: fixed.max,
    perSecondMin: fixed.min,
    fullWindows: fixed.fullWindows,
    slidingMax: read?.max ?? null,
    slidingAbovePct: read?.abovePct ?? null,
    cappedSlidingMax: capped?.max ?? null,
    cappedAbovePct: capped?.abovePct ?? null,
    replySlidingMax: replies?.max ?? null,
    // Sub-second shape: a provider that counts per 100 ms would see this many at once.
    max100ms: slidingWindows(views.capped, 100, Number.POSITIVE_INFINITY).max,
    lateReadingsPct: round(views.latePct, 2),
    maxLateMs: round(views.maxLateMs, 1),
    senderCpuMs: Math.round(result.cpuMs),
    senderCpuPct: round((100 * result.cpuMs) / 1000 / Math.max(1e-9, result.seconds), 1),
    cpuUsPerMsg: round((result.cpuMs * 1000) / Math.max(1, result.sent), 1),
    senderPeakRssMiB: result.peakRssMiB,
  };
}

function seriesFor(run: SenderRun): Series {
  return {
    id: `limit-${String(run.limit)}`,
    title: `Messages per second at the sink, rate.perSecond = ${String(run.limit)} (fixed 1 s windows from the first arrival)`,
    unit: 'messages/s',
    limit: run.limit,
    points: perSecond(run.arrivals),
  };
}

const suite: Suite = {
  description:
    'rate.perSecond = 20 / 200 / 1,000 held at the server: mailwheel SendQueue (child process, pool 10) into Postfix smtp-sink, per-second and sliding-window figures from arrival times, against the same sender unlimited (physical limit)',
  async run({ log, quick }) {
    const scale = quick ? QUICK : FULL;
    const sink = await SmtpSink.startWithTools(log);
    const runs: SenderRun[] = [];
    try {
      // The physical limit first: the same sender, no limit, so it is measured on the same sink.
      log(`unlimited: ${scale.unlimitedCount} messages...`);
      runs.push(await runSender(sink, null, scale.unlimitedCount, log));
      for (const limit of LIMITS) {
        const count = limit * scale.secondsPerLimit;
        log(`limit ${limit}/s: ${count} messages (~${scale.secondsPerLimit} s)...`);
        runs.push(await runSender(sink, limit, count, log));
      }
    } finally {
      await sink.stop();
    }

    const unlimited = runs[0];
    const limited = runs.slice(1);
    const physical = unlimited === undefined ? Number.NaN : achievedRate(unlimited.arrivals);
    const comparisons: Row[] = limited.map((r) => {
      const rate = achievedRate(r.arrivals);
      const limit = r.limit ?? Number.NaN;
      return {
        limit,
        'achieved msgs/s': round(rate, 1),
        'achieved / limit': round(rate / limit, 3),
        'sliding max / limit': round(slidingWindows(r.arrivals, 1000, limit).max / limit, 3),
        'capped sliding max / limit': round(sliding(arrivalViews(r.arrivals, r.result.completions).capped, limit).max / limit, 3),
        'unlimited msgs/s': round(physical, 0),
        'limit / unlimited': round(limit / physical, 3),
      };
    });
    const messageBytes = new MimeBuilder(templateOfSize(TEMPLATE_BYTES), { from: FROM }).build(deliveryFor(0)).raw.length;
    const notes = [
      'sender: mailwheel SendQueue + NodemailerTransport in a child process (bench/workers/rate-sender.ts), config/default.json with rate.perSecond = limit (null for the unlimited run), rate.perDay = null, smtp.poolSize 10; every message submitted at once, as the dispatcher hands over a due minute',
      'arrival time = when this process read the smtp-sink counter line for the message (the sink prints it on the final "."); this process does nothing else meanwhile, so the times are exact to about 1 ms',
      'msgsPerS = (messages - 1) / (last arrival - first arrival); seconds is that span',
      'perSecondMax / perSecondMin: fixed 1 s windows from the first arrival; the last window is cut short by the end of the run and is excluded from the minimum (fullWindows = windows counted for the minimum)',
      'slidingMax: the busiest window [t, t + 1 s) starting at any arrival; slidingAbovePct: share of those windows (one per arrival) holding more than the limit',
      'lateReadingsPct / maxLateMs: readings of the sink taken after the sender already had the reply of the same rank (the k-th arrival precedes the k-th reply; 1 ms clock tolerance between the processes): this process was descheduled on the busy machine, and a late reading pushes a message into a later window',
      'cappedSlidingMax / cappedAbovePct: the sliding windows over the readings capped at the reply of the same rank (the best estimate of the true arrival times, lateness undone); replySlidingMax: the same over the sender\'s reply times, what the ArrivalGate in send-queue.ts bounds. Where slidingMax exceeds the limit and the capped figure does not, the excess is this process reading late, not the sender sending early',
      'max100ms: the busiest sliding 100 ms window (capped times). The queue grants batches of limit / 20 messages (at most 50) every 50 ms (src/core/pacing.ts), and a batch leaves as fast as the pool sends it, so within a second the traffic comes in bursts',
      'senderCpuMs: CPU (user + system) of the sender process from the first submit to idle (start-up and tsx compilation excluded); senderCpuPct relative to that wall time; senderPeakRssMiB: maxrss (VmHWM) of the sender process, reported by itself, tsx included',
      'the sink, the sender and this process share the same 2 cores (other benchmark processes may have run at the same time)',
    ];
    return {
      config: {
        limits: LIMITS,
        secondsPerLimit: scale.secondsPerLimit,
        counts: Object.fromEntries(LIMITS.map((l) => [l, l * scale.secondsPerLimit])),
        unlimitedCount: scale.unlimitedCount,
        templateBytes: TEMPLATE_BYTES,
        messageBytes,
        poolSize: unlimited?.result.poolSize ?? null,
        sink: 'smtp-sink -c -u nobody -m 512 127.0.0.1:PORT 1024',
      },
      rows: runs.map(rowFor),
      comparisons,
      notes,
      series: limited.map(seriesFor),
    };
  },
};

export default suite;
