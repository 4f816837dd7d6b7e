/**
 * Amazon SES feedback through an SNS topic at `/webhooks/ses`. The SNS envelope is authenticated
 * (sns.ts), its topic checked against `topicArns`, its Timestamp against maxAgeSeconds; then the
 * SES notification in its Message is read. SES has two shapes (AWS docs "Contents of
 * notifications" and "event publishing"): `notificationType` or `eventType` Bounce / Complaint /
 * Delivery / ..., with `bounce.bouncedRecipients[]` and `complaint.complainedRecipients[]`.
 *
 * Bounce Permanent is a hard bounce; Transient and Undetermined are soft. The Message-ID reported
 * is the original message's header (mail.headers / mail.commonHeaders), never SES's own
 * mail.messageId, which mailwheel does not know.
 */
import type { Logger } from 'pino';
import type { FeedbackKind, FeedbackReport } from '../../ports/feedback.js';
import {
  type Accepted,
  dateOf,
  detailOf,
  emailOf,
  fresh,
  isRecord,
  type Json,
  messageIdOf,
  parseJson,
  refuse,
  report,
  STATUS,
  str,
  type Verdict,
  type WebhookRequest,
} from './common.js';
import { signatureValid, type SnsCertificates, type SnsMessage, snsMessageOf, trustedSnsUrl } from './sns.js';

export interface SesWebhookOptions {
  /** Accepted topic ARNs; empty: any. */
  topicArns: readonly string[];
  /** Hosts SigningCertURL and SubscribeURL may name (config ses.certHostPattern). */
  certHostPattern: string;
  confirmSubscriptions: boolean;
  maxAgeSeconds: number;
  certificates: SnsCertificates;
  /** GETs a SubscribeURL; without it a confirmation is answered 503 (SNS retries it). */
  fetchText?: ((url: string) => Promise<string>) | undefined;
  log: Logger;
}

/** Recipients read from one notification at most (SES sends to at most 50 per message). */
const MAX_RECIPIENTS = 1000;

export class SesWebhook {
  readonly source = 'ses' as const;
  readonly #o: SesWebhookOptions;
  readonly #host: RegExp;
  readonly stats = { subscriptionsConfirmed: 0, subscriptionsFailed: 0, subscriptionsNotConfirmed: 0, unsubscribeConfirmations: 0 };

  constructor(o: SesWebhookOptions) {
    this.#o = o;
    // The whole host must match: an unanchored pattern in the config must not let
    // `sns.eu-west-1.amazonaws.com.evil.example` through.
    this.#host = new RegExp(`^(?:${o.certHostPattern})$`);
  }

