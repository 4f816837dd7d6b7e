/**
 * Renders a delivery into the parts of an email, as strings (for `preview` and tests; the SMTP
 * adapter builds the same content straight into MIME, see `adapters/smtp/mime.ts`). Values are
 * substituted into the compiled template (`templates.ts`): HTML-escaped in the html part, as they
 * are in the text and subject. The subject is one header line whatever the template or the
 * values contain.
 */
import { createHash } from 'node:crypto';
import { escapeHtml, oneLine, renderPart, templateVars, type TemplateSet } from './templates.js';
import type { Delivery } from './types.js';

export interface RenderedMessage {
  to: { name: string; address: string };
  subject: string;
  text: string;
  html?: string | undefined;
  /** Derived from the delivery key: stable across retries so receivers can deduplicate. */
  messageId: string;
  headers: Record<string, string>;
}

const asIs = (s: string): string => s;

export function messageIdFor(key: string, domain: string): string {
  return `<${createHash('sha256').update(key).digest('hex').slice(0, 32)}@${domain}>`;
}

export function renderDelivery(d: Delivery, tpl: TemplateSet, idDomain: string): RenderedMessage {
  const vars = templateVars(d);
  return {
    to: { name: d.name === undefined ? '' : oneLine(d.name), address: d.email },
    subject: oneLine(renderPart(tpl.subject, vars, asIs)),
    text: renderPart(tpl.text, vars, asIs),
    html: tpl.html === undefined ? undefined : renderPart(tpl.html, vars, escapeHtml),
    messageId: messageIdFor(d.key, idDomain),
    headers: { 'X-Mailwheel-Key': d.key },
  };
}
