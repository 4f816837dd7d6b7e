/**
 * The SMTP path alone, for the broadcast suite's comparison in the same run (issue 17: a
 * broadcast should reach half of it): mailwheel's SendQueue over its NodemailerTransport (SmtpPool,
 * raw MIME from MimeBuilder) with the daemon's pool size and no rate limit, sending the
 * broadcast's own content (the same message bytes) to `count` recipients into the same sink. No
 * database, no claims, outcome hooks that only count: what is measured is what the daemon's send
 * path can do here and now, the ceiling for a broadcast, which adds reading users, claims, outcome
 * writes and progress on top. Rate from the sink's arrival times, as for the broadcast.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import pino from 'pino';
import { NodemailerTransport } from '../../src/adapters/smtp/nodemailer-transport.js';
import { SendQueue } from '../../src/adapters/smtp/send-queue.js';
import { loadConfig } from '../../src/config/load.js';
import { broadcastKey } from '../../src/core/delivery-key.js';
import type { TemplateSet } from '../../src/core/templates.js';
import type { Delivery } from '../../src/core/types.js';
import type { SmtpSink } from './sink.js';
import { cpuMsSince } from './suite.js';

export interface SendPathResult {
  sent: number;
  failed: number;
  /** Sink arrivals / (last arrival - first arrival). */
  msgsPerS: number;
  seconds: number;
  /** This process's CPU over the run, ms. */
  cpuMs: number;
}

export async function measureSendPath(sink: SmtpSink, opts: { pool: number; content: TemplateSet; from: string; count: number; maxSeconds: number }): Promise<SendPathResult> {
  const file = join(mkdtempSync(join(tmpdir(), 'mw-bench-path-')), 'config.json');
  writeFileSync(file, JSON.stringify({ smtp: { poolSize: opts.pool, from: opts.from }, rate: { perSecond: null, perDay: null } }));
  const { config } = loadConfig({ file, env: { SMTP_URL: `smtp://127.0.0.1:${sink.port}` } });
  rmSync(dirname(file), { recursive: true, force: true });
  const transport = new NodemailerTransport(config);
  let sent = 0;
  let failed = 0;
  const queue = new SendQueue(transport, { concurrency: opts.pool, rate: config.rate, maxAttempts: 1, backoffBaseMs: 10, backoffMaxMs: 10 }, { onOutcome: (o) => void (o.status === 'sent' ? sent++ : failed++) }, pino({ level: 'silent' }));
  const id = '20260101-000000-abcdef';
  const before = sink.arrivals.length;
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < opts.count; i++) {
    const userId = `u${String(i).padStart(7, '0')}`;
    const d: Delivery = { key: broadcastKey(id, userId), kind: 'broadcast', userId, email: `${userId}@example.test`, name: `User ${i}`, broadcastId: id, dueAt: 0, content: opts.content };
    queue.submit(d);
  }
  await Promise.race([queue.idle(), new Promise((r) => setTimeout(r, opts.maxSeconds * 1000).unref())]);
  const cpuMs = cpuMsSince(cpu0);
  await queue.stop(1000);
  await transport.close();
  // The sink counts a message when it sees "."; give its counter output a moment to arrive.
  await new Promise((r) => setTimeout(r, 200));
  const arrivals = sink.arrivals.slice(before);
  const seconds = ((arrivals.at(-1) ?? 0) - (arrivals[0] ?? 0)) / 1000;
  return { sent, failed, msgsPerS: arrivals.length / seconds, seconds, cpuMs };
}