  async verify(req: WebhookRequest): Promise<Verdict> {
    const body = parseJson(req.body);
    const m = isRecord(body) ? snsMessageOf(body) : undefined;
    if (m === undefined) return refuse('malformed', STATUS.malformed);
    if (this.#o.topicArns.length > 0 && !this.#o.topicArns.includes(m.TopicArn)) return refuse('unknown-topic', STATUS.forbidden);
    if (!trustedSnsUrl(m.SigningCertURL, this.#host, true)) return refuse('bad-certificate', STATUS.forbidden);
    const cert = await this.#o.certificates.get(m.SigningCertURL, req.now);
    if (cert === undefined) return refuse('bad-certificate', STATUS.forbidden);
    if (!signatureValid(m, cert)) return refuse('bad-signature', STATUS.badSignature);
    if (!fresh(Date.parse(m.Timestamp), req.now, this.#o.maxAgeSeconds)) return refuse('stale', STATUS.stale);

    if (m.Type === 'SubscriptionConfirmation') return this.#confirmation(m);
    if (m.Type === 'UnsubscribeConfirmation') {
      return accepted(null, [], [], async () => {
        this.stats.unsubscribeConfirmations++;
        this.#o.log.info({ topicArn: m.TopicArn }, 'ses webhook: SNS says the subscription was removed');
        return { status: 200, body: { ok: true } };
      });
    }
    const inner = parseJson(m.Message);
    if (!isRecord(inner)) return refuse('malformed', STATUS.malformed);
    const parsed = sesReports(inner, m);
    if (parsed === undefined) return refuse('malformed', STATUS.malformed);
    return accepted(m.MessageId, parsed.reports, parsed.skipped);
  }

  #confirmation(m: SnsMessage): Verdict {
    const url = m.SubscribeURL as string;
    if (!this.#o.confirmSubscriptions) {
      return accepted(null, [], [], async () => {
        this.stats.subscriptionsNotConfirmed++;
        this.#o.log.warn({ topicArn: m.TopicArn }, 'ses webhook: subscription confirmation received; confirmSubscriptions is off, confirm it in the AWS console');
        return { status: 200, body: { ok: true, confirmed: false } };
      });
    }
    // The SubscribeURL is covered by the signature, but a confirmation GET is a request to a
    // URL from the internet: only to an SNS host.
    if (!trustedSnsUrl(url, this.#host, false)) return refuse('malformed', STATUS.malformed);
    const fetchText = this.#o.fetchText;
    return accepted(null, [], [], async () => {
      if (fetchText === undefined) {
        this.stats.subscriptionsFailed++;
        return { status: 503, body: { error: 'cannot confirm subscriptions' } };
      }
      try {
        await fetchText(url);
      } catch (err) {
        this.stats.subscriptionsFailed++;
        this.#o.log.warn({ topicArn: m.TopicArn, err: (err as Error).message }, 'ses webhook: subscription confirmation failed; SNS will send it again');
        return { status: 502, body: { error: 'confirmation failed' } };
      }
      this.stats.subscriptionsConfirmed++;
      this.#o.log.info({ topicArn: m.TopicArn }, 'ses webhook: SNS subscription confirmed');
      return { status: 200, body: { ok: true, confirmed: true } };
    });
  }
}

function accepted(replayId: string | null, reports: FeedbackReport[], skipped: Accepted['skipped'], action?: Accepted['action']): Accepted {
  return action === undefined ? { ok: true, replayId, reports, skipped } : { ok: true, replayId, reports, skipped, action };
}

/**
 * The reports in one SES notification (either shape); undefined when it is not an SES
 * notification at all. A Delivery, Send, Open, ... is a single 'not-feedback'.
 */
export function sesReports(n: Json, sns: Pick<SnsMessage, 'MessageId' | 'Timestamp'>): { reports: FeedbackReport[]; skipped: Accepted['skipped'] } | undefined {
  const type = str(n, 'notificationType') ?? str(n, 'eventType');
  if (type === undefined) return undefined;
  const mail = isRecord(n['mail']) ? n['mail'] : {};
  const messageId = originalMessageId(mail);
  const sent = dateOf(sns.Timestamp, new Date(NaN));

  let kind: (r: Json) => FeedbackKind | undefined;
  let list: unknown;
  let section: Json;
  if (type === 'Bounce' && isRecord(n['bounce'])) {
    section = n['bounce'];
    const bounceType = str(section, 'bounceType');
    const k: FeedbackKind = bounceType === 'Permanent' ? 'hard-bounce' : 'soft-bounce';
    kind = () => k;
    list = section['bouncedRecipients'];
  } else if (type === 'Complaint' && isRecord(n['complaint'])) {
    section = n['complaint'];
    // A recipient who marked the message "not spam" is not complaining.
    const notSpam = str(section, 'complaintFeedbackType') === 'not-spam';
    kind = () => (notSpam ? undefined : 'complaint');
    list = section['complainedRecipients'];
  } else if (type === 'Bounce' || type === 'Complaint') {
    return undefined;
  } else {
    return { reports: [], skipped: ['not-feedback'] };
  }
  if (!Array.isArray(list) || list.length === 0) return undefined;

  const at = dateOf(section['timestamp'], sent);
  const reports: FeedbackReport[] = [];
  const skipped: Accepted['skipped'] = [];
  for (const r of list.slice(0, MAX_RECIPIENTS)) {
    const email = isRecord(r) ? emailOf(r['emailAddress']) : undefined;
    const k = isRecord(r) ? kind(r) : undefined;
    if (email === undefined || !isRecord(r)) {
      skipped.push('malformed');
      continue;
    }
    if (k === undefined) {
      skipped.push('not-feedback');
      continue;
    }
    const detail =
      k === 'complaint'
        ? detailOf(str(section, 'complaintFeedbackType') ?? 'complaint')
        : detailOf(`${str(section, 'bounceType') ?? '?'}/${str(section, 'bounceSubType') ?? '?'}`, r['status'], r['diagnosticCode']);
    reports.push(report('ses', k, { email, messageId, eventId: `${sns.MessageId}:${email.toLowerCase()}`, at, detail }));
  }
  for (let i = MAX_RECIPIENTS; i < list.length; i++) skipped.push('malformed');
  return { reports, skipped };
}

/** The original Message-ID: the header itself when SES kept the headers, else commonHeaders. */
function originalMessageId(mail: Json): string | undefined {
  const headers = mail['headers'];
  if (Array.isArray(headers)) {
    for (const h of headers) {
      if (isRecord(h) && typeof h['name'] === 'string' && h['name'].toLowerCase() === 'message-id') {
        const id = messageIdOf(h['value']);
        if (id !== undefined) return id;
      }
    }
  }
  const common = mail['commonHeaders'];
  return isRecord(common) ? messageIdOf(common['messageId']) : undefined;
}
