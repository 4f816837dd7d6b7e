/**
 * Suite `smtp`: messages per second into Postfix's `smtp-sink` on 127.0.0.1, at pool sizes 1,
 * 10 and 50 and messages of ~2 KB and ~10 KB, all measured in the same run:
 *
 * (a) `smtp-source` (Postfix's C load generator, same sink, same number of sessions, each
 *     keeping its connection): the physical limit of this machine;
 * (b) nodemailer pool, one `sendMail` per message built by nodemailer (the old path);
 * (c) nodemailer pool, raw MIME from MimeBuilder with an explicit envelope (the new path);
 * (d) mailwheel's SendQueue (Bottleneck grants of weighted batches, workers) over its own
 *     SmtpPool of nodemailer SMTPConnections, raw MIME from MimeBuilder: what the daemon sends with;
 * (f) the (d) path with DKIM signing (RSA-2048, Ed25519) at the default pool size, next to an
 *     unsigned (d) cell of the same count in the same run: what signing costs the SMTP path;
 * (e) exploratory: the same raw MIME over nodemailer's SMTPConnection directly, one sequential
 *     sender per connection, without the Mailer and smtp-pool layers (what is left of
 *     nodemailer's per-message cost once MIME building is gone).
 *
 * Every cell sends a bounded count within a bounded time. The sink's own counter confirms how
 * many messages arrived. CPU time is this process's (and the sink's, and smtp-source's).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import nodemailer from 'nodemailer';
import type Mail from 'nodemailer/lib/mailer';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import pino from 'pino';
import { MimeBuilder } from '../src/adapters/smtp/mime.js';
import { NodemailerTransport } from '../src/adapters/smtp/nodemailer-transport.js';
import { SendQueue } from '../src/adapters/smtp/send-queue.js';
import type { DkimKey } from '../src/config/dkim-keys.js';
import { loadConfig } from '../src/config/load.js';
import type { TemplateSet } from '../src/core/templates.js';
import type { Delivery } from '../src/core/types.js';
import { benchDkimKeys } from './lib/dkim-keys.js';
import { deliveries, deliveryFor, FROM, mailOptions, templateOfSize } from './lib/fixtures.js';
import { runningPostfixMaster } from './lib/postfix.js';
import { runSmtpSource, SmtpSink } from './lib/sink.js';
import { cpuMsSince, round, type Row, type Suite } from './lib/suite.js';

const SIZES = [
  { label: '2KB', bytes: 2_000 },
  { label: '10KB', bytes: 10_000 },
];
const POOLS = [1, 10, 50];
/** Messages per cell; pool size 1 is a single connection, so it gets fewer. */
const countFor = (pool: number, quick: boolean): number => (pool === 1 ? 5_000 : 20_000) / (quick ? 10 : 1);
/** A cell stops feeding after this long and reports what completed. */
const MAX_SECONDS = 60;
/** Same as config/default.json smtp.maxMessagesPerConnection: the daemon's own setting. */
const MAX_MESSAGES_PER_CONNECTION = 1000;
const USERS = deliveries(20_000);
/** Case (f): the default smtp.poolSize; RSA signing is CPU-bound, so the cells are shorter. */
const SIGNED_POOL = 10;
const signedCount = (quick: boolean): number => (quick ? 1_000 : 5_000);

interface Cell {
  messages: number;
  failed: number;
  seconds: number;
  /** CPU of this process (ms), or of smtp-source for (a). */
  cpuMs: number;
  sinkCpuMs: number;
  sinkReceived: number;
}

/**
 * Case (d): the daemon's own path. A SendQueue (Bottleneck grants of weighted batches, worker
 * pool, no rate limit) over the NodemailerTransport (MimeBuilder raw MIME, SmtpPool), with
 * outcome hooks that only count, so what is measured is the queue and the transport.
 */
async function viaSendQueue(opts: { url: string; pool: number; templates: TemplateSet; count: number; transport?: NodemailerTransport }): Promise<Outcome> {
  const file = join(mkdtempSync(join(tmpdir(), 'mw-bench-')), 'config.json');
  writeFileSync(file, JSON.stringify({ smtp: { poolSize: opts.pool, maxMessagesPerConnection: MAX_MESSAGES_PER_CONNECTION }, rate: { perSecond: null, perDay: null } }));
  const { config } = loadConfig({ file, env: { SMTP_URL: opts.url } });
  rmSync(dirname(file), { recursive: true, force: true });
  const transport = opts.transport ?? new NodemailerTransport(config, { templates: opts.templates });
  let sent = 0;
  let failed = 0;
  let firstError: string | undefined;
  const queue = new SendQueue(
    transport,
    { concurrency: opts.pool, rate: config.rate, maxAttempts: 1, backoffBaseMs: 10, backoffMaxMs: 10 },
    {
      onOutcome: (o) => {
        if (o.status === 'sent') sent++;
        else {
          failed++;
          firstError ??= o.error?.message;
        }
      },
    },
    pino({ level: 'silent' }),
  );
  for (let i = 0; i < opts.count; i++) queue.submit(USERS[i % USERS.length] as Delivery);
  await Promise.race([queue.idle(), new Promise((r) => setTimeout(r, MAX_SECONDS * 1000).unref())]);
  await queue.stop(1000);
  await transport.close();
  return { sent, failed, firstError };
}

