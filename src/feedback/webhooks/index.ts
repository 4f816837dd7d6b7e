/**
 * The provider webhooks on the daemon's HTTP server (docs/ARCHITECTURE.md "Bounces and
 * complaints"): `/webhooks/ses`, `/webhooks/sendgrid`, `/webhooks/mailgun`, `/webhooks/postmark`,
 * each served only when configured. Every request goes the same way: POST only, body read up to
 * `webhooks.maxBodyBytes`, the provider authenticates and parses it (one module each), the
 * notification id passes the replay guard, and the reports go to the FeedbackSink.
 *
 * Answers (providers retry a non-2xx answer, so the status says whether a retry can help):
 * - 401 no or wrong credentials, a bad signature, or a stale timestamp. Stale is 401 rather than
 *   408: the signed timestamp is part of the authentication, and a retry of the same stale
 *   request stays stale.
 * - 403 an SNS certificate off the host pattern or not the signer, or an unknown topic.
 * - 400 malformed; 405 not POST; 413 too large (reading stops; the connection is closed).
 * - 200 `{ok, replayed: true}` for a replay: the notification was accepted before, so the
 *   answer a provider's own retry needs is success (it stops retrying), and nothing is applied.
 * - 503 when the replay guard or the sink fails: the provider retries later. The notification is
 *   then forgotten by the replay guard (when it can forget), or the retry would count as a replay.
 * - 200 `{ok, applied, duplicates, suppressed, ignored}` otherwise.
 * Every refusal is counted (refusals.refuse) and logged at debug without body or secret.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import { ConfigError, type ConfigProblem } from '../../errors.js';
import type { Clock } from '../../ports/clock.js';
import type { FeedbackRefusal, FeedbackRefusals, FeedbackSink, FeedbackSource, ReplayGuard } from '../../ports/feedback.js';
import type { Verdict, WebhookRequest } from './common.js';
import { MailgunWebhook } from './mailgun.js';
import { PostmarkWebhook } from './postmark.js';
import { readCappedBody } from './read-body.js';
import { SendgridWebhook, sendgridKey } from './sendgrid.js';
import { SesWebhook } from './ses.js';
import { SnsCertificates } from './sns.js';

/** A replay guard that can also take back an id whose notification was not applied after all. */
export type ForgettingReplayGuard = ReplayGuard & { forget?(source: FeedbackSource, id: string): Promise<void> };

export interface FeedbackWebhooksDeps {
  feedback: Config['feedback'];
  /** SNS signing certificates known in advance: URL -> PEM text (config ses.certificates, read). */
  certificates: ReadonlyMap<string, string>;
  sink: FeedbackSink;
  refusals: FeedbackRefusals;
  replay: ForgettingReplayGuard;
  clock: Pick<Clock, 'now'>;
  log: Logger;
  /** GETs an SNS certificate or SubscribeURL (production: fetch-text.ts httpsGetText); tests inject. */
  fetchText?: ((url: string) => Promise<string>) | undefined;
}

interface Provider {
  readonly source: FeedbackSource;
  verify(req: WebhookRequest): Verdict | Promise<Verdict>;
}

export const WEBHOOK_PREFIX = '/webhooks/';

export class FeedbackWebhooks {
  readonly #providers = new Map<string, Provider>();
  readonly #d: FeedbackWebhooksDeps;
  readonly #maxBody: number;
  readonly #ses: SesWebhook | undefined;
  /** For `/stats`: requests per outcome, and reports the sink took. */
  readonly stats = { requests: 0, accepted: 0, refused: 0, replayed: 0, failed: 0, reports: 0, applied: 0, duplicates: 0, suppressed: 0 };

  /** @throws MailwheelError (MW_CONFIG_INVALID) naming each unusable key, pattern or certificate. */
  constructor(deps: FeedbackWebhooksDeps) {
    this.#d = deps;
    const w = deps.feedback.webhooks;
    this.#maxBody = w.maxBodyBytes;
    const problems: ConfigProblem[] = [];
    if (w.ses.enabled) {
      let pattern: RegExp | undefined;
      try {
        pattern = new RegExp(w.ses.certHostPattern);
      } catch {
        problems.push({ field: 'feedback.webhooks.ses.certHostPattern', message: 'is not a valid regular expression' });
      }
      const certificates = new SnsCertificates(deps.certificates, deps.fetchText);
      for (const url of certificates.unusable()) problems.push({ field: 'feedback.webhooks.ses.certificates', message: `the certificate for ${url} is not a PEM X.509 certificate` });
      if (pattern !== undefined) {
        this.#ses = new SesWebhook({ ...w.ses, maxAgeSeconds: w.maxAgeSeconds, certificates, fetchText: deps.fetchText, log: deps.log });
        this.#providers.set('ses', this.#ses);
      }
    }
    if (w.sendgrid.publicKey !== null) {
      try {
        this.#providers.set('sendgrid', new SendgridWebhook(sendgridKey(w.sendgrid.publicKey), w.maxAgeSeconds));
      } catch {
        problems.push({ field: 'feedback.webhooks.sendgrid.publicKey', message: 'is not an EC public key (base64 DER as the SendGrid console shows it, or PEM)' });
      }
    }
    if (w.mailgun.signingKey !== null) this.#providers.set('mailgun', new MailgunWebhook(w.mailgun.signingKey, w.maxAgeSeconds));
    if (w.postmark.username !== null && w.postmark.password !== null) this.#providers.set('postmark', new PostmarkWebhook(w.postmark.username, w.postmark.password));
    if (problems.length > 0) throw ConfigError.of(problems);
  }

