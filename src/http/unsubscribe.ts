/**
 * One-click unsubscribe (RFC 8058) at `/unsubscribe?t=TOKEN`.
 *
 * - `POST` with the body `List-Unsubscribe=One-Click` (form-urlencoded, or multipart/form-data,
 *   which RFC 8058 says senders SHOULD use) and a valid signed token suppresses the address; a
 *   repeat is answered the same way (idempotent).
 * - `GET` never unsubscribes: mail scanners and link previewers fetch every URL in a message, so a
 *   GET only shows a page whose button POSTs the same token.
 *
 * The token is the only credential, so it is never logged, and the secret never leaves
 * `verifyToken`. Pages contain fixed text plus, in the form action, the token URL-encoded.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { verifyToken, type TokenRefusal } from '../core/unsubscribe-token.js';
import { Errors } from '../errors.js';
import { systemClock, type Clock } from '../ports/index.js';

/** Where a verified unsubscribe goes (`SuppressionList` in the daemon). */
export interface Unsubscriber {
  unsubscribe(email: string, userId?: string): Promise<void>;
}

export interface UnsubscribeHandlerDeps {
  list: Unsubscriber;
  /** Config `unsubscribe.secret`; null refuses every token with 503 (not configured). */
  secret: string | null;
  /** Defaults to the system clock; token expiry is checked against it. */
  clock?: Pick<Clock, 'now'>;
  log: Logger;
}

export interface UnsubscribeHandlerOptions {
  /** Largest accepted POST body, in bytes; beyond it the answer is 413. Default 4096. */
  maxBodyBytes?: number;
}

/** Tokens we sign are a few hundred characters; anything far longer is not ours. */
const MAX_TOKEN_CHARS = 2048;

const STATUS_OF: Record<TokenRefusal, number> = {
  malformed: 400,
  'bad-signature': 400,
  expired: 410,
  'no-secret': 503,
};

export class UnsubscribeHandler {
  readonly #list: Unsubscriber;
  readonly #secret: string | null;
  readonly #clock: Pick<Clock, 'now'>;
  readonly #log: Logger;
  readonly #maxBody: number;
  /** For `/stats`: verified unsubscribes, refused requests, and store failures (answered 503). */
  readonly stats = { unsubscribed: 0, refused: 0, failed: 0 };

  constructor(deps: UnsubscribeHandlerDeps, options: UnsubscribeHandlerOptions = {}) {
    this.#list = deps.list;
    this.#secret = deps.secret;
    this.#clock = deps.clock ?? systemClock;
    this.#log = deps.log;
    this.#maxBody = options.maxBodyBytes ?? 4096;
  }

  /** Answers one request whose path is `/unsubscribe`; never throws for a bad request. */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'POST') {
      return page(res, 405, 'Method not allowed', 'Use the link or button in the email.', { allow: 'GET, POST' });
    }
    const token = new URL(req.url ?? '/', 'http://localhost').searchParams.get('t') ?? '';
    const check = token === '' || token.length > MAX_TOKEN_CHARS ? ({ ok: false, reason: 'malformed' } as const) : verifyToken(token, this.#secret, this.#clock.now());
    if (!check.ok) return this.#refuse(res, check.reason);

    if (req.method === 'GET') return confirmPage(res, token);

    const declared = Number(req.headers['content-length'] ?? 0);
    const body = declared > this.#maxBody ? undefined : await readBody(req, this.#maxBody);
    if (body === undefined) {
      this.stats.refused++;
      return tooLarge(res);
    }
    if (!isOneClick(body, req.headers['content-type'])) {
      this.stats.refused++;
      return page(res, 400, 'Not unsubscribed', 'The request did not ask for a one-click unsubscribe.');
    }

    try {
      await this.#list.unsubscribe(check.email, check.userId);
    } catch (err) {
      this.stats.failed++;
      // The error comes from the store; it carries neither the token nor the secret.
      this.#log.error({ err, userId: check.userId }, 'unsubscribe could not be stored');
      return page(res, 503, 'Try again later', 'Your request could not be recorded just now. Please try again in a minute.', { 'retry-after': '60' });
    }
    this.stats.unsubscribed++;
    this.#log.info({ userId: check.userId }, 'unsubscribed');
    return page(res, 200, 'Unsubscribed', 'You will not receive these emails any more.');
  }

  #refuse(res: ServerResponse, reason: TokenRefusal): void {
    this.stats.refused++;
    // Debug, not info: anyone can send garbage here, and a flood must not flood the log too.
    this.#log.debug({ reason }, 'unsubscribe refused');
    if (reason === 'no-secret') return page(res, 503, 'Unavailable', 'Unsubscribing by link is not available. Please reply to the email instead.');
    if (reason === 'expired') return page(res, STATUS_OF[reason], 'Link expired', 'This unsubscribe link has expired. Please use the link in a more recent email.');
    return page(res, STATUS_OF[reason], 'Invalid link', 'This unsubscribe link is not valid.');
  }
}

/** Reads at most `limit` bytes; undefined when the body is larger (the rest is not read). */
function readBody(req: IncomingMessage, limit: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      fn();
    };
    req.on('data', (chunk: Buffer) => {
      if (settled) return;
      size += chunk.length;
      if (size > limit) return settle(() => resolve(undefined));
      chunks.push(chunk);
    });
    req.on('end', () => settle(() => resolve(Buffer.concat(chunks).toString('utf8'))));
    req.on('error', (err) => settle(() => reject(err)));
    req.on('close', () => settle(() => reject(new Errors.REQUEST_ABORTED('request closed before its body was read'))));
  });
}

/** RFC 8058 §3.2: the POST carries `List-Unsubscribe=One-Click`, as a form field. */
function isOneClick(body: string, contentType: string | undefined): boolean {
  if (contentType?.toLowerCase().startsWith('multipart/form-data')) {
    // One part named List-Unsubscribe whose value is One-Click; a full multipart parser is not
    // needed to recognise a single fixed field.
    return /content-disposition:\s*form-data;\s*name="?List-Unsubscribe"?[^\r\n]*\r?\n(?:[^\r\n]+\r?\n)*\r?\nOne-Click\r?\n/i.test(body);
  }
  return new URLSearchParams(body).get('List-Unsubscribe') === 'One-Click';
}

function tooLarge(res: ServerResponse): void {
  // Close the connection: the unread rest of the body must not be parsed as the next request.
  page(res, 413, 'Request too large', 'The request body is too large.', { connection: 'close' });
}

function confirmPage(res: ServerResponse, token: string): void {
  // A relative action keeps the path this page was served under (e.g. behind a proxy prefix).
  const action = `?t=${encodeURIComponent(token)}`;
  page(
    res,
    200,
    'Unsubscribe',
    'Press the button to stop receiving these emails.',
    {},
    `<form method="post" action="${escapeHtml(action)}"><input type="hidden" name="List-Unsubscribe" value="One-Click"><button type="submit">Unsubscribe</button></form>`,
  );
}

function page(res: ServerResponse, status: number, title: string, text: string, headers: Record<string, string> = {}, extra = ''): void {
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex"><title>${title}</title></head><body><h1>${title}</h1><p>${text}</p>${extra}</body></html>`;
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(html),
    'cache-control': 'no-store',
    // The URL holds the token: no Referer to other sites, no framing (a framed button is a
    // clickjacking target), nothing loaded from elsewhere.
    'referrer-policy': 'no-referrer',
    'content-security-policy': "default-src 'none'; form-action 'self'; frame-ancestors 'none'",
    'x-content-type-options': 'nosniff',
    ...headers,
  });
  res.end(html);
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
