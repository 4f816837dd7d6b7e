/**
 * Template compilation: the segments the MIME builder substitutes into must render exactly what
 * Mustache itself renders (html escaped, text and subject as they are), and anything beyond
 * plain variables is refused with the part and tag named. File loading is tested through
 * loadConfig in config.test.ts.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Mustache from 'mustache';
import { afterAll, describe, expect, it } from 'vitest';
import { compileTemplates, escapeHtml, loadTemplates, renderPart, templateVars, type TemplateVars } from '../../src/core/templates.js';
import { ConfigError, ErrorCodes, MailwheelError } from '../../src/errors.js';
import { mwError } from '../helpers/errors.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const VARS: TemplateVars = { name: '<b>Zoë</b> & "co" / `x` = \'y\'', email: 'zoe@example.test', time: '09:00', date: '2026-01-05' };

const SOURCES = [
  'Hello {{name}}, your {{ time }} note for {{date}} ({{email}}).',
  'no variables at all',
  '{{name}}{{name}}{{name}}',
  // Standalone comment and delimiter tags take their whole line with them, as in Mustache.
  'line 1\n  {{! a comment on its own line }}\nline 2 {{name}}\n',
  '{{=<% %>=}}\nHi <% name %>, {{name}} stays literal\n<%={{ }}=%>{{time}}',
  'indented\n    {{name}}\n\ttabbed {{date}}\n\n\nblank lines kept\n',
  'unicode: 日本語 {{name}} 🌅',
];

describe('compiled templates render exactly as Mustache renders them', () => {
  it.each(SOURCES)('%j', (source) => {
    const set = compileTemplates({ subject: 's', text: source, html: source });
    const view = { ...VARS };
    expect(renderPart(set.text, VARS, (s) => s)).toBe(Mustache.render(source, view, {}, { escape: (s: string) => s }));
    expect(renderPart(set.html ?? set.text, VARS, escapeHtml)).toBe(Mustache.render(source, view));
  });

  it('normalises CRLF and CR line ends in a template to LF', () => {
    const set = compileTemplates({ subject: 's', text: 'a\r\nb\rc\n{{name}}' });
    expect(renderPart(set.text, VARS, (s) => s)).toBe(`a\nb\nc\n${VARS.name}`);
  });

  it('drops the whitespace around a subject (a file ends with a newline)', () => {
    expect(compileTemplates({ subject: '  Hi {{name}}\n', text: 't' }).subject.source).toBe('Hi {{name}}');
  });

  it('triple mustache is allowed where nothing is escaped anyway (subject, text)', () => {
    const set = compileTemplates({ subject: 'Hi {{{name}}}', text: 'Hi {{& name}}' });
    expect(renderPart(set.subject, VARS, (s) => s)).toBe(`Hi ${VARS.name}`);
    expect(renderPart(set.text, VARS, (s) => s)).toBe(`Hi ${VARS.name}`);
  });
});

describe('compileTemplates refuses what substitution cannot do safely', () => {
  it.each<[string, { subject: string; text: string; html?: string }, RegExp]>([
    ['unescaped html', { subject: 's', text: 't', html: '{{{name}}}' }, /^template html: \{\{&name\}\} at offset 0: unescaped output/],
    ['a section', { subject: 's', text: '{{#name}}x{{/name}}' }, /^template text: .*sections and partials/],
    ['an inverted section', { subject: 's', text: '{{^name}}x{{/name}}' }, /sections and partials/],
    ['a partial', { subject: 's', text: '{{>footer}}' }, /sections and partials/],
    ['a dotted name', { subject: 's', text: '{{name.length}}' }, /unknown variable "name\.length"/],
    ['a prototype member', { subject: '{{__proto__}}', text: 't' }, /^template subject: .*unknown variable/],
    ['an unclosed section', { subject: 's', text: '{{#name}}' }, /Unclosed section/],
    ['an empty subject', { subject: ' \n', text: 't' }, /^template subject: empty subject/],
  ])('%s', (_label, src, why) => {
    try {
      compileTemplates(src);
      expect.unreachable('must throw');
    } catch (err) {
      expect(err).toBeInstanceOf(MailwheelError);
      expect((err as MailwheelError).code).toBe(ErrorCodes.BAD_ARGUMENT);
      expect((err as Error).message).toMatch(why);
    }
  });
});

describe('placeholders per kind', () => {
  it.each([
    ['subject', 'time', { subject: 'Your {{time}} update', text: 't' }],
    ['text', 'date', { subject: 's', text: 'Sent on {{date}}' }],
    ['html', 'time', { subject: 's', text: 't', html: '<p>{{ time }}</p>' }],
  ])('a broadcast %s using {{%s}} (a scheduled slot only) is refused naming it', (part, name, src) => {
    expect(() => compileTemplates(src, 'broadcast')).toThrow(mwError(ErrorCodes.BAD_ARGUMENT, new RegExp(`^template ${part}: .*variable "${name}" is not available in a broadcast \\(it has: name, email\\)`)));
    // The same template is fine for scheduled mail, which has a slot.
    expect(() => compileTemplates(src, 'scheduled')).not.toThrow();
  });

  it('a broadcast may use name and email', () => {
    expect(compileTemplates({ subject: 'Hi {{name}}', text: '{{email}}', html: '<b>{{name}}</b>' }, 'broadcast').subject.segments).toEqual([{ text: 'Hi ' }, { var: 'name' }]);
  });
});

describe('templateVars', () => {
  it('greets a user without a name generically and leaves slot fields empty for broadcasts', () => {
    expect(templateVars({ key: 'b:1:u', kind: 'broadcast', userId: 'u', email: 'u@example.test', name: undefined, broadcastId: '1', dueAt: 0 })).toEqual({
      name: 'there',
      email: 'u@example.test',
      time: '',
      date: '',
    });
  });

  it('makes every value one line', () => {
    const v = templateVars({ key: 'k', kind: 'scheduled', userId: 'u', email: 'u@example.test', name: 'Eve\r\n\r\nBcc: x', slot: '09:00', localDate: '2026-01-05', dueAt: 0 });
    expect(v.name).toBe('Eve Bcc: x');
  });
});

describe('loadTemplates', () => {
  it('reads subject, text and the optional html once; a missing subject names its file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mailwheel-tpl-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'digest.txt'), 'Hello {{name}}');
    expect(() => loadTemplates(dir, 'digest')).toThrow(ConfigError);
    expect(() => loadTemplates(dir, 'digest')).toThrow(mwError(ErrorCodes.CONFIG_INVALID, join(dir, 'digest.subject')));
    writeFileSync(join(dir, 'digest.subject'), 'Digest for {{name}}\n');
    const set = loadTemplates(dir, 'digest');
    expect(set.subject.source).toBe('Digest for {{name}}');
    expect(set.html).toBeUndefined();
  });
});