  /** The configured paths (`/webhooks/<provider>`). */
  paths(): string[] {
    return [...this.#providers.keys()].map((p) => `${WEBHOOK_PREFIX}${p}`);
  }

  handles(path: string): boolean {
    return this.#provider(path) !== undefined;
  }

  /** SNS subscription counters (confirmed, failed, not confirmed), for `/stats`. */
  get sesStats(): SesWebhook['stats'] | undefined {
    return this.#ses?.stats;
  }

  /** Answers one request to a path `handles` accepted; never throws. */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const provider = this.#provider((req.url ?? '/').split('?')[0] ?? '/');
    this.stats.requests++;
    if (provider === undefined) return send(res, 404, { error: 'not found' });
    const source = provider.source;
    try {
      if (req.method !== 'POST') return this.#refuse(res, source, 'malformed', 405, { allow: 'POST' });
      const body = await readCappedBody(req, this.#maxBody);
      if (body === 'too-large') return this.#refuse(res, source, 'too-large', 413, { connection: 'close' });
      if (body === 'aborted') return this.#refuse(res, source, 'malformed', 400);

      const verdict = await provider.verify({ headers: req.headers, body, now: this.#d.clock.now() });
      if (!verdict.ok) return this.#refuse(res, source, verdict.reason, verdict.status);

      if (verdict.replayId !== null) {
        let first: boolean;
        try {
          first = await this.#d.replay.firstSeen(source, verdict.replayId);
        } catch (err) {
          return this.#failed(res, source, err, 'replay guard');
        }
        if (!first) {
          this.stats.replayed++;
          this.#count(source, 'replayed');
          return send(res, 200, { ok: true, replayed: true });
        }
      }
      this.stats.accepted++;
      for (const reason of verdict.skipped) this.#d.refusals.refuse(source, reason);
      if (verdict.action !== undefined) {
        const { status, body: answer } = await verdict.action();
        return send(res, status, answer);
      }
      if (verdict.reports.length === 0) return send(res, 200, { ok: true, applied: 0, duplicates: 0, suppressed: 0, ignored: verdict.skipped.length });

      let result;
      try {
        result = await this.#d.sink.apply(verdict.reports);
      } catch (err) {
        if (verdict.replayId !== null) await this.#d.replay.forget?.(source, verdict.replayId).catch(() => undefined);
        return this.#failed(res, source, err, 'sink');
      }
      for (const i of result.ignored) this.#d.refusals.refuse(source, i.reason);
      this.stats.reports += verdict.reports.length;
      this.stats.applied += result.applied;
      this.stats.duplicates += result.duplicates;
      this.stats.suppressed += result.suppressed;
      return send(res, 200, { ok: true, applied: result.applied, duplicates: result.duplicates, suppressed: result.suppressed, ignored: result.ignored.length + verdict.skipped.length });
    } catch (err) {
      this.stats.failed++;
      this.#d.log.error({ err, source }, 'webhook handler failed');
      if (res.headersSent) res.destroy();
      else send(res, 500, { error: 'internal error' });
    }
  }

  #provider(path: string): Provider | undefined {
    return path.startsWith(WEBHOOK_PREFIX) ? this.#providers.get(path.slice(WEBHOOK_PREFIX.length)) : undefined;
  }

  #count(source: FeedbackSource, reason: FeedbackRefusal): void {
    this.#d.refusals.refuse(source, reason);
    // Debug, not info: anyone can post garbage here, and a flood must not flood the log too.
    this.#d.log.debug({ source, reason }, 'webhook refused');
  }

  #refuse(res: ServerResponse, source: FeedbackSource, reason: FeedbackRefusal, status: number, headers: Record<string, string> = {}): void {
    this.stats.refused++;
    this.#count(source, reason);
    if (status === 401 && source === 'postmark') headers['www-authenticate'] = 'Basic realm="mailwheel"';
    send(res, status, { error: reason }, headers);
  }

  #failed(res: ServerResponse, source: FeedbackSource, err: unknown, what: string): void {
    this.stats.failed++;
    // The error comes from the store; it carries neither the body nor a secret.
    this.#d.log.error({ err, source }, `webhook: ${what} failed; the provider will retry`);
    send(res, 503, { error: 'unavailable' }, { 'retry-after': '60' });
  }
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...headers });
  res.end(text);
}
