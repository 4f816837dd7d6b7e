/**
 * Planning a local-time broadcast, as processes against the real MongoDB-wire server:
 * - `broadcast send --dry-run --local-time HH:MM --on DATE` prints the segment's users per UTC
 *   hour and per zone, checked against an expectation computed here independently (Intl's
 *   formatter, minute by minute: the first minute at which the zone's clock on DATE reads HH:MM or
 *   later), for zones with +5:30, +5:45 and +10:30/+11 offsets, a DST gap and a missing zone; and it
 *   writes nothing;
 * - `plan` counts a queued local-time broadcast's wave in its per-minute curve and warns where the
 *   wave plus a scheduled peak are more than the rate sends in that minute.
 */
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Document } from 'mongodb';
import { MongoBroadcastStore } from '../../src/adapters/mongo/broadcast-store.js';
import { broadcastUsers, insertUsers, writeBodies } from '../helpers/broadcasts.js';
import { PLAN_COLOURS } from '../../src/charts/plan-chart.js';
import { runCli, writeTestConfig } from '../helpers/cli.js';
import { testDb, type TestDb } from '../helpers/db.js';
import { parseSvg, plotSpan, valueAxis } from '../helpers/svg.js';

const EX_USAGE = 64;
const MINUTE = 60_000;
const HOUR = 3_600_000;

/** `YYYY-MM-DD HH:MM` on `zone`'s clock at instant `t`, by Intl (not luxon, not fire-time.ts). */
const formatters = new Map<string, Intl.DateTimeFormat>();
function wallClock(zone: string, t: number): string {
  let f = formatters.get(zone);
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' });
    formatters.set(zone, f);
  }
  const p = Object.fromEntries(f.formatToParts(t).map((x) => [x.type, x.value]));
  return `${p['year']}-${p['month']}-${p['day']} ${p['hour']}:${p['minute']}`;
}

/** The first whole minute at which `zone`'s clock reads `date time` or later. */
function expectedInstant(zone: string, date: string, time: string): number {
  const target = `${date} ${time}`;
  const day = Date.parse(`${date}T00:00:00Z`);
  for (let t = day - 16 * HOUR; t < day + 40 * HOUR; t += MINUTE) if (wallClock(zone, t) >= target) return t;
  throw new Error(`no instant for ${zone} ${target}`);
}

/** Recipients per UTC hour (and zones per hour) from users per zone, by {@link expectedInstant}. */
function expectedHours(perZone: Record<string, number>, date: string, time: string): Array<{ hour: string; users: number; zones: number }> {
  const hours = new Map<number, { users: number; zones: number }>();
  for (const [zone, n] of Object.entries(perZone)) {
    const h = Math.floor(expectedInstant(zone, date, time) / HOUR) * HOUR;
    const cur = hours.get(h) ?? { users: 0, zones: 0 };
    hours.set(h, { users: cur.users + n, zones: cur.zones + 1 });
  }
  return [...hours.entries()].sort((a, b) => a[0] - b[0]).map(([h, v]) => ({ hour: new Date(h).toISOString(), ...v }));
}

interface DryRunJson {
  matching: number;
  localTime: {
    time: string;
    date: string;
    users: number;
    zones: number;
    invalidZone: { users: number; values: string[] };
    hours: Array<{ hour: string; users: number; zones: number }>;
    perZone: Array<{ zone: string; users: number; at: string; offset: string; localTime: string }>;
  };
}

