/**
 * Messages for the mime and smtp suites: a scheduled-mail template with a text and an html part,
 * padded to a target size, and deliveries for a population of users whose names are mostly
 * ASCII, some accented, some CJK (so the encoders' non-ASCII paths are part of the cost).
 */
import type { MailComposerOptions } from 'nodemailer/lib/mail-composer';
import { MimeBuilder } from '../../src/adapters/smtp/mime.js';
import { scheduledKey } from '../../src/core/delivery-key.js';
import { renderDelivery } from '../../src/core/message.js';
import { compileTemplates, type TemplateSet } from '../../src/core/templates.js';
import type { Delivery } from '../../src/core/types.js';

export const FROM = 'mailwheel <noreply@example.com>';
export const ID_DOMAIN = 'example.com';

const PARAGRAPH =
  'Small steps, taken every day, add up to more than you expect. Today, {{name}}, pick one thing that ' +
  'matters and give it twenty quiet minutes before anything else asks for your attention.';

/** Template whose messages (as MimeBuilder writes them) are about `bytes` long. */
export function templateOfSize(bytes: number): TemplateSet {
  const make = (paragraphs: number) => {
    const paras = Array.from({ length: paragraphs }, () => PARAGRAPH);
    return compileTemplates({
      subject: 'Your {{time}} note, {{name}}',
      text: `Hello {{name}},\n\n${paras.join('\n\n')}\n\nThis is your {{time}} note for {{date}}.\n-- mailwheel\n`,
      html: `<!doctype html>\n<html><body>\n<p>Hello {{name}},</p>\n${paras.map((p) => `<p>${p}</p>`).join('\n')}\n<p>This is your {{time}} note for {{date}}.</p>\n</body></html>\n`,
    });
  };
  // Grow the paragraph count until the typical message reaches the target size.
  let n = 0;
  for (;;) {
    const tpl = make(n);
    if (sizeOf(tpl) >= bytes || n > 1000) return tpl;
    n++;
  }
}

function sizeOf(tpl: TemplateSet): number {
  return new MimeBuilder(tpl, { from: FROM }).build(deliveryFor(0)).raw.length;
}

const NAMES = ['Ada Lovelace', 'Grace Hopper', 'Alan Turing', 'Zoë Ångström', 'Edsger Dijkstra', 'Barbara Liskov', '李雷', 'Ken Thompson', 'Radia Perlman', 'José Núñez'];

export function deliveryFor(i: number): Delivery {
  return {
    key: scheduledKey(`user${i}`, '09:00', '2026-01-05'),
    kind: 'scheduled',
    userId: `user${i}`,
    email: `user${i}@example.test`,
    name: NAMES[i % NAMES.length],
    slot: '09:00',
    localDate: '2026-01-05',
    timezone: 'UTC',
    dueAt: 0,
  };
}

/** `n` distinct deliveries (distinct keys, addresses, Message-IDs). */
export function deliveries(n: number): Delivery[] {
  return Array.from({ length: n }, (_, i) => deliveryFor(i));
}

/** The old path's input: the message rendered as strings, for nodemailer to build the MIME. */
export function mailOptions(d: Delivery, tpl: TemplateSet): MailComposerOptions {
  const r = renderDelivery(d, tpl, ID_DOMAIN);
  return {
    from: FROM,
    to: r.to.name ? { name: r.to.name, address: r.to.address } : r.to.address,
    subject: r.subject,
    text: r.text,
    ...(r.html === undefined ? {} : { html: r.html }),
    messageId: r.messageId,
    headers: r.headers,
  };
}
