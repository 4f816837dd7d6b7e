/**
 * Email templates: Mustache source, parsed once, turned into a list of literal segments and the
 * places where a per-user variable goes. Sending then never parses a template again: the MIME
 * builder pre-encodes the literal segments and only substitutes the variables per message.
 *
 * Escaping is the default: `{{name}}` is HTML-escaped in the html part (Mustache's own escaper),
 * and written as it is in the subject and the text part. Anything that would make the output
 * depend on more than variable substitution (sections, partials) or bypass the html escaping
 * (`{{{name}}}`, `{{& name}}`) is refused when the template is loaded, naming the file and tag,
 * so a mistake stops start-up instead of showing up in a million emails.
 *
 * The loader reads files (`loadTemplates`), everything else here is pure.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Mustache from 'mustache';
import { ConfigError, ErrorCodes, MailwheelError } from '../errors.js';
import type { Delivery } from './types.js';

/** The variables a template may use. Every one is known for every delivery. */
export const TEMPLATE_VARS = ['name', 'email', 'time', 'date'] as const;
export type TemplateVar = (typeof TEMPLATE_VARS)[number];
export type TemplateVars = Readonly<Record<TemplateVar, string>>;

/** Literal text, or the place of a variable. */
export type TemplatePart = { readonly text: string } | { readonly var: TemplateVar };

export interface CompiledPart {
  /** The Mustache source, as given (line ends normalised to LF). */
  readonly source: string;
  readonly segments: readonly TemplatePart[];
}

/** One kind's templates, compiled. `html` is absent for text-only mail. */
export interface TemplateSet {
  readonly subject: CompiledPart;
  readonly text: CompiledPart;
  readonly html: CompiledPart | undefined;
}

/** Template sources as strings (files, or a broadcast's own subject/text/html). */
export interface TemplateSource {
  subject: string;
  text: string;
  html?: string | undefined;
}

type PartName = 'subject' | 'text' | 'html';

const KNOWN = new Set<string>(TEMPLATE_VARS);

/** What a template is for: the variables differ (a broadcast has no slot, so no time or date). */
export type TemplateKind = 'scheduled' | 'broadcast';

/** The variables each kind fills in; a template may use only its kind's. */
export const KIND_VARS: Readonly<Record<TemplateKind, readonly TemplateVar[]>> = {
  scheduled: TEMPLATE_VARS,
  broadcast: ['name', 'email'],
};

/** Mustache's token tuple, as far as this module reads it: type, value, start offset. */
type Token = readonly [string, string, number, ...unknown[]];

/** Compiles one part; a problem is thrown as a plain message, placed by the caller. */
function compilePart(source: string, part: PartName, kind: TemplateKind): CompiledPart {
  const normalised = source.replace(/\r\n?/g, '\n');
  let tokens: Token[];
  try {
    tokens = Mustache.parse(normalised) as Token[];
  } catch (err) {
    throw new Error((err as Error).message);
  }
  const segments: TemplatePart[] = [];
  for (const [type, value, start] of tokens) {
    const tag = `{{${type === 'name' ? '' : type}${value}}} at offset ${start}`;
    switch (type) {
      case 'text':
        pushText(segments, value);
        break;
      case 'name':
      case '&':
        // `{{{x}}}` and `{{& x}}` turn the html escaping off, which is exactly what must not
        // happen to user data; in the subject and text there is no escaping to turn off.
        if (type === '&' && part === 'html') throw new Error(`${tag}: unescaped output is not allowed in html`);
        if (!KNOWN.has(value)) throw new Error(`${tag}: unknown variable "${value}" (known: ${KIND_VARS[kind].join(', ')})`);
        // {{time}} and {{date}} are the scheduled slot's: in a broadcast they would render empty.
        if (!KIND_VARS[kind].includes(value as TemplateVar)) throw new Error(`${tag}: variable "${value}" is not available in a ${kind} (it has: ${KIND_VARS[kind].join(', ')})`);
        segments.push({ var: value as TemplateVar });
        break;
      case '!':
      case '=':
        // Comments and delimiter changes produce no output.
        break;
      default:
        throw new Error(`${tag}: sections and partials are not supported, only variables`);
    }
  }
  return { source: normalised, segments };
}

