/**
 * Suite `peak`: the old design's worst minute, 100,000 sends due at 09:00 UTC (quick: 5,000),
 * through `mailwheel run-minute --at <that minute> --json` (the built CLI, its own process: full
 * user sync, bulk claims, SendQueue, outcomes recorded) into Postfix's `smtp-sink` on 127.0.0.1,
 * twice: with no rate limit and with 1,000/s. Each run gets a fresh MongoDB-wire database with the
 * same users, so both claim everything. Measured per run: time to the first message (from spawn,
 * and from the end of the daemon's user sync), claims per second, sends per second, total time,
 * peak RSS, what the report and the sink counted. Compared in the same run with `smtp-source`
 * (Postfix's C load generator) sending the same number of the same-size message with as many
 * sessions as the daemon's pool (the physical limit), and with the configured limit.
 *
 * The arrival times come from the sink's counter, read by this process, which does nothing else
 * while the daemon runs (the daemon is a child process), so they are exact to about a millisecond.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DateTime } from 'luxon';
import type { Document } from 'mongodb';
import { MimeBuilder } from '../src/adapters/smtp/mime.js';
import { scheduledKey } from '../src/core/delivery-key.js';
import { loadTemplates } from '../src/core/templates.js';
import type { MinuteReport } from '../src/app/app.js';
import { insertMany, startBenchDb } from './lib/db.js';
import { DAEMON_ENV, repoRoot, spawnMailwheel, writeConfig } from './lib/proc.js';
import { runSmtpSource, SmtpSink } from './lib/sink.js';
import { round, type Row, type Series, type Suite, type SuiteContext } from './lib/suite.js';
import { perSecond, slidingWindows } from './lib/windows.js';

/** The peak minute. Any instant works: run-minute sends what is due in it, whatever the clock says. */
const MINUTE = '2027-01-14T09:00:00Z';
/** Zones the users live in: their local slot differs, the UTC minute is the same (as in test/helpers/users.ts). */
const ZONES = ['UTC', 'America/New_York', 'Europe/Berlin', 'Asia/Kolkata', 'Asia/Kathmandu', 'Australia/Lord_Howe', 'America/Los_Angeles', 'Asia/Tokyo'];
/** The daemon's SMTP pool (config/default.json smtp.poolSize): smtp-source gets as many sessions. */
const POOL = 10;
const LIMIT = 1_000;
const FROM = 'mailwheel <noreply@example.com>';

interface Scale {
  users: number;
  /** A run that takes longer is stopped (SIGTERM by pid) and reported as such. */
  maxRunSeconds: number;
}

function scaleFor(quick: boolean): Scale {
  return quick ? { users: 5_000, maxRunSeconds: 120 } : { users: 100_000, maxRunSeconds: 600 };
}

/** Local `HH:mm` of MINUTE in each zone: every user's single slot falls in that one UTC minute. */
const LOCAL_SLOTS = ZONES.map((zone) => ({ zone, time: DateTime.fromISO(MINUTE, { zone: 'utc' }).setZone(zone).toFormat('HH:mm') }));

function dueUser(i: number): Document {
  const { zone, time } = LOCAL_SLOTS[i % LOCAL_SLOTS.length] ?? { zone: 'UTC', time: '09:00' };
  const id = `p${String(i).padStart(7, '0')}`;
  return { _id: id, email: `${id}@example.test`, name: `User ${i}`, active: true, timezone: zone, emailTimes: [time], updatedAt: new Date() };
}

/** One scheduled message as the daemon builds it (its template, its List-Unsubscribe header). */
function sampleMessage(): string {
  const builder = new MimeBuilder(loadTemplates(join(repoRoot, 'config', 'templates'), 'scheduled'), { from: FROM });
  const d = {
    key: scheduledKey('p0000001', '09:00', '2027-01-14'),
    kind: 'scheduled' as const,
    userId: 'p0000001',
    email: 'p0000001@example.test',
    name: 'User 1',
    slot: '09:00',
    localDate: '2027-01-14',
    timezone: 'UTC',
    dueAt: Date.parse(MINUTE),
  };
  return builder.build(d, { 'List-Unsubscribe': '<mailto:unsubscribe@example.com?subject=unsubscribe>' }).raw;
}


function parseReport(stdout: string): MinuteReport | undefined {
  const line = stdout.trim().split('\n').at(-1);
  try {
    return line === undefined ? undefined : (JSON.parse(line) as MinuteReport);
  } catch {
    return undefined;
  }
}

interface RunResult {
  row: Row;
  series: Series;
  sendsPerS: number;
  totalS: number;
}

