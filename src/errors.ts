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
  /** An output file named on the command line cannot be created (exit 73, EX_CANTCREAT). */
  CANNOT_WRITE: 'MW_CANNOT_WRITE',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** Exit code for bad configuration (sysexits.h EX_CONFIG), which systemd and operators know. */
export const EXIT_CONFIG = 78;
/** Exit code for a bad command line (sysexits.h EX_USAGE). */
export const EXIT_USAGE = 64;
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

/** Bad configuration: names the field (dotted path) so the operator knows what to fix. */
export class ConfigError extends MailwheelError {
  readonly field: string;
  constructor(field: string, message: string) {
    super(ErrorCodes.CONFIG_INVALID, `config: ${field}: ${message}`);
    this.name = 'ConfigError';
    this.field = field;
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
