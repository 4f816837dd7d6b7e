/**
 * The errors mailwheel raises on purpose: the catalogue (`errors/catalogue.ts`: code, message,
 * retryable, exit code), its definer (`errors/define.ts`) and the classes that carry more than a
 * message. Everything imports from here.
 */
import { Errors, type ConfigProblem, type ErrorCode } from './errors/catalogue.js';
import { MailwheelError } from './errors/define.js';

export { Errors, ErrorCodes, type ConfigProblem, type ErrorCode, type ErrorName } from './errors/catalogue.js';
export {
  EXIT_CANTCREAT,
  EXIT_CODES,
  EXIT_CONFIG,
  EXIT_FAILURE,
  EXIT_OK,
  EXIT_TEMPFAIL,
  EXIT_UNAVAILABLE,
  EXIT_USAGE,
  MailwheelError,
  defineError,
  type DefinedError,
  type ExitCode,
} from './errors/define.js';

/**
 * Bad configuration (CONFIG_INVALID): names the field (dotted path) so the operator knows what to
 * fix. Config loading reports every bad field at once (`problems`, one line each); `field` is the first.
 */
export class ConfigError extends Errors.CONFIG_INVALID {
  readonly field: string;
  readonly problems: readonly ConfigProblem[];
  constructor(field: string, message: string, more: readonly ConfigProblem[] = []) {
    const problems = [{ field, message }, ...more];
    super(problems);
    this.name = 'ConfigError';
    this.field = field;
    this.problems = problems;
  }

  static of(problems: readonly ConfigProblem[]): ConfigError {
    const [first, ...more] = problems;
    return new ConfigError(first?.field ?? '(root)', first?.message ?? 'invalid', more);
  }
}

/** A service the command needs (MongoDB, SMTP) cannot be reached (UNAVAILABLE): exit 69. */
export class UnavailableError extends Errors.UNAVAILABLE {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options ?? {});
    this.name = 'UnavailableError';
  }
}

/**
 * An SMTP failure after classification: SMTP_TRANSIENT or SMTP_PERMANENT, and `retryable` (which
 * decides whether the send queue tries again) is that code's, from the catalogue.
 */
export class SmtpError extends MailwheelError {
  readonly smtpCode: number | undefined;
  /** True when the server could not be reached at all (feeds the circuit breaker). */
  readonly connection: boolean;
  constructor(
    message: string,
    opts: { retryable: boolean; smtpCode?: number; connection?: boolean; cause?: unknown },
  ) {
    const code: ErrorCode = opts.retryable ? Errors.SMTP_TRANSIENT.code : Errors.SMTP_PERMANENT.code;
    super(code, message, { cause: opts.cause });
    this.name = 'SmtpError';
    this.smtpCode = opts.smtpCode;
    this.connection = opts.connection ?? false;
  }
}
