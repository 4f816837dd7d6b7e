/**
 * A restart does not reset the day window (issue 13, without Redis): `rate.perDay` 30 and three
 * `run-minute` processes in a row, each with 40 users due (the real CLI, FerretDB, a real SMTP
 * server). The first sends 30 and gives up on the rest; the next two start with the 30 sends the
 * delivery records hold in the last day and send nothing: the server receives 30 in all, the rest
 * are left unsent with their claims released (exit 75), and a later budget sends them. Before the
 * restore each process had a fresh day (90 sent).
 *
 * The same with the daemon: 40 users due 3 minutes ago, re-fired by the start-up catch-up, and a
 * daemon started three times (SIGTERM in between): the server receives 30 (before: 40, the second
 * daemon sent the 10 the first had released).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, spawnCli, writeTestConfig, type CliProcess, type CliResult } from '../helpers/cli.js';
import { testDb, type TestDb } from '../helpers/db.js';
import { TestSmtpServer } from '../helpers/smtp-server.js';
import { usersDueAt } from '../helpers/users.js';

const EX_TEMPFAIL = 75;
const MINUTE_MS = 60_000;
const PER_DAY = 30;
const DUE = 40;
const currentMinute = Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS;
/** Three recent minutes (inside the catch-up lookback), one per process. */
const MINUTES = [4, 3, 2].map((ago) => new Date(currentMinute - ago * MINUTE_MS).toISOString());

let db: TestDb;
let smtp: TestSmtpServer;

/** perSecond 20: grants of one message each, so the last tokens of the day are granted too. */
const config = (perDay: number) => writeTestConfig({ rate: { perSecond: 20, perDay }, http: { enabled: false } });
const run = (minute: string, configFile: string): Promise<CliResult> =>
  runCli(['run-minute', '--at', minute, '--give-up-after', '5s', '--json'], { MONGODB_URI: db.uri, SMTP_URL: smtp.url, MAILWHEEL_CONFIG: configFile, LOG_LEVEL: 'info' });

/** The start-up line saying what was restored of the day window. */
function restoredDay(r: CliResult): unknown {
  const line = r.stderr.split('\n').find((l) => l.includes('rate windows restored'));
  return line === undefined ? undefined : (JSON.parse(line) as { perDay?: unknown }).perDay;
}

const deliveries = () => db.db.collection('mailwheel_deliveries');

beforeAll(async () => {
  db = await testDb('rate_restart');
  smtp = await TestSmtpServer.start();
  await db.db.collection('users').insertMany(MINUTES.flatMap((m, i) => usersDueAt(DUE, m, `r${i}_`)));
});

afterAll(async () => {
  await smtp?.close();
  await db?.cleanup();
});

describe('rate.perDay across restarts (no Redis)', () => {
  it(`three processes in a row, ${DUE} due each, perDay ${PER_DAY}: the server receives ${PER_DAY} in all, the rest unsent with claims released`, async () => {
    const limited = config(PER_DAY);
    const results: CliResult[] = [];
    for (const minute of MINUTES) {
      const r = await run(minute, limited);
      results.push(r);
      // Each gives up with mail left unsent: the day's budget is spent.
      expect(r.code, r.stderr.slice(-2000)).toBe(EX_TEMPFAIL);
    }
    const [first, second, third] = results.map((r) => JSON.parse(r.stdout.trim()) as Record<string, unknown>);
    expect(first).toMatchObject({ due: DUE, claimed: DUE, sent: PER_DAY, failed: 0, released: DUE - PER_DAY, unsent: DUE - PER_DAY });
    expect(second).toMatchObject({ due: DUE, claimed: DUE, sent: 0, released: DUE, unsent: DUE });
    expect(third).toMatchObject({ due: DUE, claimed: DUE, sent: 0, released: DUE, unsent: DUE });
    expect(results.map(restoredDay)).toEqual([
      { limit: PER_DAY, used: 0, left: PER_DAY },
      { limit: PER_DAY, used: PER_DAY, left: 0 },
      { limit: PER_DAY, used: PER_DAY, left: 0 },
    ]);
    expect(results[1]?.stderr).toMatch(new RegExp(`run-minute .* gave up .*: ${DUE} left unsent \\(${DUE} claims released\\)`));

    // At the server, and in the records: 30 sent, and only their claims remain.
    expect(smtp.messages).toHaveLength(PER_DAY);
    expect(await deliveries().countDocuments({ type: 'done', status: 'sent' })).toBe(PER_DAY);
    expect(await deliveries().countDocuments({ type: 'done', status: { $ne: 'sent' } })).toBe(0);
    expect(await deliveries().countDocuments({ type: 'claim' })).toBe(PER_DAY);

    // A dry run sends nothing: it does not read the delivery records to restore the windows.
    const dry = await runCli(['run-minute', '--at', MINUTES[0] as string, '--dry-run', '--json'], { MONGODB_URI: db.uri, SMTP_URL: smtp.url, MAILWHEEL_CONFIG: limited, LOG_LEVEL: 'info' });
    expect(dry.code, dry.stderr.slice(-2000)).toBe(0);
    expect(restoredDay(dry)).toBeUndefined();
  });

  it('a larger budget (a later day) sends what was left, counting what the day already sent', async () => {
    const r = await run(MINUTES[1] as string, config(PER_DAY + DUE + 5));
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    expect(restoredDay(r)).toEqual({ limit: PER_DAY + DUE + 5, used: PER_DAY, left: DUE + 5 });
    expect(JSON.parse(r.stdout.trim())).toMatchObject({ due: DUE, claimed: DUE, sent: DUE, skipped: 0 });
    expect(smtp.messages).toHaveLength(PER_DAY + DUE);
    expect(smtp.countByRecipient().size).toBe(PER_DAY + DUE);
  });
});

