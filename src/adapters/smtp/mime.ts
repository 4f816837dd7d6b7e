/**
 * Raw MIME for one template set, built by substitution instead of by nodemailer's MIME tree.
 *
 * nodemailer's MailComposer builds every message through a tree of streams (~2,500-3,000 msgs/s
 * per core here, docs/ARCHITECTURE.md "Known limits"), which caps a per-message `sendMail`. Everything in a
 * message except a handful of per-user values is the same for every recipient, so this builder
 * encodes the fixed parts once (headers, part headers, quoted-printable of the template text)
 * and per message only encodes the variables and joins strings. The result goes to the SMTP
 * pool as `raw`, with an explicit envelope.
 *
 * Safety properties the tests check:
 * - no value can start a header line: every header value is made one line, non-ASCII (or
 *   anything that looks like an encoded-word) becomes RFC 2047 encoded-words, lines are folded;
 * - no value can end a MIME part: bodies are quoted-printable, and the boundary contains "=_",
 *   which quoted-printable output never contains (its "=" is always followed by two hex digits
 *   or a line break), so no body line can equal a boundary line whatever the data.
 */
import { randomBytes } from 'node:crypto';
import addressparser from 'nodemailer/lib/addressparser';
import { encodeWord, foldLines, quoteString } from 'nodemailer/lib/mime-funcs';
import { encode as qpEncode, wrap as qpWrap } from 'nodemailer/lib/qp';
import { messageIdFor } from '../../core/message.js';
import { escapeHtml, oneLine, renderPart, templateVars, type CompiledPart, type TemplateSet, type TemplateVar, type TemplateVars } from '../../core/templates.js';
import type { Delivery } from '../../core/types.js';
import { systemClock } from '../../ports/clock.js';
import { ErrorCodes, MailwheelError } from '../../errors.js';

export interface MimeBuilderOptions {
  /** The From header, e.g. `mailwheel <noreply@example.com>`; its address is also the envelope sender unless `returnPath` is given. */
  from: string;
  /**
   * The envelope sender (MAIL FROM) of each message from its Message-ID digest: the VERP return
   * path (core/verp.ts), so bounces name the message. Default: the From address for every message.
   */
  returnPath?: ((digest: string) => string) | undefined;
  /** Domain of the Message-IDs; default: the domain of the From address. */
  messageIdDomain?: string | undefined;
  /** Milliseconds since the epoch for the Date header; default the system clock (tests pass a fixed one). */
  now?: (() => number) | undefined;
  /**
   * `broadcasts.feedbackId`: the Feedback-ID header of broadcast messages (Gmail's feedback loop
   * reports complaints per value), `{broadcast}` replaced by the broadcast id. Scheduled mail
   * never carries one. Null/undefined: no header.
   */
  feedbackId?: string | null | undefined;
}

/** One message, ready for `sendMail({ envelope, raw })`. */
export interface BuiltMessage {
  /** RFC 5322 message, CRLF line ends, 7-bit ASCII. */
  raw: string;
  messageId: string;
  envelope: { from: string; to: string[] };
}

/** A quoted-printable piece and the lengths needed to join it to others without overlong lines. */
interface QpPiece {
  readonly enc: string;
  /** Length of its first line (up to the first CRLF, or all of it). */
  readonly first: number;
  /** Length of its last line (after the last CRLF). */
  readonly last: number;
  readonly multiline: boolean;
}

/** A part prepared once: pre-encoded literal pieces, and the variables between them. */
type PreparedSegment = QpPiece | { readonly var: TemplateVar };

/**
 * RFC 2045 allows 76 characters per encoded line. Pieces are wrapped at 75 so that a soft line
 * break ("=") can always be added where two pieces meet.
 */
const QP_PIECE_LINE = 75;
const HEADER_LINE = 76;
const ENCODED_WORD_MAX = 52;
const CRLF = '\r\n';

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

export class MimeBuilder {
  readonly #templates: TemplateSet;
  readonly #now: () => number;
  readonly #idDomain: string;
  /** The From header's address; the envelope sender (MAIL FROM) unless a return path is set. */
  readonly fromAddress: string;
  readonly #returnPath: ((digest: string) => string) | undefined;
  readonly #feedbackId: string | null;
  /** The multipart boundary of every message from this builder. */
  readonly boundary: string;
  readonly #fromHeader: string;
  /** Everything after the per-message headers up to the start of the text part's body. */
  readonly #afterHeaders: string;
  /** Between the text and html bodies (multipart only). */
  readonly #betweenParts: string;
  readonly #end: string;
  readonly #text: readonly PreparedSegment[];
  readonly #html: readonly PreparedSegment[] | undefined;
  #dateSecond = -1;
  #dateHeader = '';