/** One run: fresh database with the users, `run-minute` at `limit` (null: none), followed to its exit. */
async function measureRun(id: string, limit: number | null, sink: SmtpSink, scale: Scale, log: (line: string) => void): Promise<RunResult> {
  const db = await startBenchDb(`bench_peak_${id.replace(/\W/g, '_')}`, log);
  let config: string | undefined;
  try {
    log(`${id}: seeding ${scale.users.toLocaleString('en')} users due at ${MINUTE}...`);
    const seedS = await insertMany(db.db, 'users', scale.users, dueUser, log, 2000);
    config = writeConfig({
      mongodb: { uri: db.uri },
      smtp: { url: `smtp://127.0.0.1:${sink.port}`, poolSize: POOL },
      rate: { perSecond: limit, perDay: null },
      http: { enabled: false },
    });
    const before = sink.arrivals.length;
    log(`${id}: run-minute --at ${MINUTE} (rate ${limit === null ? 'unlimited' : `${limit}/s`})...`);
    const child = spawnMailwheel(['--config', config, 'run-minute', '--at', MINUTE, '--force', '--json']);
    const guard = setTimeout(() => child.kill('SIGTERM'), scale.maxRunSeconds * 1000);
    const done = await child.done;
    clearTimeout(guard);
    // The sink counts a message when it sees "."; give its last counter lines a moment to arrive.
    await new Promise((r) => setTimeout(r, 200));
    const report = parseReport(done.stdout);
    if (done.code !== 0 || report === undefined) log(`${id}: run-minute exited ${String(done.code ?? done.signal)}; stderr tail: ${done.stderr.slice(-1500)}`);

    const arrivals = sink.arrivals.slice(before);
    const first = arrivals[0] ?? Number.NaN;
    const last = arrivals[arrivals.length - 1] ?? Number.NaN;
    const sendingS = (last - first) / 1000;
    const sendsPerS = arrivals.length / sendingS;
    // Epoch ms of the first arrival, to set against the daemon's own wall-clock timings.
    const firstEpoch = performance.timeOrigin + first;
    const spawnEpoch = performance.timeOrigin + child.startedAt;
    const t = report?.timing;
    const claimS = t === undefined ? Number.NaN : t.claimMs / 1000;
    const window = limit === null ? undefined : slidingWindows(arrivals, 1000, limit);
    const row: Row = {
      run: id,
      limit: limit ?? 'none',
      due: report?.due ?? null,
      claimed: report?.claimed ?? null,
      sent: report?.sent ?? null,
      failed: report?.failed ?? null,
      sinkReceived: arrivals.length,
      seedS: round(seedS, 1),
      startupS: t === undefined ? null : round((t.startedAt - spawnEpoch) / 1000, 2),
      syncS: t === undefined ? null : round(t.syncMs / 1000, 2),
      firstSendS: round((first - child.startedAt) / 1000, 2),
      firstSendAfterSyncS: t === undefined ? null : round((firstEpoch - (t.startedAt + t.syncMs)) / 1000, 3),
      dispatchS: t === undefined ? null : round(t.dispatchMs / 1000, 2),
      claimS: round(claimS, 2),
      claimsPerS: Math.round((report?.claimed ?? 0) / claimS),
      claimWaitS: t === undefined ? null : round(t.claimWaitMs / 1000, 2),
      sendingS: round(sendingS, 1),
      sendsPerS: Math.round(sendsPerS),
      maxPer1sWindow: window?.max ?? null,
      windowsAboveLimit: window === undefined ? null : round(window.above / Math.max(1, window.windows), 4),
      runMinuteS: t === undefined ? null : round(t.totalMs / 1000, 1),
      totalS: round(done.seconds, 1),
      peakRssMiB: done.peakRssMiB,
      exit: done.code ?? String(done.signal),
    };
    log(`${id}: ${arrivals.length.toLocaleString('en')} received; first after ${row['firstSendS']} s, ${Math.round(sendsPerS)} sends/s, total ${round(done.seconds, 1)} s, peak RSS ${done.peakRssMiB} MiB`);
    return {
      row,
      // From the spawn, so the chart shows the start-up and sync before the first send.
      series: {
        id,
        title: `${scale.users.toLocaleString('en')} sends due in one minute, run-minute ${limit === null ? 'without a rate limit' : `at ${limit}/s`}: messages received per second since spawn`,
        unit: 'messages/s',
        limit,
        points: perSecond(arrivals, child.startedAt),
      },
      sendsPerS,
      totalS: done.seconds,
    };
  } finally {
    if (config !== undefined) rmSync(join(config, '..'), { recursive: true, force: true });
    await db.stop();
  }
}