describe('rate.perDay across daemon restarts (no Redis)', () => {
  let ddb: TestDb;
  let dsmtp: TestSmtpServer;
  let daemon: CliProcess | undefined;
  /** Due 3 minutes ago: inside the catch-up grace period (15 min), so each start re-fires it. */
  const due = new Date(currentMinute - 3 * MINUTE_MS).toISOString();

  beforeAll(async () => {
    ddb = await testDb('rate_restart_daemon');
    dsmtp = await TestSmtpServer.start();
    await ddb.db.collection('users').insertMany(usersDueAt(DUE, due, 'd'));
    // A checkpoint before that minute: as if a daemon had run until just before it.
    await ddb.db.collection<{ _id: string; lastMinute: number; updatedAt: Date }>('mailwheel_state').insertOne({ _id: 'scheduler', lastMinute: (currentMinute - 3 * MINUTE_MS) / MINUTE_MS - 1, updatedAt: new Date() });
  });

  afterAll(async () => {
    if (daemon && daemon.child.exitCode === null) daemon.child.kill('SIGKILL');
    await dsmtp?.close();
    await ddb?.cleanup();
  });

  interface Stats {
    sends: { submitted: number; sent: number };
    queue: { waiting: number };
  }

  /** Starts the daemon, waits until its `/stats` satisfy `settled`, stops it (SIGTERM). */
  async function startAndStop(configFile: string, settled: (s: Stats) => boolean): Promise<{ restored: unknown; stats: Stats }> {
    const d = (daemon = spawnCli(['start'], { MONGODB_URI: ddb.uri, SMTP_URL: dsmtp.url, MAILWHEEL_CONFIG: configFile, LOG_LEVEL: 'info' }));
    await d.waitForLog('mailwheel started', 90_000);
    const port = Number(/"port":(\d+),"msg":"http listening"/.exec(d.stderr)?.[1]);
    const read = async () => (await (await fetch(`http://127.0.0.1:${port}/stats`)).json()) as Stats;
    let stats = await read();
    for (const deadline = Date.now() + 60_000; !settled(stats) && Date.now() < deadline; stats = await read()) await new Promise((r) => setTimeout(r, 100));
    d.child.kill('SIGTERM');
    const done = await d.done;
    expect(done.code, done.stderr.slice(-2000)).toBe(0);
    return { restored: restoredDay(done), stats };
  }

  it(`a daemon started three times within the day, perDay ${PER_DAY}, ${DUE} due: the server receives ${PER_DAY}`, { timeout: 300_000 }, async () => {
    const limited = writeTestConfig({ rate: { perSecond: 20, perDay: PER_DAY }, http: { enabled: true, host: '127.0.0.1', port: 0 } });
    // First start: the 40 re-fired, 30 sent, 10 waiting for the day's budget (released at the stop).
    const first = await startAndStop(limited, (st) => st.sends.sent >= PER_DAY);
    expect(dsmtp.messages).toHaveLength(PER_DAY);
    // Two restarts: each re-claims the 10 released and starts with the day's 30 sends: sends nothing.
    const restarts = [];
    for (let i = 0; i < 2; i++) restarts.push(await startAndStop(limited, (st) => st.sends.submitted >= DUE - PER_DAY));

    expect(dsmtp.messages).toHaveLength(PER_DAY);
    const deliveries = ddb.db.collection('mailwheel_deliveries');
    expect(await deliveries.countDocuments({ type: 'done', status: 'sent' })).toBe(PER_DAY);
    // The 10 unsent: no claim left behind (released at each stop), so a later day sends them.
    expect(await deliveries.countDocuments({ type: 'claim' })).toBe(PER_DAY);
    for (const r of restarts) expect(r.stats.sends).toMatchObject({ submitted: DUE - PER_DAY, sent: 0 });
    expect([first, ...restarts].map((r) => r.restored)).toEqual([
      { limit: PER_DAY, used: 0, left: PER_DAY },
      { limit: PER_DAY, used: PER_DAY, left: 0 },
      { limit: PER_DAY, used: PER_DAY, left: 0 },
    ]);
  });
});
