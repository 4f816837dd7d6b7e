/**
 * The sender of the `rate` suite, in its own process: mailwheel's SendQueue over the
 * NodemailerTransport (MimeBuilder raw MIME, SmtpPool), built from `loadConfig` exactly as the
 * daemon builds them, sending `count` deliveries to an SMTP server at `perSecond` (null: no limit).
 *
 * Why a child process: the suite measures arrival times at the sink from the sink's counter
 * output, read by the parent's event loop. If the parent were also building and sending
 * messages, its loop would read that output late and the per-second figures would be the
 * sender's scheduling jitter, not the limiter's. Here the parent does nothing but read.
 *
 * Usage: node --import tsx bench/workers/rate-sender.ts '<json RateSenderArgs>'
 * Writes its RateSenderResult as JSON to `resultFile` (a file, not stdout: the result carries one
 * timestamp per message, and a large write to a pipe can be cut short by the process exiting);
 * logs go to stderr.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { NodemailerTransport } from '../../src/adapters/smtp/nodemailer-transport.js';
import { SendQueue, sendQueueOptions } from '../../src/adapters/smtp/send-queue.js';
import { loadConfig } from '../../src/config/load.js';
import { cpuMsSince } from '../lib/suite.js';
import { deliveries, templateOfSize } from '../lib/fixtures.js';

export interface RateSenderArgs {
  smtpUrl: string;
  /** rate.perSecond; null removes the limit (the physical-limit run). */
  perSecond: number | null;
  count: number;
  /** Approximate message size (fixtures' templateOfSize). */
  templateBytes: number;
  /** Gives up (and reports what completed) after this long. */
  maxSeconds: number;
  /** Where the result JSON is written. */
  resultFile: string;
}

export interface RateSenderResult {
  sent: number;
  failed: number;
  firstError: string | null;
  /** Submit to idle, as the sender saw it. */
  seconds: number;
  /** CPU (user + system) of this process from the first submit to idle. */
  cpuMs: number;
  /** Bottleneck grants (each a batch of messages). */
  grants: number;
  /** smtp.poolSize of the loaded config (the queue's concurrency). */
  poolSize: number;
  timedOut: boolean;
  /** This process's peak resident set (the kernel's maxrss = VmHWM), tsx included, in MiB. */
  peakRssMiB: number;
  /**
   * When the sender had the server's reply to each sent message, in epoch ms (timeOrigin + now,
   * a clock shared with the parent). A message reaches the server before its reply reaches
   * us, so these bound the true arrival times from above: the parent checks its own readings
   * of the sink against them.
   */
  completions: number[];
}

function parseArgs(): RateSenderArgs {
  const raw = process.argv[2];
  if (raw === undefined) throw new Error('usage: rate-sender.ts <json args>');
  return JSON.parse(raw) as RateSenderArgs;
}

/**
 * The daemon's configuration for this run: config/default.json with only the rate changed
 * (`perDay: null` so the daily window never interferes), loaded and validated by loadConfig.
 */
function configFor(args: RateSenderArgs, dir: string): ReturnType<typeof loadConfig>['config'] {
  const file = join(dir, 'config.json');
  writeFileSync(file, JSON.stringify({ rate: { perSecond: args.perSecond, perDay: null } }));
  return loadConfig({ file, env: { SMTP_URL: args.smtpUrl } }).config;
}

async function main(): Promise<void> {
  const args = parseArgs();
  const dir = mkdtempSync(join(tmpdir(), 'mailwheel-rate-'));
  try {
    const config = configFor(args, dir);
    // Logs on stderr, where the parent keeps them for an error message.
    const log = pino({ level: 'warn' }, pino.destination(2));
    const transport = new NodemailerTransport(config, { templates: templateOfSize(args.templateBytes) });
    let sent = 0;
    let failed = 0;
    let firstError: string | null = null;
    const completions: number[] = [];
    // The daemon's own queue settings (app.ts); the outcome hook only counts, so what is measured
    // is the limiter, the queue and the transport.
    const queue = new SendQueue(
      transport,
      sendQueueOptions(config),
      {
        onOutcome: (o) => {
          if (o.status === 'sent') {
            sent++;
            completions.push(Math.round((performance.timeOrigin + performance.now()) * 100) / 100);
          } else {
            failed++;
            firstError ??= o.error?.message ?? 'unknown';
          }
        },
      },
      log,
    );
    const work = deliveries(args.count);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    // Everything at once, as the dispatcher hands a due minute to the queue.
    for (const d of work) queue.submit(d);
    let timedOut = false;
    await Promise.race([
      queue.idle(),
      new Promise<void>((r) =>
        setTimeout(() => {
          timedOut = true;
          r();
        }, args.maxSeconds * 1000).unref(),
      ),
    ]);
    const seconds = (performance.now() - t0) / 1000;
    const cpuMs = cpuMsSince(cpu0);
    await queue.stop(2_000);
    await transport.close();
    const result: RateSenderResult = {
      sent,
      failed,
      firstError,
      seconds,
      cpuMs,
      grants: queue.stats.grants,
      poolSize: config.smtp.poolSize,
      timedOut,
      peakRssMiB: Math.round((process.resourceUsage().maxRSS / 1024) * 10) / 10,
      completions,
    };
    writeFileSync(args.resultFile, JSON.stringify(result));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  // Exit explicitly: a pooled socket or a Bottleneck timer must not keep the child alive.
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`rate-sender: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
