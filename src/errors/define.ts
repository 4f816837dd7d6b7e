/**
 * How a catalogue entry becomes an error class, in the manner of fastify's `createError`: one
 * definition gives the code, the message template, whether a retry can help and the process exit
 * code, and yields a constructor whose instances are `MailwheelError`s carrying all of that.
 *
 * Hand-written rather than `@fastify/error`: that package carries an HTTP `statusCode` only (no
 * exit code, no retryable flag), formats messages with untyped `%s` placeholders, and builds its
 * instances without running the base class's constructor, so `MailwheelError`'s own fields would
 * be skipped. The definer below is thirty lines, typed end to end (a template's parameters are the
 * constructor's), and keeps `instanceof MailwheelError` and `Error.cause` working.
 */
/**
 * Any catalogue code. The exact union (`ErrorCode`) is derived in catalogue.ts from the entries;
 * this module cannot import it back without a cycle, and it needs only the shape.
 */
type AnyCode = `MW_${string}`;

/** Success (also help and version). */
export const EXIT_OK = 0;
/** Anything that is not one of the cases below. */
export const EXIT_FAILURE = 1;
/** Exit code for a bad command line (sysexits.h EX_USAGE). */
export const EXIT_USAGE = 64;
/** Exit code when MongoDB or SMTP cannot be reached (sysexits.h EX_UNAVAILABLE). */
export const EXIT_UNAVAILABLE = 69;
/** Exit code for an output file that cannot be created (sysexits.h EX_CANTCREAT). */
export const EXIT_CANTCREAT = 73;
/**
 * Exit code for work left undone that a rerun can finish (sysexits.h EX_TEMPFAIL): `run-minute`
 * gave up on an unreachable SMTP server, or was stopped, with mail unsent and its claims released.
 */
export const EXIT_TEMPFAIL = 75;
/** Exit code for bad configuration (sysexits.h EX_CONFIG), which systemd and operators know. */
export const EXIT_CONFIG = 78;

/** The exit codes mailwheel uses: 0, 1 and the sysexits.h codes above. */
export const EXIT_CODES = [EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_CANTCREAT, EXIT_TEMPFAIL, EXIT_CONFIG] as const;
export type ExitCode = (typeof EXIT_CODES)[number];

/** One catalogue entry. */
export interface ErrorSpec<C extends string, A extends unknown[]> {
  /** Stable, `MW_` prefixed; tests and callers compare codes, not messages. */
  code: C;
  /** The process exit code a CLI command ends with when this error reaches it. */
  exit: ExitCode;
  /** Whether doing the same thing again later can succeed (a transient condition). */
  retryable: boolean;
  /** The message, from the constructor's arguments (declare every parameter: no defaults). */
  message: (...args: A) => string;
}

interface Entry {
  exit: ExitCode;
  retryable: boolean;
}
const entries = new Map<string, Entry>();

/** The catalogue entry of `code` (every code is defined, so this is total). */
export function entryOf(code: string): Entry {
  const entry = entries.get(code);
  if (entry === undefined) throw new TypeError(`error code ${code} is not in the catalogue`);
  return entry;
}

/** The base of every error mailwheel raises on purpose. */
export class MailwheelError extends Error {
  readonly code: AnyCode;
  /** From the catalogue: the process exit code this error maps to. */
  readonly exitCode: ExitCode;
  /** From the catalogue: whether a retry can help. */
  readonly retryable: boolean;
  constructor(code: AnyCode, message: string, options?: ErrorOptions) {
    super(message, options);
    const entry = entryOf(code);
    this.name = 'MailwheelError';
    this.code = code;
    this.exitCode = entry.exit;
    this.retryable = entry.retryable;
  }
}

/** The constructor `defineError` returns; its static fields repeat the entry for the catalogue's tests. */
export interface DefinedError<C extends string, A extends unknown[]> {
  new (...args: A | [...A, ErrorOptions]): MailwheelError & { readonly code: C };
  readonly code: C;
  readonly exit: ExitCode;
  readonly retryable: boolean;
}

/** Defines one catalogue entry; a code defined twice is a programming error, refused at load. */
export function defineError<const C extends `MW_${string}`, A extends unknown[]>(spec: ErrorSpec<C, A>): DefinedError<C, A> {
  if (entries.has(spec.code)) throw new TypeError(`error code ${spec.code} is defined twice`);
  entries.set(spec.code, { exit: spec.exit, retryable: spec.retryable });
  const arity = spec.message.length;
  const Defined = class extends MailwheelError {
    static readonly code = spec.code;
    static readonly exit = spec.exit;
    static readonly retryable = spec.retryable;
    constructor(...args: A | [...A, ErrorOptions]) {
      // Arguments beyond the template's are the options ({ cause }).
      const options = args.length > arity ? (args[arity] as ErrorOptions) : undefined;
      super(spec.code, spec.message(...(args.slice(0, arity) as A)), options);
    }
  };
  // The class is named after its code, so a logged error's `type` (pino reads the constructor's
  // name) says which entry it is instead of nothing.
  Object.defineProperty(Defined, 'name', { value: spec.code });
  return Defined as unknown as DefinedError<C, A>;
}
