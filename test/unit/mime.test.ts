/**
 * MimeBuilder: the raw messages it writes are parsed back with `mailparser` (an independent MIME
 * parser) and compared with what `renderDelivery` renders and with what nodemailer's own
 * MailComposer builds from the same content. Plus the structural rules a receiving MTA relies
 * on: 7-bit, CRLF only, short lines, one boundary that no body line can imitate, and no way for
 * a value to start a header line.
 */
import { simpleParser, type AddressObject, type ParsedMail } from 'mailparser';
import MailComposer from 'nodemailer/lib/mail-composer';
import { describe, expect, it } from 'vitest';
import { MimeBuilder, rfc5322Date } from '../../src/adapters/smtp/mime.js';
import { broadcastKey, scheduledKey } from '../../src/core/delivery-key.js';
import { messageIdFor, renderDelivery } from '../../src/core/message.js';
import { unsubscribeHeaders, verifyToken } from '../../src/core/unsubscribe-token.js';
import { encodeUserId } from '../../src/core/user-id.js';
import { compileTemplates, type TemplateSet } from '../../src/core/templates.js';
import { ErrorCodes } from '../../src/errors.js';
import { mwError } from '../helpers/errors.js';
import { sampleDelivery } from '../helpers/fakes.js';

const FROM = 'Mailwheel Notes <noreply@example.com>';
const NOW = Date.parse('2026-01-05T09:00:07Z');

const TPL = compileTemplates({
  subject: 'Your {{time}} note, {{name}}',
  text: 'Hello {{name}},\n\nThis is your {{time}} note for {{date}} ({{email}}).\nA line that is long enough to need a soft line break in quoted-printable, surely, yes.\n\n-- mailwheel\n',
  html: '<!doctype html>\n<p title="{{name}}">Hello {{name}},</p>\n<p>This is your {{time}} note for {{date}}. Ünïcödé in the template too: 日本語.</p>\n',
});

const delivery = sampleDelivery;

function builder(tpl: TemplateSet = TPL): MimeBuilder {
  return new MimeBuilder(tpl, { from: FROM, now: () => NOW });
}

function firstAddress(a: AddressObject | AddressObject[] | undefined): { name: string; address: string | undefined } {
  const obj = Array.isArray(a) ? a[0] : a;
  const v = obj?.value[0];
  return { name: v?.name ?? '', address: v?.address };
}

/** Line ends as mailparser hands them back differ by part; compare content, not line-end style. */
function lf(s: string | false | undefined): string {
  return typeof s === 'string' ? s.replace(/\r\n/g, '\n') : '';
}

/** The rules every message must follow, whatever the values. */
function expectWellFormed(raw: string, boundary: string): void {
  // 7-bit: everything non-ASCII was encoded.
  expect(raw).not.toMatch(/[^\t\r\n\x20-\x7e]/);
  // CRLF only: no bare CR or LF.
  expect(raw.replace(/\r\n/g, '')).not.toMatch(/[\r\n]/);
  expect(raw.endsWith('\r\n')).toBe(true);
  const lines = raw.split('\r\n');
  const headerEnd = lines.indexOf('');
  expect(headerEnd).toBeGreaterThan(0);
  for (const [i, line] of lines.entries()) {
    // Headers are folded to 76 where they have whitespace; bodies are QP, 76 at most (RFC 2045).
    expect(line.length, `line ${i}: ${line}`).toBeLessThanOrEqual(i < headerEnd ? 998 : 76);
    if (i > headerEnd) expect(line, `body line ${i} ends in whitespace`).not.toMatch(/[ \t]$/);
  }
  // Header lines: a field or a continuation, nothing else.
  // (A long value may be folded right after the colon: RFC 5322 unstructured starts with FWS.)
  for (const line of lines.slice(0, headerEnd)) expect(line).toMatch(/^([\x21-\x39\x3b-\x7e]+:( |$)|[ \t])/);
  // In the body, the boundary appears only as its own delimiter lines (multipart messages).
  const delimiters = lines.slice(headerEnd).filter((l) => l.includes(boundary));
  if (raw.includes('multipart/alternative')) {
    expect(delimiters).toEqual([`--${boundary}`, `--${boundary}`, `--${boundary}--`]);
  }
}

async function parse(raw: string): Promise<ParsedMail> {
  return simpleParser(raw, { skipTextToHtml: true, skipImageLinks: true });
}

const NAMES: Array<[string, string | undefined]> = [
  ['ASCII', 'Ada'],
  ['Latin accents', 'Zoë Ångström'],
  ['CJK', '李雷'],
  ['emoji', 'Sunny 🌅 Day'],
  ['markup', '<script>alert("x")</script> & \'co\''],
  ['specials for a quoted-string', 'O\'Brien, "Bob" <b@x> \\ (c)'],
  ['a fake encoded-word', '=?utf-8?Q?Bcc=3A_victim=40example.test?='],
  ['a long name', 'Maximiliana Theodora Konstantinopoulou-Vanderbilt y Ortega de la Fuente Ñúñez'],
  ['a dot at a line start', '.\n.'],
  ['no name', undefined],
];

