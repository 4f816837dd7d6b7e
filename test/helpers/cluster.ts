/**
 * Set-up shared by the multi-daemon acceptance tests (test/cli/cluster*.test.ts): users all due in
 * one UTC minute far enough ahead for the daemons to start, and the scheduler checkpoint that lets
 * a daemon that starts late still fire that minute (start-up catch-up), so a slow start on a loaded
 * machine delays the run instead of losing it. The daemons, the capturing SMTP server and the
 * figures are in scripts/lib (mailwheel-cluster.ts, arrival-capture.ts, arrivals.ts), shared with
 * the `scale` bench.
 */
import type { Db } from 'mongodb';
import { startArrivalCapture, type ArrivalCapture } from '../../scripts/lib/arrival-capture.js';
import { MailwheelCluster } from '../../scripts/lib/mailwheel-cluster.js';
import { testCliEntry } from './cli-build.js';
import { testDb, type TestDb } from './db.js';
import { usersDueAt } from './users.js';

const MINUTE_MS = 60_000;

/** The start of the first UTC minute at least `leadMs` from now (epoch ms). */
export function minuteAfter(leadMs: number): number {
  return Math.ceil((Date.now() + leadMs) / MINUTE_MS) * MINUTE_MS;
}

/**
 * Inserts `n` active users whose single slot falls at `minuteMs` (8 time zones), in batches, and
 * a scheduler checkpoint at the minute before now. Returns their addresses.
 */
export async function seedDueUsers(db: Db, n: number, minuteMs: number, prefix: string): Promise<string[]> {
  const users = usersDueAt(n, new Date(minuteMs).toISOString(), prefix);
  for (let i = 0; i < users.length; i += 2000) await db.collection('users').insertMany(users.slice(i, i + 2000), { ordered: false });
  const lastMinute = Math.floor(Date.now() / MINUTE_MS) - 1;
  await db.collection<{ _id: string; lastMinute: number; updatedAt: Date }>('mailwheel_state').updateOne({ _id: 'scheduler' }, { $set: { lastMinute, updatedAt: new Date() } }, { upsert: true });
  return users.map((u) => String(u['email']));
}

/** One line for the test log, prefixed so the figures are easy to find in a CI run. */
export function report(test: string, figures: Record<string, unknown>): void {
  console.log(`[cluster] ${test}: ${JSON.stringify(figures)}`);
}

/** One acceptance run: a database, the capturing SMTP server, `users` due at `dueAt`, and the daemons. */
export interface ClusterRun {
  db: TestDb;
  smtp: ArrivalCapture;
  cluster: MailwheelCluster;
  recipients: string[];
  dueAt: number;
  /** Stops the daemons (by pid), the SMTP server and the database. */
  stop(): Promise<void>;
}

/**
 * Seeds `users` due in the first minute at least `leadMs` ahead, then starts `daemons` daemons on
 * `redisUrl` with `config`, and waits until every one of them has started (a generous bound).
 */
export async function startClusterRun(opts: { name: string; users: number; prefix: string; leadMs: number; daemons: number; redisUrl: string; config: Record<string, unknown> }): Promise<ClusterRun> {
  const db = await testDb(opts.name);
  const smtp = await startArrivalCapture();
  const dueAt = minuteAfter(opts.leadMs);
  const recipients = await seedDueUsers(db.db, opts.users, dueAt, opts.prefix);
  const cluster = new MailwheelCluster({ n: opts.daemons, mongoUri: db.uri, smtpUrl: smtp.url, redisUrl: opts.redisUrl, config: opts.config, cli: testCliEntry, log: (line) => console.log(`[cluster] ${line}`) });
  const run: ClusterRun = {
    db,
    smtp,
    cluster,
    recipients,
    dueAt,
    async stop() {
      await cluster.stopAll();
      await smtp.stop();
      await db.cleanup();
    },
  };
  try {
    await cluster.waitStarted(240_000);
  } catch (err) {
    await run.stop();
    throw err;
  }
  return run;
}
