/**
 * SendGrid Event Webhook at `/webhooks/sendgrid` (Twilio docs "Getting Started with the Event
 * Webhook Security Features"): SendGrid signs `timestamp + raw body` with ECDSA P-256 / SHA-256;
 * the base64 DER signature is in `X-Twilio-Email-Event-Webhook-Signature`, the timestamp (epoch
 * seconds) in `X-Twilio-Email-Event-Webhook-Timestamp`. The verification key is shown in the
 * SendGrid console as base64 DER SubjectPublicKeyInfo; a PEM is accepted too.
 *
 * The body is a JSON array of events: `bounce` (type `bounce` is hard, `blocked` soft), `dropped`
 * with reason "Bounced Address" (SendGrid already holds the address as bounced: hard), and
 * `spamreport` (a complaint). Everything else (delivered, open, click, deferred, ...) is not
 * feedback.
 */
import { createHash, createPublicKey, type KeyObject, verify } from 'node:crypto';
import type { FeedbackKind, FeedbackReport } from '../../ports/feedback.js';
import { type Accepted, dateOf, detailOf, emailOf, fresh, header, isRecord, type Json, messageIdOf, parseJson, refuse, report, STATUS, str, type Verdict, type WebhookRequest } from './common.js';

export const SENDGRID_SIGNATURE = 'x-twilio-email-event-webhook-signature';
export const SENDGRID_TIMESTAMP = 'x-twilio-email-event-webhook-timestamp';

/** The configured key (base64 DER SPKI or PEM) as a key object; throws naming the problem. */
export function sendgridKey(text: string): KeyObject {
  const t = text.trim();
  const key = t.includes('-----BEGIN') ? createPublicKey(t) : createPublicKey({ key: Buffer.from(t, 'base64'), format: 'der', type: 'spki' });
  if (key.asymmetricKeyType !== 'ec') throw new Error('feedback.webhooks.sendgrid.publicKey is not an EC public key');
  return key;
}

export class SendgridWebhook {
  readonly source = 'sendgrid' as const;
  readonly #key: KeyObject;
  readonly #maxAgeSeconds: number;

  constructor(publicKey: KeyObject, maxAgeSeconds: number) {
    this.#key = publicKey;
    this.#maxAgeSeconds = maxAgeSeconds;
  }

  verify(req: WebhookRequest): Verdict {
    const signature = header(req.headers, SENDGRID_SIGNATURE);
    const timestamp = header(req.headers, SENDGRID_TIMESTAMP);
    if (signature === undefined || timestamp === undefined) return refuse('unauthenticated', STATUS.unauthenticated);
    let ok = false;
    try {
      ok = verify('sha256', Buffer.concat([Buffer.from(timestamp, 'utf8'), req.body]), this.#key, Buffer.from(signature, 'base64'));
    } catch {
      ok = false;
    }
    if (!ok) return refuse('bad-signature', STATUS.badSignature);
    if (!/^\d{1,12}$/.test(timestamp) || !fresh(Number(timestamp) * 1000, req.now, this.#maxAgeSeconds)) return refuse('stale', STATUS.stale);

    const events = parseJson(req.body);
    if (!Array.isArray(events)) return refuse('malformed', STATUS.malformed);
    const reports: FeedbackReport[] = [];
    const skipped: Accepted['skipped'] = [];
    const at = new Date(Number(timestamp) * 1000);
    for (const e of events) {
      const r = isRecord(e) ? sendgridReport(e, at) : 'malformed';
      if (typeof r === 'string') skipped.push(r);
      else reports.push(r);
    }
    // ECDSA signatures are randomised: the pair names this very request, not its events (the
    // sink drops a re-signed retry of the same events by their sg_event_id).
    const replayId = createHash('sha256').update(`${timestamp}\n${signature}`).digest('hex');
    return { ok: true, replayId, reports, skipped };
  }
}

function kindOf(e: Json): FeedbackKind | undefined {
  const event = str(e, 'event');
  if (event === 'bounce') return str(e, 'type') === 'blocked' ? 'soft-bounce' : 'hard-bounce';
  if (event === 'dropped') return str(e, 'reason') === 'Bounced Address' ? 'hard-bounce' : undefined;
  if (event === 'spamreport') return 'complaint';
  return undefined;
}

export function sendgridReport(e: Json, fallbackAt: Date): FeedbackReport | 'not-feedback' | 'malformed' {
  if (str(e, 'event') === undefined) return 'malformed';
  const kind = kindOf(e);
  if (kind === undefined) return 'not-feedback';
  const email = emailOf(e['email']);
  if (email === undefined) return 'malformed';
  return report('sendgrid', kind, {
    email,
    messageId: messageIdOf(e['smtp-id']),
    eventId: str(e, 'sg_event_id'),
    at: dateOf(e['timestamp'], fallbackAt),
    detail: detailOf(str(e, 'type') ?? str(e, 'event'), e['status'], e['reason']),
  });
}
