/**
 * `/metrics` end to end (issue 5): the real daemon (App) against the test database and the test
 * SMTP server sends two minutes' mail — one with a transient 451 on the first attempt of some
 * recipients, one with a permanent 550 for others — then `/metrics` is read over HTTP with the
 * bearer token, parsed with a strict Prometheus text parser, and its counters are compared with
 * what the SMTP server itself counted. Also: the token guards everything but /healthz.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { testDb, type TestDb } from '../helpers/db.js';
import { parsePrometheusText, valueOf } from '../helpers/prom-text.js';
import { TestSmtpServer } from '../helpers/smtp-server.js';
import { usersDueAt } from '../helpers/users.js';

/**
 * Two minutes twelve hours from now. The daemon runs on the real clock while the test replays
 * these minutes with runMinute: fixed dates (2027-04-01T08:00Z) made some users due at the real
 * 09:00 UTC in winter (Berlin's April 10:00), so a run at that minute sent them twice and the
 * counters did not match. Twelve hours away, whatever the zone and DST (±1 h), the daemon's own
 * timer never fires them during the test.
 */
const M1 = new Date((Math.floor(Date.now() / 60_000) + 12 * 60) * 60_000).toISOString();
const M2 = new Date(Date.parse(M1) + 60_000).toISOString();
const TOKEN = 'metrics-test-token-0123456789';

let db: TestDb;
let smtp: TestSmtpServer;
let t: TestApp | undefined;

beforeAll(async () => {
  db = await testDb('metrics');
  smtp = await TestSmtpServer.start();
  await db.db.collection('users').insertMany([...usersDueAt(100, M1, 'mok'), ...usersDueAt(20, M1, 'mretry'), ...usersDueAt(30, M2, 'mgood'), ...usersDueAt(10, M2, 'mbad')]);
});

afterAll(async () => {
  await t?.app.close();
  await smtp?.close();
  await db?.cleanup();
});

it('/metrics parses strictly and its send counters match the SMTP server', { timeout: 60_000 }, async () => {
  t = await startTestApp(db.uri, smtp.url, {
    http: { enabled: true, host: '127.0.0.1', port: 0, token: TOKEN },
    send: { backoffBaseMs: 20, backoffMaxMs: 100 },
    analytics: { flushIntervalMs: 50 },
  });
  const { app } = t;
  await app.start();
  const base = `http://127.0.0.1:${app.httpPort}`;
  const auth = { authorization: `Bearer ${TOKEN}` };

  // Minute 1: each "mretry" recipient is refused once with 451, then accepted.
  const refusedOnce = new Set<string>();
  smtp.setFault({
    kind: 'reply',
    code: 451,
    match: (rcpt) => {
      if (!rcpt.startsWith('mretry') || refusedOnce.has(rcpt)) return false;
      refusedOnce.add(rcpt);
      return true;
    },
  });
  const r1 = await app.runMinute(Date.parse(M1));
  // Minute 2: "mbad" recipients are refused for good.
  smtp.setFault({ kind: 'reply', code: 550, match: (rcpt) => rcpt.startsWith('mbad') });
  const r2 = await app.runMinute(Date.parse(M2));
  expect(r1).toMatchObject({ due: 120, sent: 120, failed: 0, retried: 20 });
  expect(r2).toMatchObject({ due: 40, sent: 30, failed: 10 });
  while (app.analytics.size > 0) await new Promise((r) => setTimeout(r, 20));

  expect((await fetch(`${base}/metrics`)).status).toBe(401);
  expect((await fetch(`${base}/stats`, { headers: { authorization: 'Bearer wrong-token-wrong-token' } })).status).toBe(401);
  expect((await fetch(`${base}/healthz`)).status).toBe(200);
  const ready = await fetch(`${base}/readyz`, { headers: auth });
  expect(ready.status).toBe(200);
  expect(await ready.json()).toEqual({ ok: true, synced: true, mongodb: true, smtp: true, breaker: 'closed' });

  const res = await fetch(`${base}/metrics`, { headers: auth });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const m = parsePrometheusText(await res.text());

  const accepted = smtp.messages.length;
  const permanent = smtp.rejected.filter((r) => r.code >= 500).length;
  const transient = smtp.rejected.filter((r) => r.code >= 400 && r.code < 500).length;
  expect([accepted, permanent, transient]).toEqual([150, 10, 20]);
  expect(valueOf(m, 'mailwheel_sends_total', { kind: 'scheduled', outcome: 'sent' })).toBe(accepted);
  expect(valueOf(m, 'mailwheel_sends_total', { kind: 'scheduled', outcome: 'failed' })).toBe(permanent);
  expect(valueOf(m, 'mailwheel_send_retries_total', { kind: 'scheduled' })).toBe(transient);
  expect(valueOf(m, 'mailwheel_sends_total', { kind: 'broadcast', outcome: 'sent' })).toBe(0);
  expect(valueOf(m, 'mailwheel_smtp_send_duration_seconds_count', { kind: 'scheduled', outcome: 'sent' })).toBe(accepted);
  expect(valueOf(m, 'mailwheel_smtp_send_duration_seconds_count', { kind: 'scheduled', outcome: 'failed' })).toBe(permanent);
  expect(valueOf(m, 'mailwheel_deliveries_total', { result: 'claimed' })).toBe(160);
  expect(valueOf(m, 'mailwheel_analytics_events_total', { type: 'sent' })).toBe(accepted);
  expect(valueOf(m, 'mailwheel_analytics_events_total', { type: 'retried' })).toBe(transient);
  expect(valueOf(m, 'mailwheel_analytics_written_total')).toBe(app.analytics.stats.written);
  expect(valueOf(m, 'mailwheel_analytics_buffered')).toBe(0);
  expect(valueOf(m, 'mailwheel_analytics_buffer_limit')).toBe(100_000);
  expect(valueOf(m, 'mailwheel_analytics_flush_duration_seconds_count', { outcome: 'ok' })).toBeGreaterThan(0);
  expect(valueOf(m, 'mailwheel_queue_waiting')).toBe(0);
  expect(valueOf(m, 'mailwheel_queue_in_flight')).toBe(0);
  expect(valueOf(m, 'mailwheel_smtp_breaker_state', { state: 'closed' })).toBe(1);
  expect(valueOf(m, 'mailwheel_smtp_breaker_state', { state: 'open' })).toBe(0);
  expect(valueOf(m, 'mailwheel_registry_users')).toBe(app.registry.userCount);
  expect(valueOf(m, 'mailwheel_registry_jobs')).toBe(app.registry.size);
  expect(valueOf(m, 'mailwheel_next_fire_timestamp_seconds')).toBe((app.registry.nextFireMinute() ?? 0) * 60);
  expect(m.get('mailwheel_process_resident_memory_bytes')?.type).toBe('gauge');
  expect(m.get('mailwheel_sends_total')?.type).toBe('counter');
  expect(m.get('mailwheel_smtp_send_duration_seconds')?.type).toBe('histogram');

  // The broadcast hook: whoever runs broadcasts reports progress; it shows up per broadcast.
  app.metrics.setBroadcastSource(() => [{ id: 'b1', state: 'running', targeted: 500, sent: 120, failed: 3, skipped: 1 }]);
  const m2 = parsePrometheusText(await (await fetch(`${base}/metrics`, { headers: auth })).text());
  expect(valueOf(m2, 'mailwheel_broadcast_messages', { broadcast: 'b1', state: 'running', outcome: 'sent' })).toBe(120);
});