function pushText(segments: TemplatePart[], text: string): void {
  const last = segments[segments.length - 1];
  if (last !== undefined && 'text' in last) segments[segments.length - 1] = { text: last.text + text };
  else if (text !== '') segments.push({ text });
}

/** Compiles every part; `fail` turns a problem into the error thrown, naming the part. */
function compileAll(src: TemplateSource, kind: TemplateKind, fail: (part: PartName, message: string) => Error): TemplateSet {
  const one = (part: PartName, source: string): CompiledPart => {
    try {
      return compilePart(source, part, kind);
    } catch (err) {
      throw fail(part, (err as Error).message);
    }
  };
  const subject = src.subject.trim();
  if (subject === '') throw fail('subject', 'empty subject');
  return {
    subject: one('subject', subject),
    text: one('text', src.text),
    html: src.html === undefined ? undefined : one('html', src.html),
  };
}

/**
 * Compiles one kind's templates from strings (for example a broadcast's own subject, text and
 * html). The subject is one line: surrounding whitespace (such as a file's final newline) is
 * dropped. Only the variables of `kind` are accepted. Throws a `MailwheelError` (BAD_ARGUMENT)
 * naming the part and the tag.
 */
export function compileTemplates(src: TemplateSource, kind: TemplateKind = 'scheduled'): TemplateSet {
  return compileAll(src, kind, (part, message) => new MailwheelError(ErrorCodes.BAD_ARGUMENT, `template ${part}: ${message}`));
}

/** File names of a kind's templates in the templates folder; html is optional. */
export function templateFiles(dir: string, kind: string): Record<PartName, string> {
  return {
    subject: join(dir, `${kind}.subject`),
    text: join(dir, `${kind}.txt`),
    html: join(dir, `${kind}.html`),
  };
}

/**
 * Reads and compiles `<kind>.subject`, `<kind>.txt` and (if present) `<kind>.html` from `dir`,
 * once, at start-up. Any problem is a `ConfigError` on `templates.dir` naming the file.
 */
export function loadTemplates(dir: string, kind: string): TemplateSet {
  const files = templateFiles(dir, kind);
  const read = (part: PartName, optional: boolean): string | undefined => {
    try {
      return readFileSync(files[part], 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (optional && code === 'ENOENT') return undefined;
      const why = code === 'ENOENT' ? 'missing template file' : `cannot read template file (${(err as Error).message})`;
      throw new ConfigError('templates.dir', `${why} ${files[part]}`);
    }
  };
  const src: TemplateSource = { subject: read('subject', false) ?? '', text: read('text', false) ?? '', html: read('html', true) };
  return compileAll(src, 'scheduled', (part, message) => new ConfigError('templates.dir', `${files[part]}: ${message}`));
}

/**
 * The values a delivery gives its template. A user without a name is greeted generically. A
 * value is one line: CR/LF (which `validate-user` already refuses) become a space here too, so
 * no template position can turn user data into a header or a MIME boundary line.
 */
export function templateVars(d: Delivery): TemplateVars {
  const line = (s: string): string => s.replace(/[\r\n]+/g, ' ');
  return {
    name: line(d.name ?? 'there'),
    email: line(d.email),
    time: line(d.slot ?? ''),
    date: line(d.localDate ?? ''),
  };
}

/** Mustache's HTML escaper (the one `{{name}}` uses when Mustache renders html). */
export function escapeHtml(s: string): string {
  return Mustache.escape(s);
}

/** Renders a part: literal segments as they are, variables through `escape`. */
export function renderPart(part: CompiledPart, vars: TemplateVars, escape: (s: string) => string): string {
  let out = '';
  for (const seg of part.segments) out += 'text' in seg ? seg.text : escape(vars[seg.var]);
  return out;
}

/**
 * A header value (subject, display name) is one line: CR/LF and other control characters (from
 * the template or a value) become a space, and surrounding whitespace, which header parsing
 * drops anyway, is trimmed.
 */
export function oneLine(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
}
