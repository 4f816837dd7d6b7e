/**
 * `mailwheel plan` (issue 5) on 10,000 seeded users, as processes:
 * - its per-minute counts agree with a brute-force count of the same users' next fires, made here
 *   independently with fire-time's `nextFire` per user and slot;
 * - for a busy minute, the drain time it predicts at a rate limit matches a measured `run-minute`
 *   of that minute at the same limit within 10 %, and run-minute sends exactly the count it planned.
 * Also: --svg writes a picture (read back: the capacity line, the claimed layer), the terminal
 * output has the chart and the peak lines.
 */
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { nextFire } from '../../src/core/fire-time.js';
import { checkUser } from '../../src/core/validate-user.js';
import { loadConfig } from '../../src/config/load.js';
import { PLAN_COLOURS } from '../../src/charts/plan-chart.js';
import { runCli, writeTestConfig } from '../helpers/cli.js';
import { testDb, type TestDb } from '../helpers/db.js';
import { TestSmtpServer } from '../helpers/smtp-server.js';
import { isRoundScale, parseSvg, plotSpan, valueAxis } from '../helpers/svg.js';

const FROM = '2027-02-01T00:00:00Z';
const HOURS = 24;
const RATE = 40;

let db: TestDb;
let smtp: TestSmtpServer;
let env: Record<string, string>;
/** What `seed-users --json` reported. */
let seeded: { active: number; inactive: number; invalid: number };

interface PlanJson {
  total: number;
  users: { scheduled: number; invalid: number; inactive: number; documents: number };
  alreadyClaimed: number;
  perMinute: Array<{ minute: string; sends: number }>;
  peaks: Array<{ minute: string; sends: number; backlogAtStart: number; drainSeconds: number; drainsBy: string; ratePerSecond: number }>;
}

beforeAll(async () => {
  db = await testDb('plan');
  smtp = await TestSmtpServer.start();
  const config = writeTestConfig({ smtp: { poolSize: 10 }, rate: { perSecond: RATE, perDay: null }, http: { enabled: false } });
  env = { MONGODB_URI: db.uri, SMTP_URL: smtp.url, MAILWHEEL_CONFIG: config, LOG_LEVEL: 'warn' };
  const seed = await runCli(['seed-users', '10000', '--seed', '11', '--inactive-ratio', '0.05', '--invalid-ratio', '0.01', '--json'], env);
  expect(seed.code, seed.stderr).toBe(0);
  seeded = JSON.parse(seed.stdout) as typeof seeded;
});

afterAll(async () => {
  await smtp?.close();
  await db?.cleanup();
});