describe('MimeBuilder: parsed back, the message says what renderDelivery says', () => {
  it.each(NAMES)('%s', async (_label, name) => {
    const b = builder();
    const d = delivery({ name });
    const msg = b.build(d, { 'List-Unsubscribe': '<mailto:unsubscribe@example.com?subject=u1>, <https://example.com/u?t=abc>' });
    expectWellFormed(msg.raw, b.boundary);
    const expected = renderDelivery(d, TPL, 'example.com');
    const parsed = await parse(msg.raw);

    expect(parsed.subject).toBe(expected.subject);
    expect(lf(parsed.text)).toBe(expected.text);
    expect(lf(parsed.html)).toBe(expected.html);
    expect(parsed.messageId).toBe(expected.messageId);
    expect(parsed.date?.getTime()).toBe(Math.floor(NOW / 1000) * 1000);
    expect(firstAddress(parsed.from)).toEqual({ name: 'Mailwheel Notes', address: 'noreply@example.com' });
    expect(firstAddress(parsed.to)).toEqual({ name: expected.to.name.replace(/\n/g, ' '), address: 'ada@example.test' });
    expect(parsed.headers.get('x-mailwheel-key')).toBe(d.key);
    expect(parsed.headers.get('mime-version')).toBe('1.0');
    expect(parsed.headerLines.find((h) => h.key === 'list-unsubscribe')?.line.replace(/\r\n /g, ' ')).toBe(
      'List-Unsubscribe: <mailto:unsubscribe@example.com?subject=u1>, <https://example.com/u?t=abc>',
    );
    expect(msg.messageId).toBe(messageIdFor(d.key, 'example.com'));
    expect(msg.envelope).toEqual({ from: 'noreply@example.com', to: ['ada@example.test'] });
  });

  it('escapes markup from a name in the html part and keeps it verbatim in the text part', async () => {
    const name = '<script>alert("x")</script>';
    const parsed = await parse(builder().build(delivery({ name })).raw);
    expect(lf(parsed.html)).not.toContain('<script');
    expect(lf(parsed.html)).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;&#x2F;script&gt;');
    expect(lf(parsed.text)).toContain(`Hello ${name},`);
  });

  it('a text-only template gives one text/plain part', async () => {
    const tpl = compileTemplates({ subject: 'Hi {{name}}', text: 'Just text for {{name}}.' });
    const b = builder(tpl);
    const msg = b.build(delivery({ name: 'Zoë' }));
    expect(msg.raw).not.toContain('multipart');
    expect(msg.raw).toMatch(/\r\nContent-Type: text\/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n/);
    expectWellFormed(msg.raw, b.boundary);
    const parsed = await parse(msg.raw);
    expect(lf(parsed.text).trimEnd()).toBe('Just text for Zoë.');
    // A body that ends with a line break gets no second one.
    const withBreak = new MimeBuilder(compileTemplates({ subject: 's', text: 'Line\n' }), { from: FROM }).build(delivery()).raw;
    expect(withBreak.endsWith('\r\n\r\nLine\r\n')).toBe(true);
    expect(parsed.html).toBe(false);
  });
});

