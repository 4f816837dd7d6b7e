/**
 * The error catalogue: every error mailwheel raises on purpose has a code from here, and tests
 * assert on codes. Whether an SMTP failure is worth retrying is decided in
 * `adapters/smtp/classify.ts`, which maps transport errors onto these codes.
 */

export const ErrorCodes = {
  CONFIG_INVALID: 'MW_CONFIG_INVALID',
  USER_INVALID: 'MW_USER_INVALID',
  SMTP_TRANSIENT: 'MW_SMTP_TRANSIENT',
  SMTP_PERMANENT: 'MW_SMTP_PERMANENT',
  SHUTTING_DOWN: 'MW_SHUTTING_DOWN',
  NOT_FOUND: 'MW_NOT_FOUND',
  BAD_ARGUMENT: 'MW_BAD_ARGUMENT',
  /** The request does not fit the current state (e.g. resuming a cancelled broadcast). */
  INVALID_STATE: 'MW_INVALID_STATE',
  /** MongoDB or SMTP cannot be reached. */
  UNAVAILABLE: 'MW_UNAVAILABLE',
  /** The daemon or a command could not start (port in use, a dependency failed); exit 1. */
  STARTUP_FAILED: 'MW_STARTUP_FAILED',
  /** An output file named on the command line cannot be created (exit 73, EX_CANTCREAT). */
  CANNOT_WRITE: 'MW_CANNOT_WRITE',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** Exit code for bad configuration (sysexits.h EX_CONFIG), which systemd and operators know. */
export const EXIT_CONFIG = 78;
/** Exit code for a bad command line (sysexits.h EX_USAGE). */
export const EXIT_USAGE = 64;
/** Exit code when MongoDB or SMTP cannot be reached (sysexits.h EX_UNAVAILABLE). */
export const EXIT_UNAVAILABLE = 69;
/**
 * Exit code for work left undone that a rerun can finish (sysexits.h EX_TEMPFAIL): `run-minute`
 * gave up on an unreachable SMTP server, or was stopped, with mail unsent and its claims released.
 */
export const EXIT_TEMPFAIL = 75;
/** Exit code for an output file that cannot be created (sysexits.h EX_CANTCREAT). */
export const EXIT_CANTCREAT = 73;

export class MailwheelError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MailwheelError';
    this.code = code;
  }
}

export interface ConfigProblem {
  field: string;
  message: string;
}

/**
 * Bad configuration: names the field (dotted path) so the operator knows what to fix. Config
 * loading reports every bad field at once (`problems`, one line each); `field` is the first.
 */
export class ConfigError extends MailwheelError {
  readonly field: string;
  readonly problems: readonly ConfigProblem[];
  constructor(field: string, message: string, more: readonly ConfigProblem[] = []) {
    const problems = [{ field, message }, ...more];
    super(
      ErrorCodes.CONFIG_INVALID,
      problems.length === 1 ? `config: ${field}: ${message}` : `config: ${problems.length} problems:\n${problems.map((p) => `  ${p.field}: ${p.message}`).join('\n')}`,
    );
    this.name = 'ConfigError';
    this.field = field;
    this.problems = problems;
  }

  static of(problems: readonly ConfigProblem[]): ConfigError {
    const [first, ...more] = problems;
    return new ConfigError(first?.field ?? '(root)', first?.message ?? 'invalid', more);
  }
}

/** A service the command needs (MongoDB, SMTP) cannot be reached: exit 69 (EX_UNAVAILABLE). */
export class UnavailableError extends MailwheelError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCodes.UNAVAILABLE, message, options);
    this.name = 'UnavailableError';
  }
}

/** An SMTP failure after classification; `retryable` decides whether the send queue tries again. */
export class SmtpError extends MailwheelError {
  readonly retryable: boolean;
  readonly smtpCode: number | undefined;
  /** True when the server could not be reached at all (feeds the circuit breaker). */
  readonly connection: boolean;
  constructor(
    message: string,
    opts: { retryable: boolean; smtpCode?: number; connection?: boolean; cause?: unknown },
  ) {
    super(opts.retryable ? ErrorCodes.SMTP_TRANSIENT : ErrorCodes.SMTP_PERMANENT, message, { cause: opts.cause });
    this.name = 'SmtpError';
    this.retryable = opts.retryable;
    this.smtpCode = opts.smtpCode;
    this.connection = opts.connection ?? false;
  }
}