it('per-minute counts agree with a brute-force count of every user’s fires', { timeout: 120_000 }, async () => {
  const r = await runCli(['plan', '--json', '--from', FROM, '--hours', String(HOURS), '--peaks', '40'], env);
  expect(r.code, r.stderr).toBe(0);
  const plan = JSON.parse(r.stdout) as PlanJson;

  // Brute force, independently of the registry: every valid user's every slot, fire after fire.
  const fields = loadConfig({ env: {} }).config.users.fields;
  const from = Date.parse(FROM);
  const to = from + HOURS * 3_600_000;
  const expected = new Map<string, number>();
  let users = 0;
  for (const doc of await db.db.collection('users').find({}).toArray()) {
    const c = checkUser(doc, fields);
    if (c.kind !== 'valid') continue;
    users++;
    for (const time of new Set(c.user.times)) {
      for (let s = nextFire(c.user.timezone, time, c.user.days, from); s !== undefined && s.at < to; s = nextFire(c.user.timezone, time, c.user.days, s.at, s.localDate)) {
        const minute = new Date(Math.floor(s.at / 60_000) * 60_000).toISOString();
        expected.set(minute, (expected.get(minute) ?? 0) + 1);
      }
    }
  }
  const got = new Map(plan.perMinute.map((p) => [p.minute, p.sends]));
  expect(plan.users.scheduled).toBe(users);
  expect(plan.users.invalid).toBe(100);
  expect(got).toEqual(expected);
  expect(plan.total).toBe([...expected.values()].reduce((a, b) => a + b, 0));
  expect(plan.total).toBeGreaterThan(10_000);

  // The busiest minutes come first, and each drains at the limit.
  const top = Math.max(...expected.values());
  expect(plan.peaks[0]?.sends).toBe(top);
  for (const p of plan.peaks.filter((x) => x.backlogAtStart === 0)) {
    expect(p.drainSeconds).toBeCloseTo(p.sends / RATE, 1);
    expect(p.ratePerSecond).toBeCloseTo(RATE, 0);
  }

  // The measured side: run-minute of a busy minute with no backlog from earlier minutes, the
  // smallest such peak so the test stays short.
  const pick = plan.peaks.filter((p) => p.backlogAtStart === 0 && p.sends >= 250).sort((a, b) => a.sends - b.sends)[0];
  if (pick === undefined) throw new Error('no suitable peak minute in the plan');
  const run = await runCli(['run-minute', '--at', pick.minute, '--force', '--json'], env);
  expect(run.code, run.stderr).toBe(0);
  const report = JSON.parse(run.stdout) as { due: number; sent: number };
  expect(report).toMatchObject({ due: pick.sends, sent: pick.sends });
  const at = smtp.messages.map((m) => m.receivedAt).sort((a, b) => a - b);
  const first = at[0] ?? 0;
  const last = at.at(-1) ?? 0;
  // n sends at R/s: the first goes at once, the last (n - 1)/R later; the plan's fluid model
  // counts n/R. Compare like with like.
  const measured = ((last - first) / 1000) * (pick.sends / (pick.sends - 1));
  const error = Math.abs(measured - pick.drainSeconds) / pick.drainSeconds;
  console.log(`[plan] ${pick.minute}: ${pick.sends} sends, plan drains in ${pick.drainSeconds} s at ${RATE}/s; run-minute measured ${measured.toFixed(2)} s (${(error * 100).toFixed(1)} % off)`);
  expect(error).toBeLessThanOrEqual(0.1);
});

it('prints the chart and the peak lines, and --svg writes the picture', { timeout: 180_000 }, async () => {
  const svg = join(tmpdir(), `mailwheel-plan-${process.pid}.svg`);
  const r = await runCli(['plan', '--from', FROM, '--svg', svg], env);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).toMatch(/sends due per minute, 2027-02-01T00:00Z \+ 24 h/);
  expect(r.stdout).toMatch(/│.*█/);
  expect(r.stdout).toMatch(/^ {2}\d\d:\d\d UTC: [\d,]+ sends(?: \(\+[\d,]+ still queued from earlier\))?, drains by \d\d:\d\d:\d\d at 40\/s; spread over 59 s: drains by \d\d:\d\d:\d\d at [\d.]+\/s$/m);
  const picture = parseSvg(readFileSync(svg, 'utf8'));
  const axis = valueAxis(picture, plotSpan(picture).left);
  expect(isRoundScale(axis.values), axis.values.join('/')).toBe(true);
  // The capacity line at rate.perSecond × 60 on the value axis.
  const dashed = picture.paths.filter((p) => p.stroke === PLAN_COLOURS.capacity && p.dash !== null).map((p) => p.points);
  const width = (pts: Array<[number, number]>) => Math.max(...pts.map((q) => q[0])) - Math.min(...pts.map((q) => q[0]));
  const capacity = dashed.sort((a, b) => width(b) - width(a))[0] ?? []; // not the legend's short sample
  expect(Math.abs((capacity[0]?.[1] ?? NaN) - axis.y(RATE * 60))).toBeLessThan(0.6);
  // Sends already claimed (the first test's run-minute) are a layer of their own under the rest:
  // the stack's top is every send due (--no-claims), the grey layer's top the claimed part.
  const all = JSON.parse((await runCli(['plan', '--json', '--no-claims', '--from', FROM], env)).stdout) as PlanJson;
  const open = JSON.parse((await runCli(['plan', '--json', '--from', FROM], env)).stdout) as PlanJson;
  const openAt = new Map(open.perMinute.map((p) => [p.minute, p.sends]));
  const claimedMax = Math.max(0, ...all.perMinute.map((p) => p.sends - (openAt.get(p.minute) ?? 0)));
  const top = (colour: string) => Math.min(...picture.paths.filter((p) => p.fill === colour && p.points.length > 2).flatMap((p) => p.points.map((q) => q[1])));
  expect(Math.abs(top(PLAN_COLOURS.scheduled) - axis.y(Math.max(...all.perMinute.map((p) => p.sends))))).toBeLessThan(0.6);
  if (claimedMax > 0) expect(Math.abs(top(PLAN_COLOURS.claimed) - axis.y(claimedMax))).toBeLessThan(0.6);
  expect(picture.texts.map((t) => t.text)).toEqual(expect.arrayContaining(['UTC', 'sends per minute', '2027-02-01']));
});