describe('broadcast send --dry-run --local-time', () => {
  // In the segment (plan "pro"): users per zone; "UTC" stands for users without a timezone field.
  const ZONES: Record<string, number> = {
    'Asia/Kolkata': 40, // +05:30
    'Asia/Kathmandu': 30, // +05:45
    'Australia/Lord_Howe': 10, // +11:00 in March (+10:30 in winter)
    'America/New_York': 20, // springs forward on 2027-03-14: 02:30 does not exist
    'America/St_Johns': 12, // -03:30, springs forward the same day
    'Europe/Berlin': 15,
    UTC: 5,
  };
  let db: TestDb;
  let env: Record<string, string>;
  let bodies: { textFile: string };

  beforeAll(async () => {
    db = await testDb('local_time_dry_run');
    const config = writeTestConfig({ http: { enabled: false } });
    env = { MONGODB_URI: db.uri, MAILWHEEL_CONFIG: config, LOG_LEVEL: 'warn' };
    bodies = writeBodies(config);
    const docs: Document[] = [];
    for (const [zone, n] of Object.entries(ZONES)) {
      for (const d of broadcastUsers(n, `${zone.replace(/\W/g, '')}-`, () => ({ plan: 'pro', timezone: zone }))) {
        if (zone === 'UTC') delete d['timezone'];
        docs.push(d);
      }
    }
    docs.push(...broadcastUsers(3, 'mars-', () => ({ plan: 'pro', timezone: 'Mars/Olympus_Mons' })));
    docs.push(...broadcastUsers(2, 'num-', () => ({ plan: 'pro', timezone: 42 })));
    docs.push(...broadcastUsers(25, 'free-', () => ({ plan: 'free', timezone: 'Asia/Tokyo' }))); // outside the segment
    await insertUsers(db.db, docs);
  });

  afterAll(async () => {
    await db?.cleanup();
  });

  /** Every collection with its document count: what "writes nothing" is checked against. */
  const snapshot = async (): Promise<Record<string, number>> => {
    const out: Record<string, number> = {};
    for (const c of await db.db.listCollections({}, { nameOnly: true }).toArray()) out[c.name] = await db.db.collection(c.name).countDocuments();
    return out;
  };

  const dryRun = (...extra: string[]) => runCli(['broadcast', 'send', '--subject', 'Hi {{name}}', '--text-file', bodies.textFile, '--segment', '{"plan": "pro"}', '--dry-run', ...extra], env);

  for (const time of ['02:30', '09:00']) {
    it(`--local-time ${time} --on 2027-03-14: per UTC hour and per zone as Intl places them; nothing written`, { timeout: 120_000 }, async () => {
      const before = await snapshot();
      const r = await dryRun('--local-time', time, '--on', '2027-03-14', '--json');
      expect(r.code, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout) as DryRunJson;
      const total = Object.values(ZONES).reduce((a, b) => a + b, 0);
      expect(out.matching).toBe(total + 5);
      expect(out.localTime).toMatchObject({ time, date: '2027-03-14', users: total, zones: Object.keys(ZONES).length });
      expect(out.localTime.invalidZone.users).toBe(5);
      expect(out.localTime.hours).toEqual(expectedHours(ZONES, '2027-03-14', time));
      const perZone = Object.fromEntries(out.localTime.perZone.map((z) => [z.zone, z]));
      for (const [zone, n] of Object.entries(ZONES)) {
        expect(perZone[zone], zone).toMatchObject({ users: n, at: new Date(expectedInstant(zone, '2027-03-14', time)).toISOString() });
      }
      expect(perZone['Asia/Kolkata']?.offset).toBe('+05:30');
      expect(perZone['Asia/Kathmandu']?.offset).toBe('+05:45');

      const text = await dryRun('--local-time', time, '--on', '2027-03-14');
      expect(text.code, text.stderr).toBe(0);
      expect(text.stdout).toContain('dry run: nothing was written');
      expect(text.stdout).toContain(`local time  ${time} on 2027-03-14 in each recipient's zone: ${total} users in 7 zones`);
      expect(text.stdout).toContain('invalid zone 5 users');
      // One bar line per expected hour, with its count.
      const rows = [...text.stdout.matchAll(/^ {2}(\d{4}-\d\d-\d\d \d\d:\d\d)Z +█+ +([\d,]+) {2}\((\d+) zones?\)$/gm)].map((m) => ({ hour: `${(m[1] ?? '').replace(' ', 'T')}:00.000Z`, users: Number(m[2]), zones: Number(m[3]) }));
      expect(rows).toEqual(expectedHours(ZONES, '2027-03-14', time));
      for (const zone of ['Asia/Kolkata', 'Asia/Kathmandu']) {
        const at = new Date(expectedInstant(zone, '2027-03-14', time)).toISOString().slice(0, 16).replace('T', ' ');
        expect(text.stdout).toMatch(new RegExp(`^ {2}${at}Z {2}\\+05:(30|45) +${ZONES[zone]} {2}${zone}`, 'm'));
      }
      if (time === '02:30') expect(text.stdout).toMatch(/ America\/New_York \(02:30 does not exist that day, sent at 03:00\)/);
      expect(await snapshot()).toEqual(before);
      expect(Object.keys(before).filter((n) => n.startsWith('mailwheel_broadcast'))).toEqual([]);
    });
  }

  it('bad --local-time or --on exits 64 naming the option, before anything is read or written', { timeout: 60_000 }, async () => {
    const before = await snapshot();
    const cases = [
      [['--local-time', '9:00'], '--local-time: "9:00" is not HH:MM'],
      [['--local-time', '24:00'], '--local-time: "24:00" is not HH:MM'],
      [['--local-time', '09:00', '--on', '2027-02-30'], '--on: "2027-02-30" is not a date'],
      [['--local-time', '09:00', '--on', '14.03.2027'], '--on: "14.03.2027" is not a date'],
      [['--on', '2027-03-14'], '--on: only with --local-time'],
      [['--local-time', '09:00', '--on', '2020-01-01'], 'that moment has passed in every time zone'],
    ] as const;
    const results = await Promise.all(cases.map(([args]) => dryRun(...args)));
    cases.forEach(([args, says], i) => {
      expect(results[i]?.code, `${args.join(' ')}: ${results[i]?.stderr}`).toBe(EX_USAGE);
      expect(results[i]?.stderr).toContain(says);
    });
    expect(await snapshot()).toEqual(before);
  });

  it('a time inside quietHours.broadcasts is pointed out: the instants are then the earliest', { timeout: 60_000 }, async () => {
    const quiet = { ...env, MAILWHEEL_CONFIG: writeTestConfig({ http: { enabled: false }, quietHours: { broadcasts: { start: '21:00', end: '08:00', maxHoldMinutes: 720 } } }) };
    const args = ['broadcast', 'send', '--subject', 'S', '--text-file', bodies.textFile, '--dry-run', '--on', '2027-03-14'];
    const [inside, outside] = await Promise.all([runCli([...args, '--local-time', '02:30'], quiet), runCli([...args, '--local-time', '09:00', '--json'], quiet)]);
    expect(inside.code, inside.stderr).toBe(0);
    expect(inside.stdout).toContain('note: 02:30 is inside quietHours.broadcasts (21:00-08:00)');
    expect(outside.code, outside.stderr).toBe(0);
    expect((JSON.parse(outside.stdout) as { localTime: { quiet: string | null } }).localTime.quiet).toBeNull();
  });

  it('without --on the date is tomorrow’s UTC date', { timeout: 60_000 }, async () => {
    const startedAt = Date.now();
    const r = await dryRun('--local-time', '09:00', '--json');
    expect(r.code, r.stderr).toBe(0);
    const date = (JSON.parse(r.stdout) as DryRunJson).localTime.date;
    // Tomorrow when the command ran (the test may straddle midnight UTC).
    expect([new Date(startedAt + 86_400_000).toISOString().slice(0, 10), new Date(Date.now() + 86_400_000).toISOString().slice(0, 10)]).toContain(date);
  });
});

