/**
 * Local-time broadcasts and quiet hours in the App (FerretDB, the test SMTP server), on a clock
 * the test drives (FakeClock): the broadcast rolls around the globe while the test moves time
 * from one expected instant to the next and, at each, lets the daemon settle (its poll takes the
 * broadcast up, the run sends what is due and ends waiting for the next instant). Every message
 * the SMTP server receives while the clock stands at T was sent at T.
 *
 * The expected instants are computed here INDEPENDENTLY of core/fire-time.ts and
 * core/send-window.ts: a minute-by-minute search with Intl.DateTimeFormat of the first minute at
 * which the recipient's local clock reads what the rule says.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BroadcastDoc } from '../../src/ports/broadcasts.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { broadcastUsers, getBroadcast, insertUsers, perUser } from '../helpers/broadcasts.js';
import { testDb, type TestDb } from '../helpers/db.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { TestSmtpServer } from '../helpers/smtp-server.js';

const MINUTE = 60_000;
const POLL_MS = 10_000;

let db: TestDb;
let smtp: TestSmtpServer | undefined;
let t: TestApp | undefined;
beforeEach(async () => {
  db = await testDb('localtime');
});
afterEach(async (ctx) => {
  if (ctx.task.result?.state === 'fail') for (const l of t?.logs.filter((x) => x.level >= 40 || /broadcast/.test(x.msg)).slice(0, 15) ?? []) console.log(JSON.stringify(l).slice(0, 600));
  await t?.app.close();
  t = undefined;
  await smtp?.close();
  smtp = undefined;
  await db?.cleanup();
});

const formatters = new Map<string, Intl.DateTimeFormat>();
/** The local date `YYYY-MM-DD` and time `HH:MM` in `zone` at `ms`, by Intl. */
function localAt(zone: string, ms: number): { date: string; hm: string } {
  let f = formatters.get(zone);
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-CA', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    formatters.set(zone, f);
  }
  const p = Object.fromEntries(f.formatToParts(ms).map((x) => [x.type, x.value]));
  return { date: `${p['year']}-${p['month']}-${p['day']}`, hm: `${p['hour']}:${p['minute']}` };
}

/** The first minute at which `zone`'s clock, on local `date`, reads `time` or later (or is past `date`). */
function expectedFire(zone: string, date: string, time: string): number {
  const midnight = Date.parse(`${date}T00:00:00Z`);
  for (let ms = midnight - 15 * 60 * MINUTE; ms < midnight + 40 * 60 * MINUTE; ms += MINUTE) {
    const l = localAt(zone, ms);
    if ((l.date === date && l.hm >= time) || l.date > date) return ms;
  }
  throw new Error(`no fire found for ${zone} ${date} ${time}`);
}

const quiet = (hm: string): boolean => hm >= '21:00' || hm < '08:00';

/** The first minute from `from` at which `zone`'s local time is outside 21:00-08:00. */
function expectedRelease(zone: string, from: number): number {
  for (let ms = from; ms < from + 24 * 60 * MINUTE; ms += MINUTE) if (!quiet(localAt(zone, ms).hm)) return ms;
  throw new Error(`no end of quiet hours for ${zone}`);
}

