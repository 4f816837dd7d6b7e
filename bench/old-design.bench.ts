/**
 * Suite `old-design`: the failure mailwheel was built to fix, replayed on this machine.
 *
 * 10,000 active users (quick: 1,000), every one with the slot 09:00 UTC, and an SMTP server that,
 * like a provider, serves at most 50 connections at once (smtp-server `maxClients: 50`, in its own
 * process: bench/workers/old-design-server.ts). The same minute is sent twice, each time to a
 * fresh server:
 *
 * 1. the old design, reimplemented here as faithfully as docs/ARCHITECTURE.md's table describes it (see
 *    `oldDesign` below): the first 1,000 users only, one new SMTP connection per message, every
 *    send at once at 09:00 with no limit and no retry, one analytics write per event;
 * 2. mailwheel as it ships: the built CLI `run-minute --at <09:00>` with its default pool of 10
 *    connections and no rate limit.
 *
 * Per design: users in the database, users served (distinct recipients the server accepted),
 * failures, users never attempted, wall time, events written, connections opened, the peak
 * number of concurrent connections the server saw, and connections it refused.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Db, Document } from 'mongodb';
import nodemailer from 'nodemailer';
import { scheduledKey } from '../src/core/delivery-key.js';
import { loadTemplates, type TemplateSet } from '../src/core/templates.js';
import type { Delivery } from '../src/core/types.js';
import type { MinuteReport } from '../src/app/app.js';
import { insertMany, startBenchDb, userDoc } from './lib/db.js';
import { mailOptions } from './lib/fixtures.js';
import { repoRoot, spawnMailwheel, writeConfig } from './lib/proc.js';
import { round, type Row, type Suite } from './lib/suite.js';
import type { ServerReport } from './workers/old-design-server.js';

/** The 09:00 of the failure (a Friday; the users have no weekday restriction). */
const MINUTE = '2027-01-15T09:00:00Z';
const SLOT = '09:00';
const LOCAL_DATE = '2027-01-15';
/** Concurrent connections the server serves; the 51st at once is answered 421. */
const MAX_CLIENTS = 50;
const SERVER = join(repoRoot, 'bench', 'workers', 'old-design-server.ts');
/** Each design's run is given up (and reported as unfinished) after this long. */
const MAX_RUN_SECONDS = 120;

interface Scale {
  users: number;
  /** The old design's `to_list(N)` cap. */
  oldCap: number;
}

const FULL: Scale = { users: 10_000, oldCap: 1_000 };
const QUICK: Scale = { users: 1_000, oldCap: 100 };

// ---------------------------------------------------------------------------------------------
// The server child

/** The old-design-server child: started per design, asked for its counters, stopped by its pid. */
class ServerChild {
  readonly port: number;
  readonly #child: ChildProcess;
  readonly #lines: AsyncIterator<string>;
  readonly #exited: Promise<void>;

  private constructor(child: ChildProcess, lines: AsyncIterator<string>, port: number, exited: Promise<void>) {
    this.#child = child;
    this.#lines = lines;
    this.port = port;
    this.#exited = exited;
  }