/** Case (f)'s transport, with `WARM_UP` messages sent through it before any measurement. */
async function warmTransport(url: string, templates: TemplateSet, dkim: readonly DkimKey[]): Promise<NodemailerTransport> {
  const file = join(mkdtempSync(join(tmpdir(), 'mw-bench-')), 'config.json');
  writeFileSync(file, JSON.stringify({ smtp: { poolSize: SIGNED_POOL, maxMessagesPerConnection: MAX_MESSAGES_PER_CONNECTION } }));
  const { config } = loadConfig({ file, env: { SMTP_URL: url } });
  rmSync(dirname(file), { recursive: true, force: true });
  const transport = new NodemailerTransport(config, { templates, dkim });
  await Promise.all(Array.from({ length: WARM_UP }, (_, i) => transport.send(USERS[USERS.length - 1 - i] as Delivery)));
  return transport;
}
const WARM_UP = 200;

interface Outcome {
  sent: number;
  failed: number;
  firstError?: string | undefined;
  /** CPU time to report instead of this process's (smtp-source's own, for case a). */
  cpuMs?: number;
}

/**
 * The cell's shared feed: workers take the next user until `count` messages were started or the
 * cell's time is up, and every send's outcome is tallied.
 */
class Feed {
  readonly #count: number;
  readonly #deadline = performance.now() + MAX_SECONDS * 1000;
  #next = 0;
  readonly outcome: Required<Pick<Outcome, 'sent' | 'failed'>> & { firstError: string | undefined } = { sent: 0, failed: 0, firstError: undefined };

  constructor(count: number) {
    this.#count = count;
  }

  /** One worker: sends, one at a time, until the feed runs out. */
  async drain(send: (d: Delivery) => Promise<unknown>): Promise<void> {
    while (this.#next < this.#count && performance.now() < this.#deadline) {
      const d = USERS[this.#next++ % USERS.length];
      if (d === undefined) continue;
      try {
        await send(d);
        this.outcome.sent++;
      } catch (err) {
        this.outcome.failed++;
        this.noteError(err as Error);
      }
    }
  }

  noteError(err: Error): void {
    this.outcome.firstError ??= err.message;
  }
}

/** Sends `count` messages through a nodemailer pool, keeping 2 per connection in flight. */
async function viaPool(port: number, pool: number, count: number, send: (t: Mail, d: Delivery) => Promise<unknown>): Promise<Outcome> {
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    secure: false,
    ignoreTLS: true,
    pool: true,
    maxConnections: pool,
    maxMessages: MAX_MESSAGES_PER_CONNECTION,
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 30_000,
  });
  const feed = new Feed(count);
  try {
    await Promise.all(Array.from({ length: pool * 2 }, () => feed.drain((d) => send(transport, d))));
  } finally {
    transport.close();
  }
  return feed.outcome;
}

/** Case (e): `pool` SMTPConnections, each sending one message after another over its connection. */
async function viaConnections(port: number, pool: number, count: number, builder: MimeBuilder): Promise<Outcome> {
  const feed = new Feed(count);
  const worker = async () => {
    const conn = new SMTPConnection({ host: '127.0.0.1', port, secure: false, ignoreTLS: true, connectionTimeout: 10_000, socketTimeout: 30_000 });
    try {
      await new Promise<void>((resolve, reject) => {
        // Kept for the connection's life: an 'error' event with no listener would throw.
        conn.on('error', (err: Error) => {
          feed.noteError(err);
          reject(err);
        });
        conn.connect(() => resolve());
      });
      await feed.drain((d) => {
        const m = builder.build(d);
        return new Promise<void>((resolve, reject) => conn.send(m.envelope, m.raw, (err) => (err ? reject(err) : resolve())));
      });
    } finally {
      conn.quit();
    }
  };
  await Promise.all(Array.from({ length: pool }, worker));
  return feed.outcome;
}

