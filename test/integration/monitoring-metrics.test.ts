/**
 * Monitoring as code against the real daemon (issue 18): every metric name that the alert rules
 * (monitoring/alerts.yml) and the Grafana dashboard (monitoring/grafana-dashboard.json) select is
 * one the daemon exports. The real App (test database, test SMTP server) starts, sends one
 * minute's mail, and `/metrics` is scraped over HTTP with the bearer token and parsed strictly; a
 * name counts as exported when its family is in the exposition (`x_bucket`, `x_sum`, `x_count`
 * only of a histogram `x`). The only name allowed from elsewhere is Prometheus's own `up`.
 * Also: the readiness gauges the `MailwheelNotReady` rule reads say ready, check by check.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parse } from 'yaml';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { testDb, type TestDb } from '../helpers/db.js';
import { parsePrometheusText, valueOf, type Family } from '../helpers/prom-text.js';
import { familyCandidates, metricNamesOf } from '../helpers/promql-names.js';
import { TestSmtpServer } from '../helpers/smtp-server.js';
import { usersDueAt } from '../helpers/users.js';

const ROOT = resolve(import.meta.dirname, '../..');
const TOKEN = 'monitoring-test-token-0123456789';
/** Twelve hours away, so the daemon's own timer never fires these users during the test. */
const MINUTE = new Date((Math.floor(Date.now() / 60_000) + 12 * 60) * 60_000).toISOString();
/** Series that come from Prometheus itself, not from the daemon. */
const FROM_PROMETHEUS = new Set(['up']);

/** Every PromQL expression of the rules and the dashboard, named by where it is. */
function expressions(): Array<{ where: string; expr: string }> {
  const rules = parse(readFileSync(join(ROOT, 'monitoring/alerts.yml'), 'utf8')) as { groups: Array<{ rules: Array<{ alert: string; expr: string }> }> };
  const dash = JSON.parse(readFileSync(join(ROOT, 'monitoring/grafana-dashboard.json'), 'utf8')) as {
    panels: Array<{ title: string; targets?: Array<{ expr: string; refId: string }> }>;
    templating: { list: Array<{ name: string; definition?: string }> };
  };
  return [
    ...rules.groups.flatMap((g) => g.rules.map((r) => ({ where: `alerts.yml ${r.alert}`, expr: r.expr }))),
    ...dash.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: `dashboard "${p.title}" ${t.refId}`, expr: t.expr }))),
    // label_values(metric, label): the metric the variable's values come from.
    ...dash.templating.list.flatMap((v) => (v.definition ? [{ where: `dashboard variable $${v.name}`, expr: v.definition.replace(/^label_values\((.*),\s*\w+\)$/, '$1') }] : [])),
  ];
}

/** Is `name` exported: its own family, or a histogram's bucket / sum / count? */
function exported(families: Map<string, Family>, name: string): boolean {
  const [own, base] = familyCandidates(name);
  if (own !== undefined && families.has(own)) return true;
  const fam = base === undefined ? undefined : families.get(base);
  return fam !== undefined && (fam.type === 'histogram' || (fam.type === 'summary' && !name.endsWith('_bucket')));
}

let db: TestDb;
let smtp: TestSmtpServer;
let t: TestApp | undefined;

beforeAll(async () => {
  db = await testDb('monitoring');
  smtp = await TestSmtpServer.start();
  await db.db.collection('users').insertMany(usersDueAt(20, MINUTE, 'mon'));
});

afterAll(async () => {
  await t?.app.close();
  await smtp?.close();
  await db?.cleanup();
});

it('every metric the alert rules and the dashboard name is exported on /metrics', { timeout: 90_000 }, async () => {
  t = await startTestApp(db.uri, smtp.url, { http: { enabled: true, host: '127.0.0.1', port: 0, token: TOKEN }, analytics: { flushIntervalMs: 50 } });
  const { app } = t;
  await app.start();
  expect(await app.runMinute(Date.parse(MINUTE))).toMatchObject({ due: 20, sent: 20 });

  const res = await fetch(`http://127.0.0.1:${app.httpPort}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
  expect(res.status).toBe(200);
  const families = parsePrometheusText(await res.text());

  const exprs = expressions();
  const named = new Map<string, string[]>();
  for (const { where, expr } of exprs) {
    for (const name of metricNamesOf(expr)) named.set(name, [...(named.get(name) ?? []), where]);
  }
  // The extraction found the names (an empty set would pass the check below vacuously).
  expect(named.size).toBeGreaterThan(40);
  expect([...named.keys()]).toEqual(expect.arrayContaining(['mailwheel_smtp_breaker_state', 'mailwheel_scheduler_checkpoint_timestamp_seconds', 'mailwheel_smtp_send_duration_seconds_bucket', 'mailwheel_ready', 'up']));

  const missing = [...named].filter(([name]) => !FROM_PROMETHEUS.has(name) && !exported(families, name)).map(([name, where]) => `${name} (${where.join('; ')})`);
  expect(missing, 'named by the rules or the dashboard but not exported').toEqual([]);
  // And every name is the daemon's own (prefixed), apart from Prometheus's `up`.
  expect([...named.keys()].filter((n) => !n.startsWith('mailwheel_') && !FROM_PROMETHEUS.has(n))).toEqual([]);

  // The series MailwheelNotReady reads: ready, and each /readyz check passes.
  expect(valueOf(families, 'mailwheel_ready')).toBe(1);
  for (const check of ['synced', 'mongodb', 'smtp']) expect(valueOf(families, 'mailwheel_ready_check', { check }), check).toBe(1);
  // The sends the dashboard's first panel shows are there as samples, not only as a family.
  expect(valueOf(families, 'mailwheel_sends_total', { kind: 'scheduled', outcome: 'sent' })).toBe(20);

  // MailwheelDueMinuteUnsent reads the checkpoint's age: on a healthy daemon the series appears
  // (the first save comes within seconds of the start) and is about a minute old, far from the
  // rule's 15 minutes. An absent series would keep the alert silent forever; a stale one, firing.
  const deadline = Date.now() + 60_000;
  let checkpoint: number | undefined;
  while (checkpoint === undefined && Date.now() < deadline) {
    const m = parsePrometheusText(await (await fetch(`http://127.0.0.1:${app.httpPort}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text());
    checkpoint = m.get('mailwheel_scheduler_checkpoint_timestamp_seconds')?.samples[0]?.value;
    if (checkpoint === undefined) await new Promise((r) => setTimeout(r, 200));
  }
  expect(checkpoint, 'mailwheel_scheduler_checkpoint_timestamp_seconds never appeared').toBeDefined();
  const age = Date.now() / 1000 - (checkpoint ?? 0);
  expect(age).toBeGreaterThanOrEqual(0);
  expect(age).toBeLessThan(3 * 60);
});

it('the check bites: a name the daemon does not export is reported', () => {
  const families = new Map<string, Family>([['mailwheel_x_seconds', { name: 'mailwheel_x_seconds', type: 'gauge', help: '', samples: [] }]]);
  expect(exported(families, 'mailwheel_x_seconds')).toBe(true);
  expect(exported(families, 'mailwheel_x_seconds_bucket')).toBe(false); // a gauge has no buckets
  expect(exported(families, 'mailwheel_y')).toBe(false);
});