  constructor(templates: TemplateSet, opts: MimeBuilderOptions) {
    const from = parseFrom(opts.from);
    this.#templates = templates;
    this.#now = opts.now ?? systemClock.now;
    this.fromAddress = from.address;
    this.#returnPath = opts.returnPath;
    this.#feedbackId = opts.feedbackId ?? null;
    this.#idDomain = opts.messageIdDomain ?? from.address.slice(from.address.lastIndexOf('@') + 1);
    this.#fromHeader = header('From', mailbox(from.name, from.address));
    // "=_" never occurs in quoted-printable output (see the file comment); the random part keeps
    // the boundary unique to this builder, so a forwarded copy of another message cannot clash.
    this.boundary = `----=_mailwheel_${randomBytes(12).toString('hex')}`;
    this.#text = prepare(templates.text);
    this.#html = templates.html === undefined ? undefined : prepare(templates.html);

    const partHeaders = (type: string): string =>
      `Content-Type: ${type}; charset=utf-8${CRLF}Content-Transfer-Encoding: quoted-printable${CRLF}${CRLF}`;
    if (this.#html === undefined) {
      this.#afterHeaders = partHeaders('text/plain');
      this.#betweenParts = '';
      this.#end = '';
    } else {
      const b = this.boundary;
      this.#afterHeaders =
        `Content-Type: multipart/alternative; boundary="${b}"${CRLF}${CRLF}` + `--${b}${CRLF}${partHeaders('text/plain')}`;
      this.#betweenParts = `${CRLF}--${b}${CRLF}${partHeaders('text/html')}`;
      this.#end = `${CRLF}--${b}--${CRLF}`;
    }
  }