async function measured(sink: SmtpSink, fn: () => Promise<Outcome>): Promise<Cell & { firstError: string | undefined }> {
  const before = sink.received();
  const sinkCpu0 = sink.cpuMs();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await fn();
  const seconds = (performance.now() - t0) / 1000;
  const cpuMs = r.cpuMs ?? cpuMsSince(cpu0);
  // The sink counts a message when it sees "."; give its counter output a moment to arrive.
  await new Promise((res) => setTimeout(res, 100));
  return { messages: r.sent, failed: r.failed, seconds, cpuMs, sinkCpuMs: sink.cpuMs() - sinkCpu0, sinkReceived: sink.received() - before, firstError: r.firstError };
}

function row(method: string, size: string, pool: number, bytes: number, c: Cell): Row {
  return {
    method,
    size,
    pool,
    bytes,
    messages: c.messages,
    failed: c.failed,
    sinkReceived: c.sinkReceived,
    seconds: round(c.seconds, 2),
    msgsPerS: Math.round(c.messages / c.seconds),
    cpuMs: Math.round(c.cpuMs),
    cpuUsPerMsg: round((c.cpuMs * 1000) / Math.max(1, c.messages), 1),
    sinkCpuMs: Math.round(c.sinkCpuMs),
  };
}

const rate = (c: Cell): number => c.messages / c.seconds;

