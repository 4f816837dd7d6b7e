/**
 * Wiring of the feedback side (docs/ARCHITECTURE.md "Bounces and complaints"): the one
 * FeedbackSink every source hands its reports to, the refusal counter they all count in, the
 * provider webhooks (served by the daemon's HTTP server) and the inbound DSN/ARF listener. Each
 * source is built only when configured; the sink is always there (the CLI and tests may apply
 * reports), and costs nothing until a report arrives.
 */
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { LoadedConfig } from '../config/load.js';
import type { WebhookRoutes } from '../http/server.js';
import type { Config } from '../config/schema.js';
import { FeedbackReportSink } from '../core/feedback.js';
import { RefusalCounter } from '../core/feedback-refusals.js';
import type { SuppressionList } from '../core/suppression-list.js';
import { ConfigError, Errors, type MailwheelError } from '../errors.js';
import type { BroadcastStore } from '../ports/broadcasts.js';
import type { Clock } from '../ports/clock.js';
import type { FeedbackKind, FeedbackSource, MessageIndex, ReplayGuard } from '../ports/feedback.js';
import type { FeedbackCounts, FeedbackStore } from '../ports/feedback-store.js';
import type { EventRecorder } from '../ports/index.js';
import { webhooksConfigured } from './feedback-inputs.js';
import { InboundListener } from '../feedback/inbound/listener.js';
import { httpsGetText } from '../feedback/webhooks/fetch-text.js';
import { FeedbackWebhooks } from '../feedback/webhooks/index.js';

/** What the daemon needs of the inbound DSN/ARF listener (src/feedback/inbound/listener.ts InboundListener): narrow, so the start/stop order is tested with a fake. */
export interface InboundListenerPart {
  /** Starts listening on feedback.inbound.host/port; resolves with the port bound. */
  listen(): Promise<number>;
  close(): Promise<void>;
}

export interface FeedbackParts {
  readonly sink: FeedbackReportSink;
  readonly refusals: RefusalCounter;
  /** Bounces and complaints per broadcast and per UTC day (`/metrics`, daily summary, `broadcast status`). */
  readonly counts: FeedbackCounts;
  /** Undefined unless a provider webhook is configured. */
  readonly webhooks: WebhookRoutes | undefined;
  /** Undefined unless `feedback.inbound.enabled`. */
  readonly inbound: InboundListenerPart | undefined;
}

export interface FeedbackDeps {
  loaded: LoadedConfig;
  store: { feedback: FeedbackStore; messageIndex: MessageIndex | undefined; broadcasts: BroadcastStore; replay: ReplayGuard | undefined };
  suppressions: Pick<SuppressionList, 'suppress'>;
  events: EventRecorder;
  clock: Clock;
  log: Logger;
}

/** Without a message index (no input configured) nothing can be matched: every lookup finds nothing. */
const NO_INDEX: Pick<MessageIndex, 'find'> = { find: () => Promise.resolve(new Map()) };

/**
 * Builds the sink and the configured sources. Reads the SES signing certificates named in the
 * config: a file that cannot be read fails the start (a ConfigError naming the setting and the file).
 */
export function buildFeedback(deps: FeedbackDeps): FeedbackParts {
  const { config } = deps.loaded;
  const { feedback } = config;
  const log = deps.log.child({ part: 'feedback' });
  const refusals = new RefusalCounter();
  const sink = new FeedbackReportSink(
    {
      index: deps.store.messageIndex ?? NO_INDEX,
      store: deps.store.feedback,
      suppressions: deps.suppressions,
      broadcasts: deps.store.broadcasts,
      events: deps.events,
      refusals,
      clock: deps.clock,
      log,
    },
    { softBounce: feedback.softBounce, complaintStopsScheduled: feedback.complaintStopsScheduled, broadcastPause: feedback.broadcastPause },
  );
  let webhooks: WebhookRoutes | undefined;
  if (webhooksConfigured(config)) {
    const certificates = feedback.webhooks.ses.enabled ? readCertificates(config) : new Map<string, string>();
    const replay = deps.store.replay;
    if (replay === undefined) throw new Errors.STARTUP_FAILED('feedback webhooks are configured but the store has no replay guard (app/stores.ts)');
    webhooks = new FeedbackWebhooks({ feedback, certificates, sink, refusals, replay, clock: deps.clock, log: log.child({ source: 'webhooks' }), fetchText: httpsGetText });
  }
  let inbound: InboundListenerPart | undefined;
  if (feedback.inbound.enabled) {
    inbound = new InboundListener({ feedback, sink, refusals, clock: deps.clock, log: log.child({ source: 'inbound' }) });
  }
  return { sink, refusals, counts: deps.store.feedback, webhooks, inbound };
}

/**
 * The PEM text of each `feedback.webhooks.ses.certificates` entry, by URL (config/load.ts made the
 * paths absolute, relative to the config folder); every unreadable file named at once.
 */
export function readCertificates(config: Config): Map<string, string> {
  const out = new Map<string, string>();
  const problems: Array<{ field: string; message: string }> = [];
  for (const [url, file] of Object.entries(config.feedback.webhooks.ses.certificates)) {
    const path = file;
    const field = `feedback.webhooks.ses.certificates["${url}"]`;
    try {
      const pem = readFileSync(path, 'utf8');
      if (!pem.includes('-----BEGIN CERTIFICATE-----')) problems.push({ field, message: `${path} holds no PEM certificate` });
      else out.set(url, pem);
    } catch (err) {
      problems.push({ field, message: `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` });
    }
  }
  if (problems.length > 0) throw ConfigError.of(problems);
  return out;
}

/**
 * Starts the inbound listener (after the HTTP server, before anything is sent). A bind failure
 * fails the start at once, naming the settings to change.
 * @returns the port bound, or undefined when the listener is off
 */
export async function startInbound(parts: Pick<FeedbackParts, 'inbound'>, config: Config, log: Logger): Promise<number | undefined> {
  if (parts.inbound === undefined) return undefined;
  const { host, port } = config.feedback.inbound;
  let bound: number;
  try {
    bound = await parts.inbound.listen();
  } catch (err) {
    throw inboundListenError(err, host, port);
  }
  log.info({ host, port: bound }, 'feedback inbound listener listening');
  return bound;
}

function inboundListenError(err: unknown, host: string, port: number): MailwheelError {
  const code = (err as { code?: string }).code ?? (err as { cause?: { code?: string } }).cause?.code;
  const reason =
    code === 'EADDRINUSE'
      ? 'address already in use'
      : code === 'EACCES'
        ? 'permission denied (ports below 1024 need privileges)'
        : code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND'
          ? 'no such local address'
          : err instanceof Error
            ? err.message
            : String(err);
  return new Errors.STARTUP_FAILED(`feedback.inbound: cannot listen on ${host}:${port} (feedback.inbound.host / feedback.inbound.port): ${reason}`, { cause: err });
}

/** The sink's reports by source and kind, as `/metrics` counts them (one row per pair seen). */
export function feedbackReportCounts(reports: FeedbackReportSink['stats']['reports']): Array<{ source: FeedbackSource; kind: FeedbackKind; n: number }> {
  const out: Array<{ source: FeedbackSource; kind: FeedbackKind; n: number }> = [];
  for (const [source, byKind] of Object.entries(reports) as Array<[FeedbackSource, Record<FeedbackKind, number>]>) {
    for (const [kind, n] of Object.entries(byKind) as Array<[FeedbackKind, number]>) if (n > 0) out.push({ source, kind, n });
  }
  return out;
}
