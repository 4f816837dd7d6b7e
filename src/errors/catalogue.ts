/**
 * The error catalogue: every error mailwheel raises on purpose is defined here once, with its
 * code, its message, whether a retry can help and the exit code a CLI command ends with. Throw
 * sites write `throw new Errors.INTERNAL('...')`; tests assert codes; `cli/main-errors.ts` takes
 * the exit code from here. Transport failures are mapped onto SMTP_* by `adapters/smtp/classify.ts`.
 */
import { EXIT_CANTCREAT, EXIT_CONFIG, EXIT_FAILURE, EXIT_UNAVAILABLE, EXIT_USAGE, defineError } from './define.js';

/** One bad configuration field (dotted path) and what is wrong with it. */
export interface ConfigProblem {
  field: string;
  message: string;
}

/** The message itself: for entries whose throw sites each say something different. */
const as = (message: string): string => message;

export const Errors = {
  /** Bad configuration, every bad field named (thrown as `ConfigError`, which adds `problems`). */
  CONFIG_INVALID: defineError({
    code: 'MW_CONFIG_INVALID',
    exit: EXIT_CONFIG,
    retryable: false,
    message: (problems: readonly ConfigProblem[]) =>
      problems.length === 1 ? `config: ${problems[0]?.field}: ${problems[0]?.message}` : `config: ${problems.length} problems:\n${problems.map((p) => `  ${p.field}: ${p.message}`).join('\n')}`,
  }),
  /** A user document that cannot be scheduled (bad zone, bad slots, inactive). */
  USER_INVALID: defineError({ code: 'MW_USER_INVALID', exit: EXIT_FAILURE, retryable: false, message: as }),
  /** An SMTP failure a retry can cure (4xx, connection trouble); thrown as `SmtpError`. */
  SMTP_TRANSIENT: defineError({ code: 'MW_SMTP_TRANSIENT', exit: EXIT_FAILURE, retryable: true, message: as }),
  /** An SMTP refusal for good (5xx, malformed envelope); thrown as `SmtpError`. */
  SMTP_PERMANENT: defineError({ code: 'MW_SMTP_PERMANENT', exit: EXIT_FAILURE, retryable: false, message: as }),
  /** The part asked to work is stopping or closed (send queue, SMTP pool); later, a fresh one can. */
  SHUTTING_DOWN: defineError({ code: 'MW_SHUTTING_DOWN', exit: EXIT_FAILURE, retryable: true, message: as }),
  /** A user, broadcast or registered template set that does not exist. */
  NOT_FOUND: defineError({ code: 'MW_NOT_FOUND', exit: EXIT_FAILURE, retryable: false, message: as }),
  /** A bad command-line argument or API input (segment, address, header): exit 64 (EX_USAGE). */
  BAD_ARGUMENT: defineError({ code: 'MW_BAD_ARGUMENT', exit: EXIT_USAGE, retryable: false, message: as }),
  /** The request does not fit the current state (e.g. resuming a cancelled broadcast). */
  INVALID_STATE: defineError({ code: 'MW_INVALID_STATE', exit: EXIT_FAILURE, retryable: false, message: as }),
  /** MongoDB or SMTP cannot be reached: exit 69 (EX_UNAVAILABLE); thrown as `UnavailableError`. */
  UNAVAILABLE: defineError({ code: 'MW_UNAVAILABLE', exit: EXIT_UNAVAILABLE, retryable: true, message: as }),
  /** Redis (`cluster.redisUrl`) did not answer: sending pauses (never a guessed grant) and resumes when it does. */
  REDIS_UNAVAILABLE: defineError({ code: 'MW_REDIS_UNAVAILABLE', exit: EXIT_UNAVAILABLE, retryable: true, message: as }),
  /** The daemon or a command could not start (port in use, a dependency failed); exit 1. */
  STARTUP_FAILED: defineError({ code: 'MW_STARTUP_FAILED', exit: EXIT_FAILURE, retryable: false, message: as }),
  /** An output file named on the command line cannot be created (exit 73, EX_CANTCREAT). */
  CANNOT_WRITE: defineError({ code: 'MW_CANNOT_WRITE', exit: EXIT_CANTCREAT, retryable: false, message: as }),
  /** A template problem (unknown variable, section, unescaped html), before it is placed in a part. */
  TEMPLATE_INVALID: defineError({ code: 'MW_TEMPLATE_INVALID', exit: EXIT_USAGE, retryable: false, message: as }),
  /** A document read from MongoDB does not have the shape mailwheel wrote. */
  DOCUMENT_INVALID: defineError({ code: 'MW_DOCUMENT_INVALID', exit: EXIT_FAILURE, retryable: false, message: as }),
  /** Work that had to finish by a deadline did not (analytics events left unwritten at close). */
  DEADLINE_EXCEEDED: defineError({ code: 'MW_DEADLINE_EXCEEDED', exit: EXIT_FAILURE, retryable: true, message: as }),
  /** An HTTP client went away before its request was read. */
  REQUEST_ABORTED: defineError({ code: 'MW_REQUEST_ABORTED', exit: EXIT_FAILURE, retryable: false, message: as }),
  /** A programming invariant broke (a bug, not bad input): the message says which. */
  INTERNAL: defineError({ code: 'MW_INTERNAL', exit: EXIT_FAILURE, retryable: false, message: as }),
} as const;

export type ErrorName = keyof typeof Errors;
export type ErrorCode = (typeof Errors)[ErrorName]['code'];

/** `ErrorCodes.NOT_FOUND === 'MW_NOT_FOUND'`: the codes by name, for comparisons and tests. */
export const ErrorCodes = Object.fromEntries(Object.entries(Errors).map(([name, E]) => [name, E.code])) as {
  readonly [K in ErrorName]: (typeof Errors)[K]['code'];
};