  static async start(maxClients: number): Promise<ServerChild> {
    // The server exits by itself after this long, whatever happens here.
    const args = JSON.stringify({ maxClients, maxSeconds: 3 * MAX_RUN_SECONDS + 60 });
    const child = spawn(process.execPath, ['--import', 'tsx', SERVER, args], { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-4000)));
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    if (child.stdout === null) throw new Error('old-design-server has no stdout');
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const first = await Promise.race([
      lines.next(),
      new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`old-design-server did not start in 30 s: ${stderr}`)), 30_000).unref()),
      exited.then(() => Promise.reject(new Error(`old-design-server exited at start: ${stderr}`))),
    ]);
    const ready = first.done === true ? undefined : (JSON.parse(first.value) as { ready?: boolean; port?: number });
    if (ready?.ready !== true || ready.port === undefined) throw new Error(`old-design-server: unexpected first line ${JSON.stringify(first.value)}`);
    return new ServerChild(child, lines, ready.port, exited);
  }

  get pid(): number {
    return this.#child.pid ?? -1;
  }

  /** The server's counters right now. */
  async report(): Promise<ServerReport> {
    this.#child.stdin?.write('report\n');
    const next = await this.#lines.next();
    if (next.done === true) throw new Error('old-design-server closed its output');
    return JSON.parse(next.value) as ServerReport;
  }

  /**
   * Asks for the counters once every connection is closed (a client's QUIT and the server's
   * close race the moment the client reports done), waiting at most `timeoutMs`.
   */
  async settledReport(timeoutMs = 3_000): Promise<ServerReport> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const r = await this.report();
      if (r.openTcp === 0 || performance.now() > deadline) return r;
      await new Promise((res) => setTimeout(res, 50));
    }
  }

  /** "stop" on stdin, then SIGKILL by pid if it has not exited within 3 s. */
  async stop(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    this.#child.stdin?.end('stop\n');
    const timer = setTimeout(() => {
      if (this.#child.exitCode === null && this.#child.signalCode === null) process.kill(this.pid, 'SIGKILL');
    }, 3_000);
    await this.#exited;
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------
// The old design

interface OldDesignResult {
  usersLoaded: number;
  sent: number;
  failed: number;
  /** Sends that had not settled when the run was given up. */
  unsettled: number;
  eventsWritten: number;
  /** Failure reasons (first line of the error, numbers masked) and how often each occurred. */
  reasons: Map<string, number>;
  seconds: number;
}

/** The delivery the old design renders for one user document. */
function deliveryOf(user: Document, dueAt: number): Delivery {
  const id = String(user['_id']);
  return {
    key: scheduledKey(id, SLOT, LOCAL_DATE),
    kind: 'scheduled',
    userId: id,
    email: String(user['email']),
    name: typeof user['name'] === 'string' ? user['name'] : undefined,
    slot: SLOT,
    localDate: LOCAL_DATE,
    timezone: 'UTC',
    dueAt,
  };
}

/** The error's first sentence: nodemailer repeats the server's reply after a colon. */
function reasonOf(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return (msg.split('\n')[0] ?? '').split(': ')[0]?.slice(0, 160) ?? '';
}

/**
 * The old design, faithful in each point of docs/ARCHITECTURE.md's table of failures:
 *
 * - users: `find({active: true})` read with `to_list(1000)`: one query, the first 1,000
 *   documents, everyone after them silently dropped (here `.limit(cap).toArray()`, the same
 *   request on the wire);
 * - scheduling: every user's job fires at 09:00, so every send starts at the same moment, with
 *   no rate limit and no concurrency bound (one async task per user, all started together);
 * - SMTP: for each user a NEW nodemailer transport without `pool`, so one connection per message
 *   (connect, greeting, EHLO, MAIL, RCPT, DATA, QUIT), nodemailer's default timeouts, no retry:
 *   a failed send is final;
 * - the message: the template rendered to strings per user and built into MIME by nodemailer
 *   (`sendMail` with subject/text/html), the old path of the mime suite;
 * - analytics: one `insertOne` per event (here one event per outcome, sent or failed), awaited
 *   by the send's task, straight into an events collection.
 */
async function oldDesign(db: Db, port: number, templates: TemplateSet, cap: number): Promise<OldDesignResult> {
  const dueAt = Date.parse(MINUTE);
  const t0 = performance.now();
  const users = await db.collection('users').find({ active: true }).limit(cap).toArray();
  const events = db.collection('old_events');
  let sent = 0;
  let failed = 0;
  let eventsWritten = 0;
  const reasons = new Map<string, number>();

  const sendOne = async (user: Document): Promise<void> => {
    const d = deliveryOf(user, dueAt);
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true });
    let status: 'sent' | 'failed';
    let reason: string | undefined;
    try {
      await transport.sendMail(mailOptions(d, templates));
      status = 'sent';
      sent++;
    } catch (err) {
      status = 'failed';
      failed++;
      reason = reasonOf(err);
      reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
    } finally {
      transport.close();
    }
    await events.insertOne({ type: status, userId: d.userId, email: d.email, at: new Date(), ...(reason === undefined ? {} : { reason }) });
    eventsWritten++;
  };

  // 09:00: all jobs fire together.
  const all = Promise.all(users.map((u) => sendOne(u).catch(() => undefined)));
  const deadline = new Promise<void>((r) => setTimeout(r, MAX_RUN_SECONDS * 1000).unref());
  await Promise.race([all, deadline]);
  const seconds = (performance.now() - t0) / 1000;
  return { usersLoaded: users.length, sent, failed, unsettled: users.length - sent - failed, eventsWritten, reasons, seconds };
}

// ---------------------------------------------------------------------------------------------
// mailwheel

