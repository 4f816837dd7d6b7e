/**
 * Postmark bounce and spam-complaint webhooks at `/webhooks/postmark`. Postmark signs nothing: it
 * authenticates with HTTP basic auth given in the webhook URL (`https://user:pass@host/...`),
 * compared here in constant time. The body is one record: `RecordType` "Bounce" (with `Type`, one
 * of Postmark's bounce types) or "SpamComplaint"; `ID` names the record (the replay key).
 *
 * HardBounce and BadEmailAddress are hard; the temporary kinds (Transient, SoftBounce, DnsError,
 * Blocked, Unknown) soft; SpamComplaint a complaint. The rest (AutoResponder, Subscribe,
 * ManuallyDeactivated, DMARCPolicy, ...) says nothing about the address and is not feedback.
 * Postmark's `MessageID` is Postmark's own id, not the Message-ID header mailwheel wrote, so the
 * report carries a Message-ID only when the record includes the original headers.
 */
import type { FeedbackKind } from '../../ports/feedback.js';
import { dateOf, detailOf, emailOf, header, isRecord, type Json, messageIdOf, parseJson, refuse, report, safeEqual, STATUS, str, type Verdict, type WebhookRequest } from './common.js';

const HARD = new Set(['HardBounce', 'BadEmailAddress']);
const SOFT = new Set(['Transient', 'SoftBounce', 'DnsError', 'Blocked', 'Unknown']);

export class PostmarkWebhook {
  readonly source = 'postmark' as const;
  readonly #username: string;
  readonly #password: string;

  constructor(username: string, password: string) {
    this.#username = username;
    this.#password = password;
  }

  verify(req: WebhookRequest): Verdict {
    if (!this.#authorised(header(req.headers, 'authorization'))) return refuse('unauthenticated', STATUS.unauthenticated);
    const body = parseJson(req.body);
    if (!isRecord(body)) return refuse('malformed', STATUS.malformed);
    const id = body['ID'];
    const recordType = str(body, 'RecordType');
    const replayId = typeof id === 'number' && Number.isSafeInteger(id) ? String(id) : typeof id === 'string' && /^[\w-]{1,100}$/.test(id) ? id : undefined;
    if (replayId === undefined || recordType === undefined) return refuse('malformed', STATUS.malformed);
    const kind = kindOf(recordType, str(body, 'Type'));
    if (kind === undefined) return { ok: true, replayId, reports: [], skipped: ['not-feedback'] };
    const email = emailOf(body['Email']);
    if (email === undefined) return refuse('malformed', STATUS.malformed);
    const r = report('postmark', kind, {
      email,
      messageId: originalMessageId(body),
      eventId: replayId,
      at: dateOf(body['BouncedAt'], new Date(NaN)),
      detail: detailOf(str(body, 'Type'), str(body, 'Details') ?? str(body, 'Description')),
    });
    if (!Number.isFinite(r.at.getTime())) return refuse('malformed', STATUS.malformed);
    return { ok: true, replayId, reports: [r], skipped: [] };
  }

  #authorised(authorization: string | undefined): boolean {
    const m = /^basic +([A-Za-z0-9+/=]+)$/i.exec(authorization ?? '');
    const decoded = m?.[1] === undefined ? '' : Buffer.from(m[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const user = colon < 0 ? '' : decoded.slice(0, colon);
    const pass = colon < 0 ? '' : decoded.slice(colon + 1);
    // Both compared every time: how far a guess got must not show in the timing.
    const userOk = safeEqual(user, this.#username);
    const passOk = safeEqual(pass, this.#password);
    return m !== null && colon >= 0 && userOk && passOk;
  }
}

function kindOf(recordType: string, type: string | undefined): FeedbackKind | undefined {
  if (recordType === 'SpamComplaint') return 'complaint';
  if (recordType !== 'Bounce' || type === undefined) return undefined;
  if (type === 'SpamComplaint') return 'complaint';
  return HARD.has(type) ? 'hard-bounce' : SOFT.has(type) ? 'soft-bounce' : undefined;
}

/** The original Message-ID when the record carries the message's headers (`Headers: [{Name, Value}]`). */
function originalMessageId(body: Json): string | undefined {
  const headers = body['Headers'];
  if (!Array.isArray(headers)) return undefined;
  for (const h of headers) {
    if (isRecord(h) && typeof h['Name'] === 'string' && h['Name'].toLowerCase() === 'message-id') return messageIdOf(h['Value']);
  }
  return undefined;
}
