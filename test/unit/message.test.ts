/**
 * Rendering (Message-ID, header safety, HTML escaping, placeholders) and delivery keys
 * (built by delivery-key.ts, parsed back by the claim store). Templates are Mustache, compiled
 * by `core/templates.ts`; what a template may contain is tested in templates.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { describeKey } from '../../src/adapters/mongo/claim-store.js';
import { broadcastKey, scheduledKey } from '../../src/core/delivery-key.js';
import { messageIdFor, renderDelivery } from '../../src/core/message.js';
import { compileTemplates, type TemplateSource } from '../../src/core/templates.js';
import { ErrorCodes } from '../../src/errors.js';
import { mwError } from '../helpers/errors.js';
import { sampleDelivery } from '../helpers/fakes.js';

const DOMAIN = 'example.com';

const delivery = sampleDelivery;

const TPL = compileTemplates({
  subject: 'Your {{time}} note, {{name}}',
  text: 'Hello {{name}}, this is your {{time}} note for {{date}} ({{email}}).',
  html: '<p title="{{name}}">Hello {{name}}</p>',
});

const tpl = (src: TemplateSource) => compileTemplates(src);

/** Decodes the HTML character references an escaper may produce (numeric and the usual named ones). */
function decodeHtml(s: string): string {
  const named: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
  return s.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (m, ref: string) => {
    if (ref.startsWith('#x') || ref.startsWith('#X')) return String.fromCodePoint(parseInt(ref.slice(2), 16));
    if (ref.startsWith('#')) return String.fromCodePoint(Number(ref.slice(1)));
    return named[ref.toLowerCase()] ?? m;
  });
}

describe('Message-ID', () => {
  it('is the same for the same key (retries and reruns) and different for different keys', () => {
    const k1 = scheduledKey('u1', '09:00', '2026-01-05');
    const k2 = scheduledKey('u1', '09:00', '2026-01-06');
    const k3 = broadcastKey('65f0a1b2c3d4e5f6a7b8c9d0', 'u1');
    expect(messageIdFor(k1, DOMAIN)).toBe(messageIdFor(k1, DOMAIN));
    const ids = new Set([k1, k2, k3].map((k) => messageIdFor(k, DOMAIN)));
    expect(ids.size).toBe(3);
  });

  it('does not depend on anything but the key (name or address changes between attempts)', () => {
    const a = renderDelivery(delivery(), TPL, DOMAIN);
    const b = renderDelivery(delivery({ name: 'Ada L.', email: 'ada2@example.test' }), TPL, DOMAIN);
    expect(a.messageId).toBe(b.messageId);
    expect(renderDelivery(delivery({ key: scheduledKey('u2', '09:00', '2026-01-05') }), TPL, DOMAIN).messageId).not.toBe(a.messageId);
  });

  it('is a well-formed msg-id in the given domain, without the key in clear', () => {
    const key = scheduledKey('user with spaces <x>', '09:00', '2026-01-05');
    const id = messageIdFor(key, DOMAIN);
    expect(id).toMatch(/^<[^<>@\s]+@example\.com>$/);
    expect(id).not.toContain('user with spaces');
  });
});