interface MailwheelResult {
  report: MinuteReport;
  seconds: number;
  exitCode: number | null;
  eventsWritten: number;
}

/** `mailwheel run-minute --at 09:00 --json`, the built CLI, default pool, no rate limit. */
async function mailwheel(db: Db, dbUri: string, port: number, log: (line: string) => void): Promise<MailwheelResult> {
  const smtpUrl = `smtp://127.0.0.1:${port}`;
  const config = writeConfig({
    mongodb: { uri: dbUri },
    smtp: { url: smtpUrl },
    rate: { perSecond: null, perDay: null },
    http: { enabled: false },
  });
  try {
    // The env repeats the URIs: MONGODB_URI / SMTP_URL in the caller's environment would
    // otherwise override the config file.
    const cli = spawnMailwheel(['--config', config, 'run-minute', '--at', MINUTE, '--force', '--json'], { MONGODB_URI: dbUri, SMTP_URL: smtpUrl });
    const guard = setTimeout(() => cli.kill('SIGTERM'), MAX_RUN_SECONDS * 1000);
    const fin = await cli.done;
    clearTimeout(guard);
    const line = fin.stdout.trim().split('\n').pop() ?? '';
    if (fin.code !== 0 || !line.startsWith('{')) throw new Error(`mailwheel run-minute exited ${String(fin.code ?? fin.signal)}; stderr tail:\n${fin.stderr.slice(-2000)}`);
    const warnings = fin.stderr.split('\n').filter((l) => l.includes('"level":40') || l.includes('"level":50')).length;
    if (warnings > 0) log(`  mailwheel logged ${warnings} warning/error lines`);
    const eventsWritten = await db.collection('mailwheel_events').countDocuments({});
    return { report: JSON.parse(line) as MinuteReport, seconds: fin.seconds, exitCode: fin.code, eventsWritten };
  } finally {
    rmSync(dirname(config), { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------

function serverColumns(s: ServerReport): Row {
  return {
    accepted: s.accepted,
    duplicateRecipients: s.duplicateRecipients,
    tcpConnections: s.tcpConnections,
    peakConcurrentTcp: s.peakConcurrentTcp,
    peakConcurrentSessions: s.peakConcurrentSessions,
    refused: s.refused,
  };
}

const suite: Suite = {
  description:
    'The original failure (10,000 active users all at 09:00, server capped at 50 connections): a faithful reimplementation of the old design (to_list(1000), one connection per message, no limit, one write per event) against mailwheel run-minute (pool of 10)',
  async run({ log, quick }) {
    const scale = quick ? QUICK : FULL;
    const bench = await startBenchDb('bench_old_design', log);
    const rows: Row[] = [];
    const comparisons: Row[] = [];
    const notes: string[] = [];
    try {
      log(`inserting ${scale.users} active users, slot ${SLOT} UTC...`);
      await insertMany(bench.db, 'users', scale.users, (i) => userDoc(i, { time: SLOT }), log);
      const usersInDb = await bench.db.collection('users').countDocuments({ active: true });
      // The same text for both designs: mailwheel's packaged scheduled template.
      const templates = loadTemplates(join(repoRoot, 'config', 'templates'), 'scheduled');

      log(`old design: first ${scale.oldCap} users, one connection per message, all at once...`);
      const oldServer = await ServerChild.start(MAX_CLIENTS);
      let old: OldDesignResult;
      let oldSeen: ServerReport;
      try {
        old = await oldDesign(bench.db, oldServer.port, templates, scale.oldCap);
        oldSeen = await oldServer.settledReport();
      } finally {
        await oldServer.stop();
      }
      log(`  ${old.sent} sent, ${old.failed} failed, ${old.unsettled} unsettled in ${round(old.seconds, 2)} s; server: ${JSON.stringify(oldSeen)}`);

      log('mailwheel: run-minute, pool 10, no rate limit...');
      const newServer = await ServerChild.start(MAX_CLIENTS);
      let mw: MailwheelResult;
      let mwSeen: ServerReport;
      try {
        mw = await mailwheel(bench.db, bench.uri, newServer.port, log);
        mwSeen = await newServer.settledReport();
      } finally {
        await newServer.stop();
      }
      log(`  ${JSON.stringify(mw.report)} in ${round(mw.seconds, 2)} s; server: ${JSON.stringify(mwSeen)}`);

      rows.push(
        {
          design: 'old (reimplemented)',
          usersInDb,
          usersLoaded: old.usersLoaded,
          usersServed: oldSeen.uniqueRecipients,
          failures: old.failed,
          unsettled: old.unsettled,
          neverAttempted: usersInDb - old.usersLoaded,
          wallSeconds: round(old.seconds, 2),
          minuteSeconds: round(old.seconds, 2),
          eventsWritten: old.eventsWritten,
          eventWriteCalls: old.eventsWritten,
          ...serverColumns(oldSeen),
        },
        {
          design: 'mailwheel run-minute',
          usersInDb,
          usersLoaded: mw.report.due,
          usersServed: mwSeen.uniqueRecipients,
          failures: mw.report.failed,
          unsettled: mw.report.claimed - mw.report.sent - mw.report.failed,
          neverAttempted: usersInDb - mw.report.sent - mw.report.failed,
          wallSeconds: round(mw.seconds, 2),
          minuteSeconds: mw.report.timing?.totalMs === undefined ? null : round(mw.report.timing.totalMs / 1000, 2),
          eventsWritten: mw.eventsWritten,
          eventWriteCalls: null,
          ...serverColumns(mwSeen),
        },
      );
      comparisons.push({
        usersInDb,
        'old served': oldSeen.uniqueRecipients,
        'mailwheel served': mwSeen.uniqueRecipients,
        'old served %': round((100 * oldSeen.uniqueRecipients) / usersInDb, 1),
        'mailwheel served %': round((100 * mwSeen.uniqueRecipients) / usersInDb, 1),
        'old wall s': round(old.seconds, 2),
        'mailwheel wall s': round(mw.seconds, 2),
        'mailwheel minute s': mw.report.timing?.totalMs === undefined ? null : round(mw.report.timing.totalMs / 1000, 2),
        'old connections': oldSeen.tcpConnections,
        'mailwheel connections': mwSeen.tcpConnections,
      });
      const topReasons = [...old.reasons.entries()].sort((a, b) => b[1] - a[1]).slice(0, 3);
      notes.push(
        `old design failures by reason: ${topReasons.length === 0 ? 'none' : topReasons.map(([r, n]) => `${n} x "${r}"`).join('; ')}`,
        `faithful means, point by point from docs/ARCHITECTURE.md: users read with one find({active: true}) capped at ${scale.oldCap} (the old to_list(1000)${quick ? ', scaled to 100 in quick mode' : ''}), every later user silently dropped; all sends started at the same instant with no limit; a new non-pooled nodemailer transport per message (one SMTP connection each, default timeouts, no retry); MIME built by nodemailer sendMail from the rendered template; one insertOne per outcome event, awaited by the send`,
        `server: smtp-server in its own process, maxClients ${MAX_CLIENTS} (a connection that makes more than ${MAX_CLIENTS} sessions open is answered "421 Too many connected clients" and closed before its greeting; counted as refused), no STARTTLS, no reverse lookup, accepts and discards every message; a fresh server per design`,
        'usersServed = distinct recipients the server accepted a message for; duplicateRecipients = recipients who got more than one',
        'old wallSeconds: from the users query to the last event written (this process); mailwheel wallSeconds: the whole CLI process (node start-up, MongoDB connect, full user sync, claims, sends, analytics flush, exit); minuteSeconds: run-minute\'s own timing.totalMs (sync, claims and sends until every outcome is recorded; the old design\'s wall time again for its row)',
        `mailwheel: built CLI dist/cli/main.js run-minute --at ${MINUTE} --json, config/default.json with rate.perSecond = null, rate.perDay = null, http disabled (pool of 10 connections, retries on); eventsWritten = documents in mailwheel_events after the run (batched insertMany, analytics.flushEvents 500), eventWriteCalls is not measured for it`,
        'users: userDoc() from bench/lib/db.ts (active, UTC, emailTimes ["09:00"]); both designs send mailwheel\'s packaged scheduled template; both read the same users collection (FerretDB unless MONGODB_URI is set)',
      );
      return {
        config: { users: scale.users, oldCap: scale.oldCap, maxClients: MAX_CLIENTS, minute: MINUTE, mailwheelPoolSize: 10, db: bench.kind, maxRunSeconds: MAX_RUN_SECONDS },
        rows,
        comparisons,
        notes,
      };
    } finally {
      await bench.stop();
    }
  },
};

export default suite;