  /**
   * The complete message for one delivery. `extraHeaders` (e.g. List-Unsubscribe) are added
   * after X-Mailwheel-Key; their values are made safe like every other header value.
   */
  build(d: Delivery, extraHeaders?: Readonly<Record<string, string>>): BuiltMessage {
    const vars = templateVars(d);
    const messageId = messageIdFor(d.key, this.#idDomain);
    const subject = oneLine(renderPart(this.#templates.subject, vars, (s) => s));
    let head =
      this.#date() +
      this.#fromHeader +
      header('To', mailbox(d.name ?? '', checkedAddress(d.email))) +
      header('Subject', unstructured(subject)) +
      `Message-ID: ${messageId}${CRLF}` +
      `MIME-Version: 1.0${CRLF}` +
      header('X-Mailwheel-Key', unstructured(d.key));
    if (this.#feedbackId !== null && d.kind === 'broadcast' && d.broadcastId !== undefined) {
      head += header('Feedback-ID', unstructured(this.#feedbackId.replaceAll('{broadcast}', d.broadcastId)));
    }
    if (extraHeaders !== undefined) {
      for (const [name, value] of Object.entries(extraHeaders)) head += header(checkedName(name), unstructured(value));
    }
    let raw = head + this.#afterHeaders + substitute(this.#text, vars, false);
    if (this.#html !== undefined) raw += this.#betweenParts + substitute(this.#html, vars, true);
    raw += this.#end;
    // SMTP DATA ends with CRLF "." CRLF; a text-only body without a final line break gets one.
    if (!raw.endsWith(CRLF)) raw += CRLF;
    // The digest is the Message-ID's local part (`<digest@domain>`, core/message.ts).
    const envelopeFrom = this.#returnPath === undefined ? this.fromAddress : checkedAddress(this.#returnPath(messageId.slice(1, messageId.indexOf('@'))));
    return { raw, messageId, envelope: { from: envelopeFrom, to: [d.email] } };
  }

  /** The Date header, formatted once per second (a bulk run sends thousands per second). */
  #date(): string {
    const ms = this.#now();
    const second = Math.floor(ms / 1000);
    if (second !== this.#dateSecond) {
      this.#dateSecond = second;
      this.#dateHeader = `Date: ${rfc5322Date(ms)}${CRLF}`;
    }
    return this.#dateHeader;
  }
}

/** Pre-encodes the literal segments of a part. */
function prepare(part: CompiledPart): PreparedSegment[] {
  return part.segments.map((seg) => ('text' in seg ? qpPiece(seg.text) : seg));
}

function substitute(segments: readonly PreparedSegment[], vars: TemplateVars, html: boolean): string {
  // A variable usually appears several times in a part (the name in every paragraph); encode
  // each value once per part.
  const encoded: Partial<Record<keyof TemplateVars, QpPiece>> = {};
  const pieces: QpPiece[] = [];
  for (const seg of segments) {
    if ('var' in seg) {
      let piece = encoded[seg.var];
      if (piece === undefined) {
        const value = vars[seg.var];
        piece = qpPiece(html ? escapeHtml(value) : value);
        encoded[seg.var] = piece;
      }
      pieces.push(piece);
    } else {
      pieces.push(seg);
    }
  }
  return joinQp(pieces);
}

/** Quoted-printable of a piece of text, line ends made CRLF (the canonical form of text/*). */
function qpPiece(s: string): QpPiece {
  const enc = qpWrap(qpEncode(s.replace(/\r\n?|\n/g, CRLF)), QP_PIECE_LINE);
  const firstBreak = enc.indexOf(CRLF);
  if (firstBreak < 0) return { enc, first: enc.length, last: enc.length, multiline: false };
  return { enc, first: firstBreak, last: enc.length - enc.lastIndexOf(CRLF) - 2, multiline: true };
}

/**
 * Joins quoted-printable pieces, adding a soft line break where a line would exceed 76
 * characters. Joining is safe anywhere: a piece never ends in literal whitespace (the encoder
 * writes trailing whitespace as =20) and never ends inside an =XX sequence.
 */
function joinQp(pieces: readonly QpPiece[]): string {
  let out = '';
  let column = 0;
  for (const p of pieces) {
    if (p.enc === '') continue;
    if (column > 0 && column + p.first > QP_PIECE_LINE) {
      out += `=${CRLF}`;
      column = 0;
    }
    out += p.enc;
    column = p.multiline ? p.last : column + p.first;
  }
  return out;
}

/** One header field, folded at whitespace to 76 characters per line. */
function header(name: string, value: string): string {
  return foldLines(`${name}: ${value}`, HEADER_LINE) + CRLF;
}

function needsEncoding(s: string): boolean {
  // "=?" would let a value pose as an encoded-word of its own choosing; encode it instead.
  return /[^\x20-\x7e]/.test(s) || s.includes('=?');
}

/** An unstructured header value (Subject, X-*): as is when plain ASCII, else encoded-words. */
function unstructured(value: string): string {
  const s = oneLine(value);
  return needsEncoding(s) ? encodeWord(s, 'Q', ENCODED_WORD_MAX) : s;
}

/** `Name <address>`: the name as an atom, a quoted-string or encoded-words, as it needs. */
function mailbox(name: string, address: string): string {
  const n = oneLine(name);
  if (n === '') return address;
  let phrase: string;
  if (/^[\w ]+$/.test(n)) phrase = n;
  else if (!needsEncoding(n)) phrase = quoteString(n);
  else phrase = encodeWord(n, 'Q', ENCODED_WORD_MAX);
  return `${phrase} <${address}>`;
}

/** Addresses were validated with the user; this keeps a bad one from ever shaping a header. */
function checkedAddress(address: string): string {
  // eslint-disable-next-line no-control-regex
  if (address === '' || /[\s<>,;"\\\u0000-\u001f\u007f]/.test(address)) {
    throw new MailwheelError(ErrorCodes.BAD_ARGUMENT, `not a usable address: ${JSON.stringify(address)}`);
  }
  return address;
}

/** Headers the builder writes itself; an extra header must not duplicate them. */
const OWN_HEADERS = new Set(['date', 'from', 'to', 'subject', 'message-id', 'mime-version', 'x-mailwheel-key', 'feedback-id', 'content-type', 'content-transfer-encoding']);

function checkedName(name: string): string {
  // RFC 5322 field name: printable ASCII except ":".
  if (!/^[\x21-\x39\x3b-\x7e]+$/.test(name)) throw new MailwheelError(ErrorCodes.BAD_ARGUMENT, `not a header name: ${JSON.stringify(name)}`);
  if (OWN_HEADERS.has(name.toLowerCase())) throw new MailwheelError(ErrorCodes.BAD_ARGUMENT, `header ${name} is written by the builder itself`);
  return name;
}

function parseFrom(from: string): { name: string; address: string } {
  const first = addressparser(from, { flatten: true })[0];
  if (first === undefined || !first.address.includes('@')) {
    throw new MailwheelError(ErrorCodes.BAD_ARGUMENT, `smtp.from has no address: ${JSON.stringify(from)}`);
  }
  return { name: first.name, address: checkedAddress(first.address) };
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** RFC 5322 date-time in UTC, e.g. `Mon, 05 Jan 2026 09:00:00 +0000`. */
export function rfc5322Date(ms: number): string {
  const d = new Date(ms);
  return (
    `${DAYS[d.getUTCDay()] ?? ''}, ${pad2(d.getUTCDate())} ${MONTHS[d.getUTCMonth()] ?? ''} ${d.getUTCFullYear()} ` +
    `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())} +0000`
  );
}