describe('renderDelivery', () => {
  it('substitutes the known placeholders in subject, text and html', () => {
    const m = renderDelivery(delivery(), TPL, DOMAIN);
    expect(m.subject).toBe('Your 09:00 note, Ada');
    expect(m.text).toBe('Hello Ada, this is your 09:00 note for 2026-01-05 (ada@example.test).');
    expect(m.html).toBe('<p title="Ada">Hello Ada</p>');
    expect(m.to).toEqual({ name: 'Ada', address: 'ada@example.test' });
    expect(m.headers['X-Mailwheel-Key']).toBe('s:u1:09:00:2026-01-05');
  });

  it('accepts spaces inside the braces', () => {
    expect(renderDelivery(delivery(), tpl({ subject: 'Hi {{ name }}!', text: '{{  time  }}' }), DOMAIN)).toMatchObject({ subject: 'Hi Ada!', text: '09:00' });
  });

  it('greets a user without a name generically and leaves the display name empty', () => {
    const m = renderDelivery(delivery({ name: undefined }), TPL, DOMAIN);
    expect(m.text.startsWith('Hello there,')).toBe(true);
    expect(m.to).toEqual({ name: '', address: 'ada@example.test' });
  });

  it('has no html part when the template has none', () => {
    expect(renderDelivery(delivery(), tpl({ subject: 's', text: 't' }), DOMAIN).html).toBeUndefined();
  });

  it('never puts CR or LF in the subject, even when a value carries them', () => {
    for (const name of ['Eve\r\nBcc: victim@example.test', 'Eve\nBcc: victim@example.test', 'Eve\rX', 'a\r\n\r\nbody']) {
      const m = renderDelivery(delivery({ name }), TPL, DOMAIN);
      expect(m.subject).not.toMatch(/[\r\n]/);
      expect(m.subject.startsWith('Your 09:00 note, ')).toBe(true);
    }
    const tplWithBreak = tpl({ subject: 'Line one\r\nBcc: x@example.test {{name}}', text: 't' });
    expect(renderDelivery(delivery(), tplWithBreak, DOMAIN).subject).not.toMatch(/[\r\n]/);
  });

  it('escapes markup from user data in the html part, and only there', () => {
    const name = '<script>alert("x")</script> & \'co\'';
    const m = renderDelivery(delivery({ name }), TPL, DOMAIN);
    expect(m.html).toBeDefined();
    const html = m.html ?? '';
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toContain('"x"');
    // The attribute cannot be closed early by a quote in the value.
    expect(html.match(/"/g)?.length).toBe(2);
    // Escaped, not dropped: decoding gives back the template with the value.
    expect(decodeHtml(html)).toBe(`<p title="${name}">Hello ${name}</p>`);
    // The text part is plain text: the value as it is.
    expect(m.text).toContain(name);
  });

  it('refuses unknown placeholders when the template is compiled, naming the part and the tag', () => {
    // The old inline engine left `{{unknown}}` in the mail; Mustache would render it empty.
    // Neither should reach a user: the operator hears about it at start-up instead.
    expect(() => tpl({ subject: '{{unknown}} {{name}}', text: 't' })).toThrow(mwError(ErrorCodes.BAD_ARGUMENT, /subject: \{\{unknown\}\}.*unknown variable "unknown"/));
    expect(() => tpl({ subject: 's', text: 'a {{ nope }} b {{name}}' })).toThrow(mwError(ErrorCodes.BAD_ARGUMENT, /text: .*unknown variable "nope"/));
    expect(() => tpl({ subject: 's', text: 't', html: '<i>{{missing}}</i>' })).toThrow(mwError(ErrorCodes.BAD_ARGUMENT, /html: .*unknown variable "missing"/));
  });

  it('refuses placeholders named like Object.prototype members', () => {
    // `{{constructor}}` or `{{toString}}` would make Mustache look the name up on the view's
    // prototype and print a function's result into every email.
    for (const name of ['constructor', 'toString', 'hasOwnProperty', '__proto__']) {
      expect(() => tpl({ subject: `a {{${name}}} b`, text: 't' }), name).toThrow(mwError(ErrorCodes.BAD_ARGUMENT, /unknown variable/));
    }
  });
});

describe('delivery keys round trip through describeKey', () => {
  const userIds = ['u1', '65f0a1b2c3d4e5f6a7b8c9d0', 'a:b', 'urn:app:user:42', '09:00', 'a::b', ':leading', 'trailing:', '12345'];

  it.each(userIds)('scheduled key of user %j', (userId) => {
    const key = scheduledKey(userId, '23:59', '2026-03-08');
    expect(key).toBe(`s:${userId}:23:59:2026-03-08`);
    expect(describeKey(key)).toEqual({ kind: 'scheduled', userId });
  });

  it.each(userIds)('broadcast key of user %j', (userId) => {
    const key = broadcastKey('65f0a1b2c3d4e5f6a7b8c9d0', userId);
    expect(key).toBe(`b:65f0a1b2c3d4e5f6a7b8c9d0:${userId}`);
    expect(describeKey(key)).toEqual({ kind: 'broadcast', userId });
  });

  it('different users, slots or dates give different keys', () => {
    const keys = new Set([
      scheduledKey('u1', '09:00', '2026-01-05'),
      scheduledKey('u1', '09:00', '2026-01-06'),
      scheduledKey('u1', '09:30', '2026-01-05'),
      scheduledKey('u2', '09:00', '2026-01-05'),
      broadcastKey('b1', 'u1'),
      broadcastKey('b2', 'u1'),
    ]);
    expect(keys.size).toBe(6);
  });
});
