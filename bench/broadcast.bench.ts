/**
 * Suite `broadcast`: one broadcast to every user, through the daemon as it runs in production:
 * `mailwheel start` (the built CLI, its own process) plus `mailwheel broadcast send`, into
 * Postfix's `smtp-sink` on 127.0.0.1, at two population sizes (100,000 and 1,000,000; quick:
 * 5,000 and 20,000), each in a fresh MongoDB-wire database. Measured per size: messages per
 * second over the sending period (the sink's own arrival times), time to the first message, total
 * time, the cores the daemon and FerretDB used, the daemon's RSS by quarters of the run, and what
 * runs beside the broadcast (the run's progress writes, incremental user syncs) with its share of
 * the run. Compared in the same run with the SMTP path alone (the daemon's SendQueue and
 * transport, no database: the ceiling a broadcast should reach half of) and with `smtp-source`
 * (Postfix's C load generator) over as many sessions as the daemon's pool: the physical limit.
 *
 * The daemon holds every user's scheduled jobs in its registry (that is its design), so its RSS
 * grows with N whatever the broadcast does; the broadcast's own memory shows as growth from the
 * first quarter of the run to the last.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Db } from 'mongodb';
import { MimeBuilder } from '../src/adapters/smtp/mime.js';
import { broadcastKey } from '../src/core/delivery-key.js';
import { compileTemplates } from '../src/core/templates.js';
import { CpuSampler, LogLines, median, quarterMedians } from './lib/broadcast-metrics.js';
import { insertMany, startBenchDb, userDoc } from './lib/db.js';
import { measureSendPath } from './lib/send-path.js';
import { cliEntry, DAEMON_ENV, spawnMailwheel, spawnWatched, writeConfig, type Finished } from './lib/proc.js';
import { runSmtpSource, SmtpSink } from './lib/sink.js';
import { round, type Row, type Series, type Suite, type SuiteContext } from './lib/suite.js';
import { perSecond } from './lib/windows.js';

/** The daemon's SMTP pool (config/default.json smtp.poolSize): smtp-source gets as many sessions. */
const POOL = 10;
/** How often the daemon looks for queued broadcasts: short, so pickup is not what is measured. */
const POLL_MS = 250;
const RSS_SAMPLE_MS = 500;
const FROM = 'mailwheel <noreply@example.com>';

const SUBJECT = 'News for you, {{name}}';
const PARAGRAPH =
  'This month we rebuilt the part of the service that sends your reminders, so that every one of ' +
  'them leaves on time however many people are waiting for theirs at the same minute.';
/** Text and html bodies that make a message of about 2 KB (the smtp suite's small size). */
export const TEXT = `Hello {{name}},\n\n${Array.from({ length: 5 }, () => PARAGRAPH).join('\n\n')}\n\nThis message went to {{email}}.\n`;
export const HTML = `<p>Hello {{name}},</p>\n${Array.from({ length: 3 }, () => `<p>${PARAGRAPH}</p>`).join('\n')}\n`;

export interface Scale {
  sizes: number[];
  sourceMessages: number;
  /** Messages sent through the SMTP path alone (SendQueue + transport, no database): the comparison. */
  pathMessages: number;
  /** Longest wait for one broadcast to finish; it is then reported as unfinished. */
  maxBroadcastSeconds: number;
}

export function scaleFor(quick: boolean): Scale {
  return quick ? { sizes: [5_000, 20_000], sourceMessages: 5_000, pathMessages: 5_000, maxBroadcastSeconds: 120 } : { sizes: [100_000, 1_000_000], sourceMessages: 100_000, pathMessages: 100_000, maxBroadcastSeconds: 1_500 };
}

/** A local time 12 hours from now: no user's scheduled slot falls due while the suite runs. */
function farSlot(now = Date.now()): string {
  const d = new Date(now + 12 * 3_600_000);
  return `${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')}`;
}

