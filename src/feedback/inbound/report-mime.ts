/**
 * The MIME side of an inbound report: a DSN (RFC 3464) and an ARF report (RFC 5965) are both a
 * `multipart/report` (RFC 6522) whose `report-type` names a machine-readable part
 * (`message/delivery-status`, `message/feedback-report`), usually followed by the original
 * message or its headers. mailparser (nodemailer's parser) does the MIME: transfer encodings,
 * charsets, nesting. The machine-readable parts are RFC 822-style header blocks separated by
 * blank lines (RFC 3464 §2.1); each block is read with libmime's header parser (unfolding,
 * repeated fields kept in order), the same one mailparser uses for headers.
 */
import libmime from 'libmime';
import { simpleParser, type ParsedMail } from 'mailparser';

/** One field block: lower-cased field name -> its values, in order (a field may repeat). */
export type FieldBlock = ReadonlyMap<string, readonly string[]>;

/** The parts of a report that the DSN and ARF readers use. */
export interface ReportMessage {
  /** `report-type` of the top-level multipart/report, lower-cased ('' when it is not one). */
  reportType: string;
  /** The report's own Message-ID (with brackets), if it has one. */
  messageId: string | undefined;
  /** The report's Date header, if it parses. */
  date: Date | undefined;
  /** The machine-readable part (delivery-status or feedback-report) as text, if present. */
  statusPart: string | undefined;
  /** The header block of the original message (message/rfc822 or text/rfc822-headers), if present. */
  original: FieldBlock | undefined;
}

/** Content types that carry the original message or just its headers (RFC 3462, RFC 6532). */
const ORIGINAL_TYPES = new Set(['message/rfc822', 'text/rfc822-headers', 'message/rfc822-headers', 'message/global', 'message/global-headers']);
const STATUS_TYPES: Record<string, readonly string[]> = {
  'delivery-status': ['message/delivery-status', 'message/global-delivery-status'],
  'feedback-report': ['message/feedback-report'],
};

/**
 * Parses a raw message. Throws when mailparser cannot read it (the caller counts it malformed).
 * Every embedded message is kept as an attachment (ignoreEmbedded): only its headers matter here.
 */
export async function readReportMessage(raw: Buffer): Promise<ReportMessage> {
  const mail: ParsedMail = await simpleParser(raw, {
    keepDeliveryStatus: true,
    ignoreEmbedded: true,
    skipHtmlToText: true,
    skipTextToHtml: true,
    skipTextLinks: true,
    skipImageLinks: true,
    checksumAlgo: false,
  });
  const ct = mail.headers.get('content-type');
  const isReport = typeof ct === 'object' && ct !== null && 'value' in ct && String(ct.value).toLowerCase() === 'multipart/report';
  const reportType = isReport ? String((ct as { params?: Record<string, string> }).params?.['report-type'] ?? '').toLowerCase() : '';
  const statusTypes = STATUS_TYPES[reportType] ?? [];
  let statusPart: string | undefined;
  let original: FieldBlock | undefined;
  for (const a of mail.attachments) {
    const type = a.contentType.toLowerCase();
    if (statusPart === undefined && statusTypes.includes(type)) statusPart = a.content.toString('utf8');
    else if (original === undefined && ORIGINAL_TYPES.has(type)) original = headerBlock(a.content.toString('utf8'));
  }
  return { reportType, messageId: bracketed(mail.messageId), date: validDate(mail.date), statusPart, original };
}

/** The field blocks of a machine-readable part, in order; blank lines separate them. */
export function fieldBlocks(text: string): FieldBlock[] {
  return text
    .replace(/\r\n?/g, '\n')
    .split(/\n[ \t]*\n/)
    .filter((chunk) => chunk.trim() !== '')
    .map(headerBlock)
    .filter((b) => b.size > 0);
}

/** One header block (stops at its first blank line); names lower-cased, values unfolded and trimmed. */
export function headerBlock(text: string): FieldBlock {
  const decoded = libmime.decodeHeaders(text.replace(/^\s*\n/, ''), { skipPrototypeKeys: true });
  const block = new Map<string, string[]>();
  for (const [name, values] of Object.entries(decoded)) {
    // decodeHeader keeps folding as CRLF + whitespace: one line per value.
    if (name !== '') block.set(name, values.map((v) => v.replace(/\r?\n[ \t]*/g, ' ').trim()));
  }
  return block;
}

/** The first value of a field, or undefined. */
export function field(block: FieldBlock | undefined, name: string): string | undefined {
  const v = block?.get(name)?.[0];
  return v === undefined || v === '' ? undefined : v;
}

/**
 * The address of a typed address field (`rfc822; user@example.com`, RFC 3464 §2.3.2), or of a
 * plain one (`<user@example.com>`, `Name <user@example.com>`). Undefined when there is no
 * plausible address (`local@domain`).
 */
export function addressIn(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  let v = value.trim();
  const typed = /^(rfc822|utf-8)\s*;\s*(.*)$/is.exec(v);
  if (typed !== null) v = (typed[2] as string).trim();
  else if (/^[a-z0-9-]+\s*;/i.test(v)) return undefined; // another address type (x400; …): not an email
  const angle = /<([^<>\s]*)>/.exec(v);
  if (angle !== null) v = angle[1] as string;
  v = v.replace(/\s*\(.*\)\s*$/, '').trim(); // a trailing comment
  return /^[^\s@<>,;]+@[^\s@<>,;]+$/.test(v) ? v : undefined;
}

/** A Message-ID with its angle brackets (`<id@host>`), or undefined when there is none. */
export function bracketed(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const m = /<([^<>\s]+)>/.exec(value);
  if (m !== null) return `<${m[1] as string}>`;
  const bare = value.trim();
  return /^[^\s<>]+@[^\s<>]+$/.test(bare) ? `<${bare}>` : undefined;
}

/** A date field's value (RFC 5322 date-time) as a Date, or undefined when it does not parse. */
export function dateIn(value: string | undefined): Date | undefined {
  return value === undefined ? undefined : validDate(new Date(value));
}

function validDate(d: Date | undefined): Date | undefined {
  return d !== undefined && Number.isFinite(d.getTime()) ? d : undefined;
}