/** Waits (real time) for the supervisor to be idle at the clock's current instant. */
async function settle(app: TestApp['app']): Promise<void> {
  const deadline = Date.now() + 180_000;
  for (;;) {
    await app.broadcasts.poll();
    if (app.broadcasts.running().length === 0) {
      await app.broadcasts.poll();
      if (app.broadcasts.running().length === 0) return;
    }
    if (Date.now() > deadline) throw new Error(`broadcast still running after 180 s at one clock instant: ${JSON.stringify(app.broadcasts.running())}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

interface Receipt {
  count: number;
  /** The clock when the SMTP server first had it. */
  at: number;
}

/**
 * Moves the clock through every expected instant E (sorted): to E - 1 minute (nothing of E may
 * arrive then), then to E + one poll interval (a poll tick falls in between: it must take the
 * broadcast up). After each move the daemon settles; what arrived meanwhile is stamped with the
 * clock. Checks at every step that exactly the users due by then have it.
 */
async function drive(a: { app: TestApp['app']; clock: FakeClock; smtp: TestSmtpServer; id: string; expected: ReadonlyMap<string, number>; onWave?: (at: number, doc: BroadcastDoc) => void }): Promise<Map<string, Receipt>> {
  const { app, clock, id, expected } = a;
  const got = new Map<string, Receipt>();
  let seen = 0;
  const collect = (): void => {
    const prefix = `b:${id}:`;
    for (const m of a.smtp.messages.slice(seen)) {
      const key = m.headers.get('x-mailwheel-key') ?? '';
      if (!key.startsWith(prefix)) continue;
      const user = key.slice(prefix.length);
      const r = got.get(user);
      if (r === undefined) got.set(user, { count: 1, at: clock.now() });
      else r.count++;
    }
    seen = a.smtp.messages.length;
  };
  const dueBy = (ms: number): string[] => [...expected].filter(([, e]) => e <= ms).map(([u]) => u).sort();
  await settle(app);
  collect();
  expect([...got.keys()].sort(), `at start ${new Date(clock.now()).toISOString()}`).toEqual(dueBy(clock.now()));
  const instants = [...new Set(expected.values())].filter((e) => e > clock.now()).sort((x, y) => x - y);
  for (const e of instants) {
    const before = e - MINUTE;
    if (before > clock.now()) {
      await clock.advanceAsync(before - clock.now());
      await settle(app);
      collect();
      expect([...got.keys()].sort(), `a minute before ${new Date(e).toISOString()}`).toEqual(dueBy(before));
    }
    await clock.advanceAsync(e + POLL_MS - clock.now());
    await settle(app);
    collect();
    expect([...got.keys()].sort(), `at ${new Date(e).toISOString()} + one poll`).toEqual(dueBy(clock.now()));
    a.onWave?.(e, await getBroadcast(db.db, id));
  }
  return got;
}

describe('local-time broadcasts in the App, clock driven by the test', () => {
  it('5,000 users in 12 zones get it once each, within the minute their own clock reads 02:30 on 29 March 2026', { timeout: 900_000 }, async () => {
    // 29 March 2026: Europe/London changes to BST at 01:00 UTC (02:30 exists: BST); Europe/Berlin
    // jumps 02:00 -> 03:00 (02:30 is in the gap). Half- and quarter-hour zones, both date lines.
    const zones = ['Pacific/Kiritimati', 'Australia/Sydney', 'Asia/Tokyo', 'Asia/Kathmandu', 'Asia/Kolkata', 'Europe/Berlin', 'Europe/London', 'UTC', 'America/St_Johns', 'America/New_York', 'Pacific/Honolulu', 'Pacific/Pago_Pago'];
    const date = '2026-03-29';
    const time = '02:30';
    const users = broadcastUsers(5_000, 'z', (i) => (i === 0 ? { timezone: undefined } : { timezone: zones[i % zones.length] }));
    delete users[0]?.['timezone']; // no zone field: read as UTC, like scheduled mail
    await insertUsers(db.db, [...users, ...broadcastUsers(1, 'bad', () => ({ timezone: 'Mars/Olympus' }))]);
    const fireOf = new Map(zones.map((z) => [z, expectedFire(z, date, time)]));
    // The facts the test is about, as the independent search sees them.
    expect(new Date(fireOf.get('Europe/Berlin') ?? 0).toISOString()).toBe('2026-03-29T01:00:00.000Z');
    expect(new Date(fireOf.get('Europe/London') ?? 0).toISOString()).toBe('2026-03-29T01:30:00.000Z');
    expect(new Date(fireOf.get('Asia/Kathmandu') ?? 0).toISOString()).toBe('2026-03-28T20:45:00.000Z');
    const expected = new Map(users.map((u, i) => [String(u['_id']), fireOf.get(i === 0 ? 'UTC' : (zones[i % zones.length] as string)) as number]));

    smtp = await TestSmtpServer.start();
    const clock = new FakeClock('2026-03-28T12:00:00Z');
    t = await startTestApp(db.uri, smtp.url, { broadcasts: { batchSize: 500, pollMs: POLL_MS, controlPollMs: 1_000, maxConcurrent: 1 } }, { clock });
    const { app } = t;
    const doc = await app.store.broadcasts.create({ subject: 'Good morning {{name}}', text: 'Hello', segment: '{}', localTime: { time, date } });
    app.broadcasts.start();

    let waves = 0;
    const got = await drive({
      app,
      clock,
      smtp,
      id: doc._id,
      expected,
      onWave: (at, d) => {
        waves++;
        const later = [...fireOf.values()].filter((e) => e > at);
        if (later.length > 0) {
          // Waiting for the next zone's instant, persisted on the document; per-zone progress.
          expect(d.status).toBe('running');
          expect(d.nextAt?.getTime(), `nextAt after ${new Date(at).toISOString()}`).toBe(Math.min(...later));
          const byZone = new Map((d.zones ?? []).map((z) => [z.zone, z]));
          expect(byZone.size).toBe(12);
          for (const [zone, e] of fireOf) {
            const z = byZone.get(zone);
            expect(z?.at.getTime(), zone).toBe(e);
            expect(z?.done, zone).toBe(e <= at ? z?.users : 0);
          }
        }
      },
    });
    expect(waves).toBe(12);
    // What each wave costs (it re-reads the segment and re-claims those done): run times, real ms.
    const starts = t.logs.filter((l) => l.msg === 'broadcast run started').map((l) => l['time'] as number);
    const ends = t.logs.filter((l) => l.msg === 'broadcast run ended').map((l) => l['time'] as number);
    const runMs = ends.map((e, i) => e - (starts[i] ?? e));
    console.log(`local time: ${runMs.length} runs for 12 waves of 5,000 users; run ms ${runMs.join(' ')}; total ${runMs.reduce((x, y) => x + y, 0)} ms`);
    const late: string[] = [];
    for (const [user, e] of expected) {
      const r = got.get(user);
      if (r === undefined || r.count !== 1 || r.at < e || r.at >= e + MINUTE) late.push(`${user}: ${JSON.stringify(r)} expected ${new Date(e).toISOString()}`);
    }
    expect(late.slice(0, 5), `${late.length} users not received exactly once within their minute`).toEqual([]);
    expect(got.size).toBe(5_000);
    const end = await getBroadcast(db.db, doc._id);
    expect(end.status).toBe('done');
    expect(end.counters).toMatchObject({ sent: 5_000, failed: 0, skipped: 1, suppressed: 0, total: 5_001 });
    expect(end.zones?.map((z) => z.done).reduce((x, y) => x + y, 0)).toBe(5_000);
    await app.analytics.flush();
    const invalid = await db.db.collection('mailwheel_events').countDocuments({ type: 'invalid', userId: 'bad000000' });
    expect(invalid, 'the user with an unknown zone reported once').toBe(1);
  });

  it('pause while waiting holds the next wave past its instant; resume sends it at once; cancel stops the rest', { timeout: 600_000 }, async () => {
    const zones = ['Asia/Tokyo', 'UTC', 'America/New_York'];
    const users = broadcastUsers(300, 'p', (i) => ({ timezone: zones[i % zones.length] }));
    await insertUsers(db.db, users);
    const [date, time] = ['2026-01-15', '09:00'];
    const fire = zones.map((z) => expectedFire(z, date, time)); // 00:00Z, 09:00Z, 14:00Z
    const zoneOf = (user: string): string => zones[users.findIndex((u) => String(u['_id']) === user) % zones.length] as string;
    smtp = await TestSmtpServer.start();
    const clock = new FakeClock(fire[0] as number);
    t = await startTestApp(db.uri, smtp.url, { broadcasts: { batchSize: 100, pollMs: POLL_MS, controlPollMs: 1_000, maxConcurrent: 1 } }, { clock });
    const { app } = t;
    const { broadcasts } = app.store;
    const doc = await broadcasts.create({ subject: 'News', text: 'Hello', segment: '{}', localTime: { time, date } });
    const server = smtp;
    const received = (): string[] => [...perUser(server, doc._id).keys()];
    app.broadcasts.start();
    await settle(app);
    expect(new Set(received().map(zoneOf))).toEqual(new Set(['Asia/Tokyo']));
    expect((await getBroadcast(db.db, doc._id)).nextAt?.getTime()).toBe(fire[1]);

    await broadcasts.requestControl(doc._id, 'pause');
    await settle(app);
    expect((await getBroadcast(db.db, doc._id)).status).toBe('paused');
    await clock.advanceAsync((fire[1] as number) + 30 * MINUTE - clock.now());
    await settle(app);
    expect(received(), 'nothing while paused, though UTC is due').toHaveLength(100);
    const paused = await getBroadcast(db.db, doc._id);
    expect(paused.status).toBe('paused');
    expect(paused.nextAt?.getTime(), 'the next instant is kept').toBe(fire[1]);

    await broadcasts.requestControl(doc._id, 'resume');
    await clock.advanceAsync(POLL_MS);
    await settle(app);
    expect(received(), 'UTC sent at the resume, late and once').toHaveLength(200);
    expect(new Set(received().map(zoneOf))).toEqual(new Set(['Asia/Tokyo', 'UTC']));
    expect((await getBroadcast(db.db, doc._id)).nextAt?.getTime()).toBe(fire[2]);

    await broadcasts.requestControl(doc._id, 'cancel');
    await clock.advanceAsync((fire[2] as number) + POLL_MS - clock.now());
    await settle(app);
    const end = await getBroadcast(db.db, doc._id);
    expect(end.status).toBe('cancelled');
    expect(received(), 'New York never: cancelled while waiting').toHaveLength(200);
    expect(smtp.messages.length, 'nobody twice').toBe(200);
  });

  it('quiet hours 21:00-08:00, broadcast started at 20:59 UTC: nobody gets it inside their window; each held one within a minute after 08:00 local', { timeout: 600_000 }, async () => {
    const zones = ['UTC', 'Europe/London', 'Europe/Berlin', 'Asia/Tokyo', 'Asia/Kolkata', 'Asia/Kathmandu', 'Australia/Sydney', 'Pacific/Auckland', 'America/New_York', 'America/Los_Angeles'];
    const users = broadcastUsers(1_000, 'q', (i) => ({ timezone: zones[i % zones.length] }));
    await insertUsers(db.db, users);
    const start = Date.parse('2026-01-15T20:59:00Z');
    const expected = new Map(users.map((u) => [String(u['_id']), expectedRelease(String(u['timezone']), start)]));
    // Some are held (Tokyo, Kolkata, Kathmandu, Berlin, Sydney a minute), some go at once.
    expect(new Set(expected.values()).size).toBeGreaterThanOrEqual(5);

    smtp = await TestSmtpServer.start();
    const clock = new FakeClock(start);
    t = await startTestApp(db.uri, smtp.url, { broadcasts: { batchSize: 200, pollMs: POLL_MS, controlPollMs: 1_000, maxConcurrent: 1 }, quietHours: { broadcasts: { start: '21:00', end: '08:00', maxHoldMinutes: 720 } } }, { clock });
    const { app } = t;
    const doc = await app.store.broadcasts.create({ subject: 'News', text: 'Hello', segment: '{}' });
    app.broadcasts.start();
    const got = await drive({ app, clock, smtp, id: doc._id, expected });

    const wrong: string[] = [];
    for (const u of users) {
      const id = String(u['_id']);
      const zone = String(u['timezone']);
      const r = got.get(id);
      const e = expected.get(id) as number;
      const local = r === undefined ? undefined : localAt(zone, r.at).hm;
      if (r === undefined || r.count !== 1 || local === undefined || quiet(local) || r.at < e || r.at >= e + MINUTE) wrong.push(`${id} ${zone}: ${JSON.stringify(r)} local ${local ?? '-'} expected ${new Date(e).toISOString()}`);
    }
    expect(wrong.slice(0, 5), `${wrong.length} users wrong`).toEqual([]);
    const end = await getBroadcast(db.db, doc._id);
    expect(end.status).toBe('done');
    expect(end.counters).toMatchObject({ sent: 1_000, missed: 0, skipped: 0 });
  });
});