it('counts inactive users as seed-users does (deactivated and unsubscribed alike)', { timeout: 60_000 }, async () => {
  const r = await runCli(['plan', '--json', '--from', FROM, '--hours', '1'], env);
  expect(r.code, r.stderr).toBe(0);
  const plan = JSON.parse(r.stdout) as PlanJson;
  expect(seeded.inactive).toBe(500);
  expect(plan.users.inactive).toBe(seeded.inactive);
  expect(plan.users.invalid).toBe(seeded.invalid);
  expect(plan.users.documents).toBe(10_000);
  const text = await runCli(['plan', '--from', FROM, '--hours', '1'], env);
  expect(text.stdout).toContain('(10,000 documents: 500 inactive or unsubscribed, 100 invalid, 0 suppressed)');
});

it('leaves out sends already claimed (by run-minute or a daemon), and says how many', { timeout: 120_000 }, async () => {
  const args = ['plan', '--json', '--from', FROM, '--hours', String(HOURS)];
  const before = JSON.parse((await runCli(args, env)).stdout) as PlanJson;
  // The quietest non-empty minute: claim every send due in it, as run-minute would, under the
  // documented key s:<userId>:<HH:MM>:<local date>.
  const quiet = [...before.perMinute].sort((a, b) => a.sends - b.sends)[0];
  if (quiet === undefined) throw new Error('empty plan');
  const minuteMs = Date.parse(quiet.minute);
  const fields = loadConfig({ env: {} }).config.users.fields;
  const keys: string[] = [];
  for (const doc of await db.db.collection('users').find({}).toArray()) {
    const c = checkUser(doc, fields);
    if (c.kind !== 'valid') continue;
    for (const time of new Set(c.user.times)) {
      const s = nextFire(c.user.timezone, time, c.user.days, minuteMs - 1);
      if (s !== undefined && Math.floor(s.at / 60_000) * 60_000 === minuteMs) keys.push(`s:${c.user.id}:${time}:${s.localDate}`);
    }
  }
  expect(keys).toHaveLength(quiet.sends);
  const deliveries = db.db.collection<{ _id: string } & Record<string, unknown>>('mailwheel_deliveries');
  await deliveries.insertMany(keys.map((k) => ({ _id: k, type: 'claim', kind: 'scheduled', userId: k.split(':')[1], owner: 'test', gen: 'g', at: new Date() })));
  try {
    const after = JSON.parse((await runCli(args, env)).stdout) as PlanJson;
    expect(after.total).toBe(before.total - quiet.sends);
    expect(after.perMinute.find((p) => p.minute === quiet.minute)).toBeUndefined();
    // The first test's run-minute claimed a minute already; these come on top.
    expect(after.alreadyClaimed - before.alreadyClaimed).toBe(quiet.sends);
    const text = await runCli(['plan', '--from', FROM, '--hours', String(HOURS)], env);
    expect(text.stdout).toContain(`not counting ${after.alreadyClaimed.toLocaleString('en-US')} already claimed`);
  } finally {
    await deliveries.deleteMany({ _id: { $in: keys } });
  }
});
