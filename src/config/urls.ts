/**
 * The URLs in the configuration: checked with the parsers that will use them (WHATWG `URL` for
 * SMTP, as `SmtpPool` does; the MongoDB driver's own parser for the connection string), so a
 * value the config accepts is one the process can use, and redacted for output without trusting
 * that the value is well formed.
 */
import { MongoClient } from 'mongodb';
import { maskAll } from '../log.js';

/** The problem with an SMTP URL, or undefined when `SmtpPool` can use it. Never echoes the value. */
export function smtpUrlProblem(url: string): string | undefined {
  return serverUrlProblem(url, /^smtps?:\/\//i, 'must be an smtp:// or smtps:// URL').problem;
}

/** The problem with a Redis URL (`cluster.redisUrl`) as ioredis reads it, or undefined. Never echoes the value. */
export function redisUrlProblem(url: string): string | undefined {
  const { problem, parsed } = serverUrlProblem(url, /^rediss?:\/\//i, 'must be a redis:// or rediss:// URL');
  if (problem !== undefined || parsed === undefined) return problem;
  if (parsed.pathname !== '' && parsed.pathname !== '/' && !/^\/\d+$/.test(parsed.pathname)) return 'path must be empty or a database number (/0)';
  return undefined;
}

/** A server URL with credentials, checked as WHATWG `URL` reads it (SMTP, Redis): the problem, or the parsed URL. */
function serverUrlProblem(url: string, scheme: RegExp, wrongScheme: string): { problem?: string; parsed?: URL } {
  if (!scheme.test(url)) return { problem: wrongScheme };
  const ambiguous = ambiguousUserinfo(url);
  if (ambiguous) return { problem: ambiguous };
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { problem: 'is not a URL Node can parse (check the host name and that the port is 1-65535); the value is not shown' };
  }
  if (parsed.hostname === '') return { problem: 'names no host' };
  return { parsed };
}

/** The problem with a MongoDB connection string as the driver sees it, or undefined. */
export function mongoUriProblem(uri: string): string | undefined {
  if (!/^mongodb(\+srv)?:\/\/.+/.test(uri)) return 'must be a mongodb:// or mongodb+srv:// URI';
  try {
    // The constructor parses and validates the string; it opens no connection.
    new MongoClient(uri);
  } catch (err) {
    return `${scrubUri(uri, (err as Error).message)}; the value is not shown`;
  }
  return undefined;
}

/** The problem with the public base URL of the unsubscribe endpoint, or undefined. */
export function baseUrlProblem(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'is not a URL Node can parse';
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return 'must be an https:// URL';
  if (u.username !== '' || u.password !== '') return 'must not carry credentials';
  if (u.search !== '' || u.hash !== '' || /[?#]/.test(url)) return 'must not have a query or fragment (/unsubscribe?t=... is appended to it)';
  if (/[\s<>"]/.test(url)) return 'must not contain spaces, <, > or "';
  return undefined;
}

/**
 * A password with an unencoded '/', '?' or '#' ends the authority early: the URL then parses as
 * a different host, port and path than the operator meant (or not at all), and the password
 * would be shown as the "host". Such a URL has an '@' after the first of those characters.
 */
function ambiguousUserinfo(url: string): string | undefined {
  const rest = url.slice(url.indexOf('://') + 3);
  const end = rest.search(/[/?#]/);
  if (end >= 0 && rest.indexOf('@', end) >= 0) {
    return "has an '@' after a '/', '?' or '#': percent-encode those characters in the user name and password (/ as %2F, ? as %3F, # as %23, @ as %40); the value is not shown";
  }
  return undefined;
}

/** Query parameters whose values are credentials (MongoDB and nodemailer options). */
const SECRET_PARAM = /pass|secret|token|credential|authMechanismProperties|key/i;

/**
 * The URI with its credentials replaced by `***:***`, for output and logs. Everything up to the
 * LAST '@' counts as credentials: parsers split there (a password may hold a raw '@'), and on a
 * malformed value it hides too much rather than too little. Secret query values are hidden too.
 */
export function redactUri(uri: string): string {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([\s\S]*)$/.exec(uri);
  if (!m) return '[not shown]';
  let rest = m[2] ?? '';
  const at = rest.lastIndexOf('@');
  if (at >= 0) rest = `***:***@${rest.slice(at + 1)}`;
  const q = rest.indexOf('?');
  if (q >= 0) {
    const query = rest
      .slice(q + 1)
      .split('&')
      .map((pair) => {
        const eq = pair.indexOf('=');
        const key = eq < 0 ? pair : pair.slice(0, eq);
        return eq >= 0 && SECRET_PARAM.test(safeDecode(key)) ? `${key}=***` : pair;
      })
      .join('&');
    rest = `${rest.slice(0, q)}?${query}`;
  }
  return `${m[1] ?? ''}${rest}`;
}

/** The host part of a URI (hosts, for a multi-host MongoDB string), credentials never included. */
export function uriHosts(uri: string): string {
  const redacted = redactUri(uri);
  const m = /^[^:]+:\/\/(?:\*\*\*:\*\*\*@)?([^/?#]*)/.exec(redacted);
  return m?.[1] ?? '[not shown]';
}

/**
 * The strings in `uri` that are secret: its user information (raw, and each part decoded) and
 * the values of secret query parameters. For scrubbing text that may quote the URI (driver
 * errors, stack traces).
 */
export function uriSecrets(uri: string): string[] {
  const out = new Set<string>();
  const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([\s\S]*)$/.exec(uri);
  if (!m) {
    if (uri.length > 0) out.add(uri);
    return [...out];
  }
  const rest = m[1] ?? '';
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    const userinfo = rest.slice(0, at);
    out.add(userinfo);
    const colon = userinfo.indexOf(':');
    if (colon >= 0) {
      const pass = userinfo.slice(colon + 1);
      out.add(pass);
      out.add(safeDecode(pass));
    }
  }
  for (const pair of (rest.split('?')[1] ?? '').split('&')) {
    const eq = pair.indexOf('=');
    if (eq >= 0 && SECRET_PARAM.test(safeDecode(pair.slice(0, eq)))) {
      out.add(pair.slice(eq + 1));
      out.add(safeDecode(pair.slice(eq + 1)));
    }
  }
  // Very short fragments ("a") would blank out unrelated text; a one-character password is not
  // a secret worth the damage.
  return [...out].filter((s) => s.length >= 2);
}

/** `text` with every secret of `uri` replaced by `***`. */
export function scrubUri(uri: string, text: string): string {
  return maskAll(text, uriSecrets(uri).sort((a, b) => b.length - a.length), '***');
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
