/**
 * The MIME message of one delivery, built exactly as the daemon sends it, for the CLI views that
 * show it (`preview`, `broadcast send --dry-run`) without importing the SMTP adapter.
 */
import { MimeBuilder, type BuiltMessage } from '../adapters/smtp/mime.js';
import type { TemplateSet } from '../core/templates.js';
import type { Delivery } from '../ports/index.js';

export type { BuiltMessage };

export function buildMessage(templates: TemplateSet, opts: { from: string; now?: () => number }, d: Delivery, extraHeaders?: Readonly<Record<string, string>>): BuiltMessage {
  return new MimeBuilder(templates, opts).build(d, extraHeaders);
}