describe('MimeBuilder: values cannot shape headers or parts', () => {
  it.each([
    'Eve\r\nBcc: victim@example.test',
    'Eve\nBcc: victim@example.test',
    'Eve\rBcc: victim@example.test',
    'Eve\r\n\r\nInjected body',
    'Eve\r\n Folded: continuation',
  ])('CR/LF in the name %j never starts a header line', async (name) => {
    const b = builder();
    const msg = b.build(delivery({ name }));
    expectWellFormed(msg.raw, b.boundary);
    const head = msg.raw.slice(0, msg.raw.indexOf('\r\n\r\n'));
    expect(head).not.toMatch(/^(Bcc|Folded):/im);
    const parsed = await parse(msg.raw);
    expect(parsed.headers.has('bcc')).toBe(false);
    expect(parsed.bcc).toBeUndefined();
    expect(parsed.subject).not.toMatch(/[\r\n]/);
    expect(firstAddress(parsed.to).address).toBe('ada@example.test');
  });

  it('CR/LF in an extra header value is flattened; a bad header name is refused', async () => {
    const b = builder();
    const msg = b.build(delivery(), { 'X-Note': 'a\r\nBcc: victim@example.test' });
    expect((await parse(msg.raw)).headers.has('bcc')).toBe(false);
    expect(() => b.build(delivery(), { 'Bad Name': 'x' })).toThrow(mwError(ErrorCodes.BAD_ARGUMENT, /not a header name/));
    expect(() => b.build(delivery(), { 'X-A:b': 'x' })).toThrow(mwError(ErrorCodes.BAD_ARGUMENT, /not a header name/));
    expect(() => b.build(delivery(), { subject: 'x' })).toThrow(mwError(ErrorCodes.BAD_ARGUMENT, /written by the builder/));
  });

  it('an address that could shape a header is refused', () => {
    for (const email of ['a@example.test\r\nBcc: v@example.test', 'a b@example.test', '<a@example.test>', '']) {
      expect(() => builder().build(delivery({ email })), JSON.stringify(email)).toThrow(mwError(ErrorCodes.BAD_ARGUMENT, /not a usable address/));
    }
  });

  it('no body line can be a boundary line: the boundary has "=_", which quoted-printable never writes', async () => {
    const b = builder();
    expect(b.boundary).toMatch(/=_/);
    // A template and a value that carry the boundary (and a terminating delimiter) verbatim.
    const evil = `--${b.boundary}--`;
    const tpl = compileTemplates({ subject: 's', text: `before\n${evil}\n{{name}}\nafter`, html: `<p>${evil}</p>\n{{name}}` });
    const b2 = new MimeBuilder(tpl, { from: FROM, now: () => NOW });
    const sneaky = `--${b2.boundary}\r\nContent-Type: text/html\r\n\r\n<script>x</script>`;
    const msg = b2.build(delivery({ name: sneaky }));
    expectWellFormed(msg.raw, b2.boundary);
    const parsed = await parse(msg.raw);
    expect(lf(parsed.text)).toContain(evil);
    expect(lf(parsed.text)).toContain(`--${b2.boundary} Content-Type: text/html <script>x</script>`);
    expect(lf(parsed.html)).not.toContain('<script>');
    expect(parsed.attachments).toHaveLength(0);
  });

  it('random values (unicode, whitespace, dots, "=") always decode exactly and keep lines within 76', async () => {
    const alphabet = ['a', 'Z', ' ', '\t', '\n', '.', '=', '-', 'é', 'ß', '中', '🌅', '&', '<', '"', '_', '?', '\u00a0', '0'];
    let seed = 42;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const b = builder();
    for (let i = 0; i < 150; i++) {
      let name = '';
      for (let len = rnd(120); len > 0; len--) name += alphabet[rnd(alphabet.length)];
      const d = delivery({ name, email: `u${i}@example.test` });
      const msg = b.build(d);
      expectWellFormed(msg.raw, b.boundary);
      const parsed = await parse(msg.raw);
      const expected = renderDelivery(d, TPL, 'example.com');
      expect(lf(parsed.text), JSON.stringify(name)).toBe(expected.text);
      expect(lf(parsed.html), JSON.stringify(name)).toBe(expected.html);
      expect(parsed.subject, JSON.stringify(name)).toBe(expected.subject);
    }
  });
});

describe('MimeBuilder and nodemailer MailComposer decode to the same message', () => {
  it.each(NAMES)('%s', async (_label, name) => {
    const d = delivery({ name });
    const ours = builder().build(d).raw;
    const r = renderDelivery(d, TPL, 'example.com');
    const theirs = await new MailComposer({
      from: FROM,
      to: r.to.name ? { name: r.to.name, address: r.to.address } : r.to.address,
      subject: r.subject,
      text: r.text,
      ...(r.html === undefined ? {} : { html: r.html }),
      messageId: r.messageId,
      date: new Date(NOW),
      headers: r.headers,
    })
      .compile()
      .build();
    const [a, b] = await Promise.all([parse(ours), parse(theirs.toString('utf8'))]);
    if (name?.startsWith('=?') === true) {
      // The one intended difference: nodemailer passes a value that is already a valid
      // encoded-word through, so readers see whatever it encodes. mailwheel encodes it, so
      // they see the user's literal name.
      expect(a.subject).toBe(r.subject);
      expect(b.subject).not.toBe(r.subject);
      expect(firstAddress(a.to).name).toBe(name);
      return;
    }
    expect(a.subject).toBe(b.subject);
    expect(lf(a.text)).toBe(lf(b.text));
    expect(lf(a.html)).toBe(lf(b.html));
    expect(a.messageId).toBe(b.messageId);
    expect(a.date?.getTime()).toBe(b.date?.getTime());
    expect(firstAddress(a.from)).toEqual(firstAddress(b.from));
    expect(firstAddress(a.to)).toEqual(firstAddress(b.to));
    expect(a.headers.get('x-mailwheel-key')).toBe(b.headers.get('x-mailwheel-key'));
  });
});