interface PlanJson {
  total: number;
  perMinute: Array<{ minute: string; sends: number; broadcast?: number }>;
  broadcasts?: Array<{ id: string; status: string; users: number; zones: number; inPlan: number }>;
  collisions?: Array<{ minute: string; broadcast: number; scheduled: number; minuteCapacity: number; drainSeconds: number; drainsBy: string; waves: Array<{ id: string; users: number; zones: string[] }> }>;
}

describe('plan with a queued local-time broadcast', () => {
  const RATE = 5; // 300 sends a minute
  const DATE = '2027-01-15';
  const FROM = `${DATE}T00:00:00Z`;
  // Users per zone, each with one scheduled slot; the broadcast goes to all of them at 09:00 local.
  const USERS = [
    { zone: 'Asia/Kolkata', n: 200, slot: '09:00' }, // scheduled at the same instant as the wave: 400 in one minute
    { zone: 'Asia/Kathmandu', n: 50, slot: '12:00' },
    { zone: 'Europe/Berlin', n: 100, slot: '18:00' },
  ];
  let db: TestDb;
  let env: Record<string, string>;
  const plan = async (...extra: string[]) => runCli(['plan', '--from', FROM, '--hours', '24', ...extra], env);

  beforeAll(async () => {
    db = await testDb('local_time_plan');
    const config = writeTestConfig({ http: { enabled: false }, rate: { perSecond: RATE, perDay: null } });
    env = { MONGODB_URI: db.uri, MAILWHEEL_CONFIG: config, LOG_LEVEL: 'warn' };
    for (const u of USERS) await insertUsers(db.db, broadcastUsers(u.n, `${u.zone.replace(/\W/g, '')}-`, () => ({ plan: 'pro', timezone: u.zone, emailTimes: [u.slot] })));
  });

  afterAll(async () => {
    await db?.cleanup();
  });

  it('adds the wave at each zone’s instant and warns once, where it meets the scheduled peak beyond the rate', { timeout: 120_000 }, async () => {
    // Scheduled only: no broadcast key, no local-time line.
    const bare = await plan('--json');
    expect(bare.code, bare.stderr).toBe(0);
    const scheduledOnly = JSON.parse(bare.stdout) as PlanJson;
    expect(Object.keys(scheduledOnly)).not.toContain('broadcasts');
    expect(Object.keys(scheduledOnly)).not.toContain('collisions');
    expect(scheduledOnly.perMinute.every((p) => !('broadcast' in p))).toBe(true);
    const bareText = await plan();
    expect(bareText.stdout).not.toMatch(/local-time|warning/);

    const store = new MongoBroadcastStore(db.db, 'mailwheel_');
    const queued = await store.create({ subject: 'S', text: 'T', segment: '{"plan":"pro"}', localTime: { time: '09:00', date: DATE } });
    const cancelled = await store.create({ subject: 'S', text: 'T', segment: '{}', localTime: { time: '03:30', date: DATE } });
    await store.update(cancelled._id, { status: 'cancelled' });

    const r = await plan('--json');
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as PlanJson;
    // Expected: each zone's scheduled slot and its wave, placed by Intl.
    const expected = new Map<string, { sends: number; broadcast: number }>();
    const add = (t: number, n: number, wave: boolean) => {
      const key = new Date(t).toISOString();
      const cur = expected.get(key) ?? { sends: 0, broadcast: 0 };
      expected.set(key, { sends: cur.sends + n, broadcast: cur.broadcast + (wave ? n : 0) });
    };
    for (const u of USERS) {
      add(expectedInstant(u.zone, DATE, u.slot), u.n, false);
      add(expectedInstant(u.zone, DATE, '09:00'), u.n, true);
    }
    expect(new Map(out.perMinute.map((p) => [p.minute, { sends: p.sends, broadcast: p.broadcast }]))).toEqual(expected);
    expect(out.total).toBe(2 * 350);
    expect(out.broadcasts).toEqual([expect.objectContaining({ id: queued._id, status: 'queued', users: 350, zones: 3, inPlan: 350 })]);

    // Asia/Kolkata at 09:00 local: 200 scheduled + 200 broadcast = 400 > 300 a minute; out after 400 / 5 = 80 s.
    const kolkata = expectedInstant('Asia/Kolkata', DATE, '09:00');
    expect(out.collisions).toEqual([
      {
        minute: new Date(kolkata).toISOString(),
        broadcast: 200,
        scheduled: 200,
        backlogAtStart: 0,
        minuteCapacity: RATE * 60,
        drainSeconds: 80,
        drainsBy: new Date(kolkata + 80_000).toISOString(),
        waves: [{ id: queued._id, users: 200, zones: ['Asia/Kolkata'] }],
      },
    ]);

    const svg = join(tmpdir(), `mailwheel-plan-waves-${process.pid}.svg`);
    const text = await plan('--svg', svg);
    expect(text.code, text.stderr).toBe(0);
    // The picture stacks the broadcasts' share on the scheduled sends: the orange layer reaches
    // the busiest minute's total, the scheduled layer under it only the scheduled sends.
    const picture = parseSvg(readFileSync(svg, 'utf8'));
    const axis = valueAxis(picture, plotSpan(picture).left);
    const top = (colour: string) => Math.min(...picture.paths.filter((p) => p.fill === colour && p.points.length > 2).flatMap((p) => p.points.map((q) => q[1])));
    expect(Math.abs(top(PLAN_COLOURS.broadcast) - axis.y(Math.max(...out.perMinute.map((p) => p.sends))))).toBeLessThan(0.6);
    expect(Math.abs(top(PLAN_COLOURS.scheduled) - axis.y(Math.max(...out.perMinute.map((p) => p.sends - (p.broadcast ?? 0)))))).toBeLessThan(0.6);
    expect(picture.texts.map((t) => t.text)).toContain('local-time broadcasts');
    const minute = new Date(kolkata).toISOString().slice(0, 16);
    expect(text.stdout).toContain(`warning: ${minute}Z: broadcast ${queued._id} (200 in Asia/Kolkata) + 200 scheduled = 400 sends, more than the 300 a minute takes at 5/s; scheduled mail goes first and the wave's last message goes by ${new Date(kolkata + 80_000).toISOString().slice(11, 19)}`);
    expect(text.stdout.match(/^warning:/gm)).toHaveLength(1);
    expect(text.stdout).toContain(`${queued._id} (queued): 09:00 local on ${DATE}, 350 users in 3 zones`);
    expect(text.stdout).toContain('700 sends due from 2027-01-15T00:00Z over 24 h, 350 of them to local-time broadcasts');
    expect(text.stdout).not.toContain(cancelled._id);
  });
});
