/**
 * Renders a delivery into the parts of an email. Values are substituted into the template; the
 * header values that come from user data were already checked for CR/LF by `validate-user`, and
 * are checked again here because a template could place them in the subject.
 */
import { createHash } from 'node:crypto';
import type { Delivery } from './types.js';

export interface Template {
  subject: string;
  text: string;
  html?: string | undefined;
}

export interface RenderedMessage {
  to: { name: string; address: string };
  subject: string;
  text: string;
  html?: string | undefined;
  /** Derived from the delivery key: stable across retries so receivers can deduplicate. */
  messageId: string;
  headers: Record<string, string>;
}

const PLACEHOLDER = /\{\{\s*(\w+)\s*\}\}/g;

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function substitute(tpl: string, vars: Record<string, string>, escape: (s: string) => string): string {
  return tpl.replace(PLACEHOLDER, (m, name: string) => (Object.hasOwn(vars, name) ? escape(vars[name] ?? '') : m));
}

export function messageIdFor(key: string, domain: string): string {
  return `<${createHash('sha256').update(key).digest('hex').slice(0, 32)}@${domain}>`;
}

export function renderDelivery(d: Delivery, tpl: Template, idDomain: string): RenderedMessage {
  const vars: Record<string, string> = {
    name: d.name ?? 'there',
    email: d.email,
    time: d.slot ?? '',
    date: d.localDate ?? '',
  };
  const subject = substitute(tpl.subject, vars, (s) => s).replace(/[\r\n]+/g, ' ');
  return {
    to: { name: d.name ?? '', address: d.email },
    subject,
    text: substitute(tpl.text, vars, (s) => s),
    html: tpl.html === undefined ? undefined : substitute(tpl.html, vars, escapeHtml),
    messageId: messageIdFor(d.key, idDomain),
    headers: { 'X-Mailwheel-Key': d.key },
  };
}