describe('MimeBuilder: headers', () => {
  it('Date is RFC 5322 in UTC', () => {
    expect(rfc5322Date(Date.parse('2026-01-05T09:00:07Z'))).toBe('Mon, 05 Jan 2026 09:00:07 +0000');
    expect(rfc5322Date(Date.parse('2024-02-29T23:59:59.999Z'))).toBe('Thu, 29 Feb 2024 23:59:59 +0000');
    expect(builder().build(delivery()).raw.startsWith('Date: Mon, 05 Jan 2026 09:00:07 +0000\r\n')).toBe(true);
  });

  it('the Message-ID depends on the delivery key only', () => {
    const b = builder();
    expect(b.build(delivery()).messageId).toBe(b.build(delivery({ name: 'Other', email: 'o@example.test' })).messageId);
    expect(b.build(delivery({ key: 's:u2:09:00:2026-01-05' })).messageId).not.toBe(b.build(delivery()).messageId);
    expect(new MimeBuilder(TPL, { from: FROM, messageIdDomain: 'mail.example.org' }).build(delivery()).messageId).toMatch(/@mail\.example\.org>$/);
  });

  it('a From without an address is refused at construction', () => {
    expect(() => new MimeBuilder(TPL, { from: 'just a name' })).toThrow(mwError(ErrorCodes.BAD_ARGUMENT, /smtp\.from/));
  });

  it('a non-ASCII From name is encoded once, at construction', async () => {
    const b = new MimeBuilder(TPL, { from: 'Équipe Mailwheel <noreply@example.com>', now: () => NOW });
    const raw = b.build(delivery()).raw;
    expect(raw).toMatch(/^From: =\?UTF-8\?Q\?=C3=89quipe_Mailwheel\?= <noreply@example\.com>\r$/m);
    expect(firstAddress((await parse(raw)).from)).toEqual({ name: 'Équipe Mailwheel', address: 'noreply@example.com' });
  });
});

describe('MimeBuilder: long user ids', () => {
  // The longest values each part can take: a 254-character address, long config URLs, and ids
  // from short to far beyond the validation cap, including ones JSON or Q-encoding doubles.
  const email = `${'l'.repeat(64)}@${'d'.repeat(60)}.${'e'.repeat(60)}.${'f'.repeat(62)}.test`;
  const unsub = {
    secret: 'test-secret-0123456789abcdef',
    baseUrl: `https://${'u'.repeat(90)}.example.test/${'p'.repeat(100)}`,
    allowInsecureBaseUrl: false,
    mailto: `${'m'.repeat(64)}@${'n'.repeat(90)}.example.test`,
    tokenTtlDays: 30,
  };
  const ids = ['x'.repeat(2000), 'x'.repeat(1600), 'x'.repeat(128), 'x'.repeat(129), '"'.repeat(128), '\\'.repeat(128), '日'.repeat(42), '日'.repeat(2000), 'y'.repeat(100_000), 7, 'plain'];

  it.each(ids.map((id) => [typeof id === 'string' ? `${id.slice(0, 6)}... (${id.length})` : String(id), id]))(
    'id %s: every header line is at most 998 characters, the key header round-trips, the token verifies',
    async (_label, raw) => {
      const userId = encodeUserId(raw) ?? '';
      expect(email.length).toBe(254);
      for (const key of [scheduledKey(userId, '09:00', '2026-01-05'), broadcastKey('bc_0123456789abcdef', userId)]) {
        const d = delivery({ key, userId, email });
        const headers = unsubscribeHeaders({ userId, email }, unsub, NOW);
        const b = builder();
        const built = b.build(d, headers);
        expectWellFormed(built.raw, b.boundary);
        const head = built.raw.slice(0, built.raw.indexOf('\r\n\r\n')).split('\r\n');
        for (const line of head) expect(line.length, line.slice(0, 60)).toBeLessThanOrEqual(998);
        // With an ObjectId-sized id the whole key header is one line of at most 78.
        if (userId.length <= 24) expect(head.find((l) => l.startsWith('X-Mailwheel-Key:'))?.length).toBeLessThanOrEqual(78);
        // (A non-ASCII key travels as encoded-words, which mailparser leaves as they are in X- fields.)
        if (/^[\x20-\x7e]+$/.test(key)) expect((await parse(built.raw)).headers.get('x-mailwheel-key')).toBe(key);
        const token = /[?&]t=([^>]+)>/.exec(headers['List-Unsubscribe'] ?? '')?.[1] ?? '';
        expect(token.length).toBeLessThanOrEqual(1024);
        const check = verifyToken(token, unsub.secret, NOW);
        expect(check.ok && check.email).toBe(email);
        // Short ids travel whole (the handler records the typed id); long ones as their digest.
        expect(check.ok && check.userId).toBe(Buffer.byteLength(userId) <= 128 ? userId : key.match(/h:[\w-]{43}/)?.[0]);
      }
    },
  );
});
