/**
 * Mailgun webhooks at `/webhooks/mailgun` (Mailgun docs "Securing webhooks"): the JSON body is
 * `{signature: {timestamp, token, signature}, "event-data": {...}}`; `signature` is the hex
 * HMAC-SHA256 of `timestamp + token` under the webhook signing key. A stale timestamp is refused,
 * and a token seen before is a replay (the dispatcher's replay guard, keyed by the token).
 *
 * Events: `failed` with severity `permanent` is a hard bounce, `temporary` a soft one;
 * `complained` is a complaint; the rest (delivered, opened, ...) is not feedback.
 */
import { createHmac } from 'node:crypto';
import type { FeedbackKind } from '../../ports/feedback.js';
import { dateOf, detailOf, emailOf, fresh, isRecord, type Json, messageIdOf, parseJson, refuse, report, safeEqual, STATUS, str, type Verdict, type WebhookRequest } from './common.js';

export class MailgunWebhook {
  readonly source = 'mailgun' as const;
  readonly #key: string;
  readonly #maxAgeSeconds: number;

  constructor(signingKey: string, maxAgeSeconds: number) {
    this.#key = signingKey;
    this.#maxAgeSeconds = maxAgeSeconds;
  }

  verify(req: WebhookRequest): Verdict {
    const body = parseJson(req.body);
    if (!isRecord(body)) return refuse('malformed', STATUS.malformed);
    const sig = body['signature'];
    const timestamp = isRecord(sig) ? numericString(sig['timestamp']) : undefined;
    const token = isRecord(sig) ? str(sig, 'token') : undefined;
    const given = isRecord(sig) ? str(sig, 'signature') : undefined;
    if (timestamp === undefined || token === undefined || given === undefined) return refuse('unauthenticated', STATUS.unauthenticated);
    const expected = createHmac('sha256', this.#key).update(timestamp + token).digest('hex');
    if (!safeEqual(given.toLowerCase(), expected)) return refuse('bad-signature', STATUS.badSignature);
    if (!fresh(Number(timestamp) * 1000, req.now, this.#maxAgeSeconds)) return refuse('stale', STATUS.stale);

    const data = body['event-data'];
    if (!isRecord(data) || str(data, 'event') === undefined) return refuse('malformed', STATUS.malformed);
    const kind = kindOf(data);
    if (kind === undefined) return { ok: true, replayId: token, reports: [], skipped: ['not-feedback'] };
    const email = emailOf(data['recipient']);
    if (email === undefined) return refuse('malformed', STATUS.malformed);
    const message = isRecord(data['message']) ? data['message'] : {};
    const headers = isRecord(message['headers']) ? message['headers'] : {};
    const status: Json = isRecord(data['delivery-status']) ? data['delivery-status'] : {};
    const r = report('mailgun', kind, {
      email,
      messageId: messageIdOf(headers['message-id']),
      eventId: str(data, 'id'),
      at: dateOf(data['timestamp'], new Date(Number(timestamp) * 1000)),
      detail: kind === 'complaint' ? 'complaint' : detailOf(status['code'], status['message'] ?? status['description'], str(data, 'reason')),
    });
    return { ok: true, replayId: token, reports: [r], skipped: [] };
  }
}

function kindOf(d: Json): FeedbackKind | undefined {
  const event = str(d, 'event');
  if (event === 'complained') return 'complaint';
  if (event !== 'failed') return undefined;
  const severity = str(d, 'severity');
  return severity === 'permanent' ? 'hard-bounce' : severity === 'temporary' ? 'soft-bounce' : undefined;
}

/** Mailgun sends the timestamp as a string of epoch seconds (a number is accepted too). */
function numericString(v: unknown): string | undefined {
  const s = typeof v === 'number' && Number.isInteger(v) ? String(v) : v;
  return typeof s === 'string' && /^\d{1,12}$/.test(s) ? s : undefined;
}