const suite: Suite = {
  description:
    'SMTP throughput into Postfix smtp-sink on 127.0.0.1: smtp-source (physical limit) vs nodemailer pool sendMail (old path) vs mailwheel SendQueue + SmtpPool with raw MIME, pool sizes 1/10/50, ~2 KB and ~10 KB',
  async run({ log, quick }) {
    const sink = await SmtpSink.startWithTools(log);
    const tmp = mkdtempSync(join(tmpdir(), 'mailwheel-bench-'));
    const rows: Row[] = [];
    const comparisons: Row[] = [];
    const notes: string[] = [];
    const keys = benchDkimKeys();
    try {
      for (const size of SIZES) {
        const tpl = templateOfSize(size.bytes);
        const builder = new MimeBuilder(tpl, { from: FROM });
        const sample = builder.build(deliveryFor(0)).raw;
        // smtp-source appends CRLF to each line of the file itself.
        const file = join(tmp, `message-${size.label}.eml`);
        writeFileSync(file, sample.replace(/\r\n/g, '\n'));
        for (const pool of POOLS) {
          const count = countFor(pool, quick);
          log(`${size.label}, pool ${pool}: smtp-source, ${count} messages...`);
          let sourceOut = '';
          const a = await measured(sink, async () => {
            const r = await runSmtpSource({ port: sink.port, sessions: pool, messages: count, file });
            sourceOut = r.output;
            if (r.exitCode !== 0) return { sent: 0, failed: count, firstError: r.output.slice(-500), cpuMs: r.cpuMs };
            return { sent: count, failed: 0, cpuMs: r.cpuMs };
          });
          if (a.failed > 0) notes.push(`smtp-source ${size.label} pool ${pool} failed: ${sourceOut.slice(-300)}`);

          log(`${size.label}, pool ${pool}: nodemailer pool sendMail (old path)...`);
          const b = await measured(sink, () => viaPool(sink.port, pool, count, (t, d) => t.sendMail(mailOptions(d, tpl))));
          log(`${size.label}, pool ${pool}: nodemailer pool raw MIME (MimeBuilder)...`);
          const c = await measured(sink, () =>
            viaPool(sink.port, pool, count, (t, d) => {
              const m = builder.build(d);
              return t.sendMail({ envelope: m.envelope, raw: m.raw });
            }),
          );
          log(`${size.label}, pool ${pool}: SMTPConnection direct, raw MIME (exploratory)...`);
          const e = await measured(sink, () => viaConnections(sink.port, pool, count, builder));
          for (const [label, cell] of [['old path', b], ['raw MIME', c], ['SMTPConnection direct', e]] as const) {
            if (cell.firstError !== undefined) notes.push(`${label} ${size.label} pool ${pool}: ${cell.failed} failed, first: ${cell.firstError}`);
          }

          rows.push(
            row('(a) smtp-source', size.label, pool, sample.length, a),
            row('(b) nodemailer sendMail (old path)', size.label, pool, sample.length, b),
            row('(c) nodemailer raw MIME (MimeBuilder)', size.label, pool, sample.length, c),
            row('(e) SMTPConnection direct, raw MIME', size.label, pool, sample.length, e),
          );
          log(`${size.label}, pool ${pool}: mailwheel SendQueue...`);
          const d = await measured(sink, () => viaSendQueue({ url: `smtp://127.0.0.1:${sink.port}`, pool, templates: tpl, count }));
          if (d.firstError !== undefined) notes.push(`SendQueue ${size.label} pool ${pool}: ${d.failed} failed, first: ${d.firstError}`);
          rows.push(row('(d) mailwheel SendQueue', size.label, pool, sample.length, d));
          comparisons.push({
            size: size.label,
            pool,
            'smtp-source msgs/s': Math.round(rate(a)),
            'old path msgs/s': Math.round(rate(b)),
            'raw MIME msgs/s': Math.round(rate(c)),
            'raw / old': round(rate(c) / rate(b), 2),
            'raw / smtp-source': round(rate(c) / rate(a), 2),
            'old / smtp-source': round(rate(b) / rate(a), 2),
            'SendQueue msgs/s': Math.round(rate(d)),
            'SendQueue / smtp-source': round(rate(d) / rate(a), 2),
            'SendQueue / old': round(rate(d) / rate(b), 2),
            'direct msgs/s (e)': Math.round(rate(e)),
            'direct / smtp-source': round(rate(e) / rate(a), 2),
          });
        }
        // (f): the daemon's path unsigned and signed, same count, same run.
        const fCount = signedCount(quick);
        const cells: Array<{ label: string; cell: Cell }> = [];
        for (const [label, dkim] of [['unsigned', []], ['DKIM RSA-2048', [keys.rsa]], ['DKIM Ed25519', [keys.ed25519]]] as const) {
          log(`${size.label}, pool ${SIGNED_POOL}: SendQueue ${label}, ${fCount} messages...`);
          // Made and warmed up outside the measurement: the signing workers start once per
          // daemon, not per cell (from source each also compiles its modules through tsx).
          const transport = await warmTransport(`smtp://127.0.0.1:${sink.port}`, tpl, dkim);
          const cell = await measured(sink, () => viaSendQueue({ url: `smtp://127.0.0.1:${sink.port}`, pool: SIGNED_POOL, templates: tpl, count: fCount, transport }));
          if (cell.firstError !== undefined) notes.push(`SendQueue ${label} ${size.label}: ${cell.failed} failed, first: ${cell.firstError}`);
          rows.push(row(`(f) SendQueue ${label}`, size.label, SIGNED_POOL, sample.length, cell));
          cells.push({ label, cell });
        }
        // A line of its own (not a comparisons row): its columns differ from the pool comparison's.
        const base = cells[0]?.cell;
        if (base !== undefined) {
          const parts = cells.map((c) => `${c.label} ${Math.round(rate(c.cell))} msgs/s, ${round((c.cell.cpuMs * 1000) / Math.max(1, c.cell.messages), 1)} CPU µs/msg${c.cell === base ? '' : ` (${round(rate(c.cell) / rate(base), 2)}x unsigned)`}`);
          notes.push(`(f) ${size.label} pool ${SIGNED_POOL}: ${parts.join('; ')}`);
        }
      }
    } finally {
      await sink.stop();
      rmSync(tmp, { recursive: true, force: true });
    }
    const master = runningPostfixMaster();
    notes.push(
      'everything on 127.0.0.1; one Node process (this one) drives (b) and (c); smtp-sink and smtp-source are separate processes on the same 2 cores',
      'cpuMs is this process for (b)/(c) and smtp-source itself for (a); sinkCpuMs is smtp-sink during the cell',
      `nodemailer pool: maxConnections = pool, maxMessages = ${MAX_MESSAGES_PER_CONNECTION} (the daemon default), 2 sends in flight per connection; smtp-source: -s pool -d (connections kept)`,
      '(d) mailwheel SendQueue: Bottleneck grants of weighted batches (50 per grant without a rate limit), `pool` workers, raw MIME over SmtpPool (our own pool of nodemailer SMTPConnections); outcome hooks only count',
      `(f) SendQueue as (d) at pool ${SIGNED_POOL}, ${signedCount(quick)} messages per cell, unsigned vs DKIM-signed (one signature, keys parsed once, signed in the transport's worker threads; RSA via nodemailer's signer, Ed25519 via mailauth) in the same run; each (f) transport is made and sent ${WARM_UP} messages before its cell`,
      '(e) is exploratory: nodemailer SMTPConnection without Mailer/smtp-pool, connections kept for the whole cell (no maxMessages recycling), one message at a time per connection',
      master === undefined ? 'no Postfix master process was running' : `a Postfix master process (pid ${master}) was running; it was not used`,
    );
    return {
      config: { sizes: SIZES, pools: POOLS, counts: Object.fromEntries(POOLS.map((p) => [p, countFor(p, quick)])), signedPool: SIGNED_POOL, signedCount: signedCount(quick), maxSecondsPerCell: MAX_SECONDS, maxMessagesPerConnection: MAX_MESSAGES_PER_CONNECTION, sink: 'smtp-sink -c -u nobody -m 512 127.0.0.1:PORT 1024' },
      rows,
      comparisons,
      notes,
    };
  },
};

export default suite;