const suite: Suite = {
  description:
    '100,000 sends due in one minute: mailwheel run-minute into Postfix smtp-sink without a rate limit and at 1,000/s (time to first send, claims/s, sends/s, total time, peak RSS) vs smtp-source with the same sessions (physical limit)',
  async run(ctx: SuiteContext) {
    const { log } = ctx;
    const scale = scaleFor(ctx.quick);
    const sink = await SmtpSink.startWithTools(log);
    const tmp = mkdtempSync(join(tmpdir(), 'mailwheel-bench-peak-'));
    try {
      const sample = sampleMessage();
      const eml = join(tmp, 'message.eml');
      // smtp-source appends CRLF to each line of the file itself.
      writeFileSync(eml, sample.replace(/\r\n/g, '\n'));
      log(`smtp-source: ${scale.users.toLocaleString('en')} messages of ${sample.length} bytes, ${POOL} sessions...`);
      const receivedBefore = sink.received();
      const source = await runSmtpSource({ port: sink.port, sessions: POOL, messages: scale.users, file: eml });
      await new Promise((r) => setTimeout(r, 200));
      const sourceRate = scale.users / source.seconds;
      const sourceRow: Row = { run: 'smtp-source (physical limit)', limit: 'none', sinkReceived: sink.received() - receivedBefore, sendsPerS: Math.round(sourceRate), totalS: round(source.seconds, 2), exit: source.exitCode };

      const unlimited = await measureRun('unlimited', null, sink, scale, log);
      const limited = await measureRun(`limit-${LIMIT}`, LIMIT, sink, scale, log);
      const idealLimitedS = scale.users / LIMIT;
      return {
        config: {
          users: scale.users,
          minute: MINUTE,
          zones: LOCAL_SLOTS,
          pool: POOL,
          limits: [null, LIMIT],
          messageBytes: sample.length,
          smtpSourceSessions: POOL,
          sink: 'smtp-sink -c -u nobody -m 512 127.0.0.1:PORT 1024',
          daemonEnv: DAEMON_ENV,
        },
        rows: [sourceRow, unlimited.row, limited.row],
        comparisons: [
          { comparison: 'unlimited sends/s / smtp-source msgs/s (same sessions, same message size)', ratio: round(unlimited.sendsPerS / sourceRate, 3) },
          { comparison: `limit-${LIMIT} sends/s / configured limit`, ratio: round(limited.sendsPerS / LIMIT, 3) },
          { comparison: `limit-${LIMIT} total s / ${scale.users} at exactly ${LIMIT}/s (${idealLimitedS} s)`, ratio: round(limited.totalS / idealLimitedS, 2) },
          { comparison: 'unlimited total s / smtp-source s', ratio: round(unlimited.totalS / source.seconds, 1) },
        ],
        notes: [
          `every user has one slot that falls at ${MINUTE}, in ${ZONES.length} time zones; each run gets a fresh FerretDB database (bench/lib/db.ts) with the same users, so both runs claim and send all of them`,
          'run-minute is the built CLI (`node dist/cli/main.js run-minute --json`) in its own process: connect, full user sync, bulk claims (1,000 keys per insertMany) interleaved with sending, outcomes and events written, exit',
          'startupS = spawn until runMinute starts (Node start, MongoDB connect, indexes, suppressions); syncS, dispatchS, claimS, claimWaitS and runMinuteS are the daemon\'s own timings (MinuteReport.timing); dispatchS runs from the end of the sync until every delivery is claimed and queued; claimS is the time the bulk claims (1,000 keys each) took, so claimsPerS = claimed / claimS is the claim store\'s speed; claimWaitS is the part of it the feed waited for (the dispatcher claims the next chunk while feeding the current one)',
          'firstSendS counts from spawn; firstSendAfterSyncS from the end of the sync (daemon wall clock against this process\'s, same machine); sendsPerS = sink arrivals / (last - first arrival); totalS = spawn to exit',
          'maxPer1sWindow and windowsAboveLimit: the busiest sliding one-second window of arrivals, and the share of windows (one starting at each arrival) holding more than the limit. Arrival times are when this process read the sink\'s counter; with run-minute, FerretDB and the sink on the same 2 cores some readings come late and push messages into a later window. The rate suite measures that lateness and undoes it (cappedSlidingMax): the queue itself holds the limit exactly',
          'peakRssMiB is the kernel high-water mark (VmHWM) of the run-minute process',
        ],
        series: [unlimited.series, limited.series],
      };
    } finally {
      await sink.stop();
      rmSync(tmp, { recursive: true, force: true });
    }
  },
};

export default suite;