/** One message as the daemon builds it, for smtp-source (which appends CRLF to each line itself). */
function sampleMessage(): string {
  const builder = new MimeBuilder(compileTemplates({ subject: SUBJECT, text: TEXT, html: HTML }), { from: FROM });
  const d = { key: broadcastKey('20260101-000000-abcdef', 'u0000001'), kind: 'broadcast' as const, userId: 'u0000001', email: 'u0000001@example.test', name: 'User 1', broadcastId: '20260101-000000-abcdef', dueAt: Date.now() };
  return builder.build(d, { 'List-Unsubscribe': '<mailto:unsubscribe@example.com?subject=unsubscribe>' }).raw;
}

/** Every k-th point, so a long run's chart keeps at most about `max` points. */
function thin(points: Array<[number, number]>, max: number): Array<[number, number]> {
  const k = Math.ceil(points.length / max);
  return k <= 1 ? points : points.filter((_, i) => i % k === 0);
}

interface BroadcastStatusDoc {
  status: string;
  counters?: { sent?: number; failed?: number; skipped?: number; suppressed?: number };
}

/** Polls the broadcast document until it reaches a final status or `maxSeconds` pass. */
async function waitForEnd(db: Db, id: string, maxSeconds: number, progress: () => string, log: (line: string) => void): Promise<BroadcastStatusDoc | undefined> {
  const deadline = performance.now() + maxSeconds * 1000;
  let nextLog = performance.now() + 15_000;
  for (;;) {
    // A read by `_id`: FerretDB pushes it down, so polling costs the daemon's database nothing.
    const doc = await db.collection<{ _id: string } & BroadcastStatusDoc>('mailwheel_broadcasts').findOne({ _id: id });
    if (doc !== null && ['done', 'failed', 'cancelled'].includes(doc.status)) return doc;
    if (performance.now() > deadline) return doc ?? undefined;
    if (performance.now() > nextLog) {
      log(`  ${doc?.status ?? 'missing'}: ${progress()}`);
      nextLog += 15_000;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

export interface SizeResult {
  row: Row;
  /** Messages per second since `broadcast send`, and the daemon's RSS on the same clock. */
  rate: Array<[number, number]>;
  rss: Array<[number, number]>;
  msgsPerS: number;
  rssMedianMiB: number;
  /** Medians of each quarter of the broadcast. */
  rssQuartersMiB: number[];
}

/**
 * One size: fresh database, N users, the daemon started (its full sync of N users included),
 * one broadcast queued by the CLI, followed to its end, then the daemon stopped with SIGTERM.
 */
export async function measureSize(
  n: number,
  sink: SmtpSink,
  files: { text: string; html: string },
  scale: Scale,
  log: (line: string) => void,
  /** For probes outside the suite: node flags for the daemon (e.g. ['--cpu-prof']), broadcast settings. */
  probe: { nodeArgs?: string[]; broadcasts?: Record<string, number>; send?: Record<string, number> } = {},
): Promise<SizeResult> {
  const db = await startBenchDb(`bench_broadcast_${n}`, log);
  let config: string | undefined;
  try {
    log(`${n.toLocaleString('en')} users: seeding...`);
    const slot = farSlot();
    // Changed two hours ago: the daemon's incremental sync (cron every 5 min, reading users
    // changed since its last sync minus a 60 s overlap) then reads nobody, as in production where
    // few users change per tick. Stamped "now", all N would be re-read by the first tick in the
    // middle of the broadcast (seen in a 1M run: RSS nearly doubled, msgs/s fell for a minute).
    const updatedAt = new Date(Date.now() - 2 * 3_600_000);
    const seedS = await insertMany(db.db, 'users', n, (i) => userDoc(i, { time: slot, updatedAt }), log, 2000);
    config = writeConfig({
      mongodb: { uri: db.uri },
      smtp: { url: `smtp://127.0.0.1:${sink.port}`, poolSize: POOL },
      rate: { perSecond: null, perDay: null },
      http: { enabled: false },
      broadcasts: { pollMs: POLL_MS, ...probe.broadcasts },
      ...(probe.send === undefined ? {} : { send: probe.send }),
    });
    // info: the start-up line ("mailwheel started") is how we know the full sync is done.
    const daemon = spawnWatched(process.execPath, [...(probe.nodeArgs ?? []), cliEntry, '--config', config, 'start'], { ...DAEMON_ENV, LOG_LEVEL: 'info' }, RSS_SAMPLE_MS);
    const logLines = new LogLines(daemon.child.stderr, ['incremental user sync done', 'incremental user sync deferred', 'broadcast run ended']);
    let finished: Finished | undefined;
    try {
      await daemon.waitFor('mailwheel started', 600_000);
      const startS = (performance.now() - daemon.startedAt) / 1000;
      log(`  daemon pid ${daemon.pid} started (full sync of ${n.toLocaleString('en')} users) in ${round(startS, 1)} s; queueing the broadcast`);

      const arrivalsBefore = sink.arrivals.length;
      const cpu = new CpuSampler(daemon.pid, db.pid, RSS_SAMPLE_MS);
      const sentAt = performance.now();
      const cli = spawnMailwheel(['--config', config, 'broadcast', 'send', '--subject', SUBJECT, '--text-file', files.text, '--html-file', files.html, '--json']);
      const sent = await cli.done;
      if (sent.code !== 0) throw new Error(`broadcast send exited ${String(sent.code)}: ${sent.stderr.slice(-1000)}`);
      const id = (JSON.parse(sent.stdout.trim()) as { id: string }).id;
      log(`  broadcast ${id} queued in ${round((performance.now() - sentAt) / 1000, 2)} s`);

      const doc = await waitForEnd(db.db, id, scale.maxBroadcastSeconds, () => `${(sink.arrivals.length - arrivalsBefore).toLocaleString('en')} received`, log);
      const endedAt = performance.now();
      cpu.stop();
      daemon.kill('SIGTERM');
      finished = await daemon.done;

      const arrivals = sink.arrivals.slice(arrivalsBefore);
      const first = arrivals[0] ?? Number.NaN;
      const last = arrivals[arrivals.length - 1] ?? Number.NaN;
      const sendingS = (last - first) / 1000;
      const msgsPerS = arrivals.length / sendingS;
      const whole = cpu.share(sentAt / 1000, endedAt / 1000);
      // Incremental syncs that ran during the broadcast (their log line's time is their end): the
      // cores the daemon and the database used while each ran, against the rest of the run.
      const toPerf = (epochMs: number): number => (epochMs - performance.timeOrigin) / 1000;
      const syncs = logLines
        .of('incremental user sync done')
        .map((l) => ({ end: toPerf(Number(l['time'])), ms: Number(l['ms'] ?? 0), read: Number(l['read'] ?? 0) }))
        .filter((x) => x.end >= sentAt / 1000 && x.end <= endedAt / 1000);
      const syncMs = syncs.reduce((t, x) => t + x.ms, 0);
      // Ticks skipped because the last sync's time would exceed users.incrementalMaxShare.
      const deferredSyncs = logLines.of('incremental user sync deferred').filter((l) => { const t = toPerf(Number(l['time'])); return t >= sentAt / 1000 && t <= endedAt / 1000; }).length;
      const syncShares = syncs.map((x) => cpu.share(x.end - x.ms / 1000, x.end));
      const runEnd = logLines.of('broadcast run ended').at(-1);
      const publishMs = Number(runEnd?.['publishMs'] ?? Number.NaN);
      // Time the run had nothing in the queue, by what it waited for (core/broadcast-feeder.ts).
      const idle = (runEnd?.['idleMs'] ?? {}) as Record<string, number>;
      const totalMs = endedAt - sentAt;
      // RSS on the broadcast's clock: samples from `broadcast send` to its end, by quarters.
      const sentAtS = (sentAt - daemon.startedAt) / 1000;
      const endS = (endedAt - daemon.startedAt) / 1000;
      const during = finished.rssSamples.filter(([t]) => t >= sentAtS && t <= endS);
      const quarters = quarterMedians(during, sentAtS, endS);
      const rssMedian = median(during.map(([, v]) => v));
      const rssPeakDuring = Math.max(...during.map(([, v]) => v));
      const row: Row = {
        users: n,
        status: doc?.status ?? 'missing',
        received: arrivals.length,
        sent: doc?.counters?.sent ?? null,
        failed: doc?.counters?.failed ?? null,
        skipped: doc?.counters?.skipped ?? null,
        seedS: round(seedS, 1),
        daemonStartS: round(startS, 1),
        firstMsgS: round((first - sentAt) / 1000, 2),
        sendingS: round(sendingS, 1),
        totalS: round(totalMs / 1000, 1),
        msgsPerS: Math.round(msgsPerS),
        daemonCpuPerMsgUs: round((whole.daemon * whole.seconds * 1e6) / Math.max(1, arrivals.length), 1),
        daemonCores: round(whole.daemon, 2),
        dbCores: round(whole.db, 2),
        rssPeakDuringMiB: rssPeakDuring,
        rssQ1MiB: round(quarters[0] ?? Number.NaN, 1),
        rssQ2MiB: round(quarters[1] ?? Number.NaN, 1),
        rssQ3MiB: round(quarters[2] ?? Number.NaN, 1),
        rssQ4MiB: round(quarters[3] ?? Number.NaN, 1),
        rssHwmMiB: finished.peakRssMiB,
        idleWaitingNextBatchS: round((idle['prepare'] ?? 0) / 1000, 1),
        idleWaitingWritesS: round((idle['settle'] ?? 0) / 1000, 1),
        progressWrites: Number(runEnd?.['publishes'] ?? Number.NaN),
        progressWriteShare: round(publishMs / totalMs, 4),
        incrementalSyncs: syncs.length,
        incrementalSyncRead: syncs.reduce((t, x) => t + x.read, 0),
        incrementalSyncS: round(syncMs / 1000, 1),
        incrementalSyncShare: round(syncMs / totalMs, 3),
        incrementalSyncsDeferred: deferredSyncs,
        syncDaemonCores: syncShares.length === 0 ? null : round(median(syncShares.map((x) => x.daemon)), 2),
        syncDbCores: syncShares.length === 0 ? null : round(median(syncShares.map((x) => x.db)), 2),
        exit: finished.code ?? String(finished.signal),
      };
      log(
        `  ${n.toLocaleString('en')}: ${arrivals.length.toLocaleString('en')} received in ${round(sendingS, 1)} s (${Math.round(msgsPerS)} msgs/s); cores daemon ${round(whole.daemon, 2)}, db ${round(whole.db, 2)}; RSS quarters ${quarters.map((q) => round(q, 1)).join(' / ')} MiB; idle waiting for the next batch ${String(row['idleWaitingNextBatchS'])} s, for writes ${String(row['idleWaitingWritesS'])} s; progress writes ${String(row['progressWrites'])} (${round((100 * publishMs) / totalMs, 2)} % of the run); incremental syncs ${syncs.length} (${round(syncMs / 1000, 1)} s), ${deferredSyncs} deferred`,
      );
      return {
        row,
        rate: perSecond(arrivals, sentAt),
        rss: thin(
          during.map(([t, v]) => [round(t - sentAtS, 1), v]),
          600,
        ),
        msgsPerS,
        rssMedianMiB: rssMedian,
        rssQuartersMiB: quarters,
      };
    } finally {
      // Only reached with the daemon alive if something above threw.
      daemon.kill('SIGTERM');
      await daemon.done;
    }
  } finally {
    if (config !== undefined) rmSync(join(config, '..'), { recursive: true, force: true });
    await db.stop();
  }
}

const suite: Suite = {
  description:
    'broadcast to 100,000 and 1,000,000 users through the daemon (mailwheel start + broadcast send) into Postfix smtp-sink: msgs/s, time to first message, total time, daemon RSS over the run; vs smtp-source with the same sessions (physical limit)',
  async run(ctx: SuiteContext) {
    const { log } = ctx;
    const scale = scaleFor(ctx.quick);
    const sink = await SmtpSink.startWithTools(log);
    const tmp = mkdtempSync(join(tmpdir(), 'mailwheel-bench-broadcast-'));
    const rows: Row[] = [];
    const results: SizeResult[] = [];
    try {
      const files = { text: join(tmp, 'body.txt'), html: join(tmp, 'body.html') };
      writeFileSync(files.text, TEXT);
      writeFileSync(files.html, HTML);
      const sample = sampleMessage();
      const eml = join(tmp, 'message.eml');
      writeFileSync(eml, sample.replace(/\r\n/g, '\n'));

      log(`smtp-source: ${scale.sourceMessages.toLocaleString('en')} messages of ${sample.length} bytes, ${POOL} sessions...`);
      const before = sink.received();
      const source = await runSmtpSource({ port: sink.port, sessions: POOL, messages: scale.sourceMessages, file: eml });
      await new Promise((r) => setTimeout(r, 100));
      const sourceRate = scale.sourceMessages / source.seconds;
      rows.push({ case: 'smtp-source (physical limit)', users: scale.sourceMessages, received: sink.received() - before, seconds: round(source.seconds, 2), msgsPerS: Math.round(sourceRate), exit: source.exitCode });

      // The SMTP path alone (no database), before and after the broadcasts: the broadcasts are
      // compared with the faster of the two, so a machine slowing down mid-run does not flatter them.
      const content = compileTemplates({ subject: SUBJECT, text: TEXT, html: HTML }, 'broadcast');
      const path = async (when: string): Promise<number> => {
        log(`SMTP path (${when}): SendQueue + transport, ${scale.pathMessages.toLocaleString('en')} messages, pool ${POOL}...`);
        const p = await measureSendPath(sink, { pool: POOL, content, from: FROM, count: scale.pathMessages, maxSeconds: 120 });
        log(`  ${Math.round(p.msgsPerS)} msgs/s (${p.sent} sent, ${p.failed} failed)`);
        rows.push({ case: `SMTP path alone (${when})`, users: scale.pathMessages, received: p.sent, seconds: round(p.seconds, 2), msgsPerS: Math.round(p.msgsPerS), failed: p.failed, daemonCores: round(p.cpuMs / 1000 / p.seconds, 2) });
        return p.msgsPerS;
      };
      const pathBefore = await path('before');
      for (const n of scale.sizes) {
        const r = await measureSize(n, sink, files, scale, log);
        results.push(r);
        rows.push({ case: 'mailwheel broadcast', ...r.row });
      }
      const pathAfter = await path('after');
      const pathRate = Math.max(pathBefore, pathAfter);

      const [small, large] = results;
      const [nSmall, nLarge] = scale.sizes;
      const comparisons: Row[] = [];
      for (const [i, r] of results.entries()) {
        const n = String(scale.sizes[i]);
        comparisons.push(
          { comparison: `broadcast ${n} msgs/s / SMTP path alone msgs/s (the faster of before and after; goal >= 0.5)`, ratio: round(r.msgsPerS / pathRate, 3) },
          { comparison: `broadcast ${n} msgs/s / smtp-source msgs/s`, ratio: round(r.msgsPerS / sourceRate, 3) },
          { comparison: `daemon RSS during the ${n} broadcast: median of the last quarter / of the first`, ratio: round((r.rssQuartersMiB[3] ?? Number.NaN) / (r.rssQuartersMiB[0] ?? Number.NaN), 2) },
        );
      }
      if (small !== undefined && large !== undefined) {
        comparisons.push(
          { comparison: `daemon RSS median over the broadcast: ${String(nLarge)} / ${String(nSmall)} users (it holds every user's jobs)`, ratio: round(large.rssMedianMiB / small.rssMedianMiB, 2) },
          { comparison: `msgs/s: ${String(nLarge)} / ${String(nSmall)} users`, ratio: round(large.msgsPerS / small.msgsPerS, 2) },
        );
      }
      const series: Series[] = [];
      const label = (n: number) => (n >= 1_000_000 ? `${n / 1_000_000}m` : `${n / 1000}k`);
      if (large !== undefined && nLarge !== undefined) {
        series.push(
          { id: `broadcast-${label(nLarge)}`, title: `Broadcast to ${nLarge.toLocaleString('en')} users: messages received per second (since broadcast send)`, unit: 'messages/s', limit: null, points: large.rate },
          { id: `rss-${label(nLarge)}`, title: `Daemon RSS during the ${nLarge.toLocaleString('en')}-user broadcast (since broadcast send)`, unit: 'MiB', limit: null, points: large.rss },
        );
      }
      return {
        config: {
          sizes: scale.sizes,
          pool: POOL,
          rate: 'unlimited (perSecond null, perDay null)',
          broadcasts: { pollMs: POLL_MS, batchSize: 250, feedAhead: 100 },
          messageBytes: sample.length,
          smtpSourceMessages: scale.sourceMessages,
          smtpPathMessages: scale.pathMessages,
          rssSampleMs: RSS_SAMPLE_MS,
          sink: 'smtp-sink -c -u nobody -m 512 127.0.0.1:PORT 1024',
          daemonEnv: DAEMON_ENV,
        },
        rows,
        comparisons,
        notes: [
          'the daemon is the built CLI (`node dist/cli/main.js start`) in its own process; `broadcast send` is a second CLI process; each size gets a fresh FerretDB database (bench/lib/db.ts)',
          'users have one scheduled slot 12 hours from now, so no scheduled mail mixes into the broadcast; the daemon still holds their jobs in its registry, which is why its RSS grows with N',
          "SMTP path alone: mailwheel's SendQueue over its NodemailerTransport (SmtpPool, raw MIME) in the bench process, the daemon's pool size, no rate limit, the broadcast's own content to as many recipients, no database (bench/lib/send-path.ts); measured before and after the broadcasts, which are compared with the faster of the two",
          'msgsPerS = messages the sink received / (last arrival - first arrival); firstMsgS and totalS count from `broadcast send` (totalS ends when the broadcast document says done, polled every 0.5 s)',
          'rssPeakDuringMiB and rssQ1MiB..rssQ4MiB (medians of each quarter of the broadcast) are /proc VmRSS samples between `broadcast send` and its end, compared within the run (last quarter / first), not against a sample taken before start-up garbage was collected; rssHwmMiB is the kernel high-water mark over the whole process life (start-up sync included)',
          'daemonCores and dbCores = CPU time of the daemon and of the FerretDB process / wall time of the broadcast, sampled from /proc every 0.5 s (1.0 = one core busy); smtp-sink shares the same 2 cores',
          'progressWrites and progressWriteShare: the run\'s writes of its counters to the broadcast document (throttled to one per broadcasts.controlPollMs) and the wall time they took / the broadcast\'s, from the run\'s end log line; a write is a flush of outcomes and one update by _id, so its share of a core is at most that',
          'idleWaitingNextBatchS / idleWaitingWritesS: time the run had none of its messages in the send queue (SMTP idle for it), split by what it waited for: the next batch\'s read, ledger lookup and claim, or the oldest open batch\'s outcome, ledger and progress writes (from the run\'s end log line)',
          'incrementalSyncShare = wall time of the incremental user syncs that ended during the broadcast / the broadcast\'s; syncDaemonCores and syncDbCores = cores the daemon and FerretDB used while they ran (median over the syncs; compare with daemonCores and dbCores of the whole run)',
          'incrementalSyncsDeferred: ticks of the 5-minute incremental sync skipped during the broadcast because the last sync\'s time would have exceeded users.incrementalMaxShare (0.25) of the daemon\'s time (the next one reads the longer window)',
          'where the time goes (profiled on 2026-12-03: FerretDB\'s Go CPU profile during a run, MAILWHEEL_FERRETDB_DEBUG_ADDR; the daemon\'s --cpu-prof): the daemon and FerretDB together use more CPU per message than the SMTP path alone (compare daemonCpuPerMsgUs and dbCores with the path\'s cores), and with smtp-sink they fill the 2 cores. FerretDB spends about as much on reading the segment (each stored document decoded from JSON, the segment filter evaluated in Go: nothing but _id is pushed down) as on the three inserts per message through SQLite (claim, outcome record, event), plus its GC; the run\'s own pipeline waits little (idleWaiting* columns). At 1M the run also shares FerretDB with a scan counting the total at its start and with an incremental sync (incrementalSync* columns)',
          'users were last changed two hours before the run, so the incremental user syncs the daemon runs every 5 minutes (incrementalSyncs, from its log) read nobody; on FerretDB each is still a scan of the users collection',
        ],
        series,
      };
    } finally {
      await sink.stop();
      rmSync(tmp, { recursive: true, force: true });
    }
  },
};

export default suite;
