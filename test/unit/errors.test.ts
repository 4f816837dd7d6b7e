/**
 * The error catalogue: one definition per code, each with an exit code from the set the CLI uses
 * and a retryable flag, and the CLI ending a command with the exit code of the error's entry.
 */
import { CommanderError } from 'commander';
import { describe, expect, it } from 'vitest';
import { exitCodeOf } from '../../src/cli/main-errors.js';
import { SegmentError, parseSegment } from '../../src/core/segment.js';
import {
  ConfigError,
  defineError,
  ErrorCodes,
  Errors,
  EXIT_CODES,
  EXIT_CONFIG,
  EXIT_UNAVAILABLE,
  EXIT_USAGE,
  MailwheelError,
  SmtpError,
  UnavailableError,
} from '../../src/errors.js';

/** Every catalogue entry; each takes one message argument except CONFIG_INVALID (its problems). */
const entries = Object.entries(Errors);
function instanceOf(name: string, E: (typeof Errors)[keyof typeof Errors]): MailwheelError {
  const Ctor = E as unknown as new (arg: unknown) => MailwheelError;
  return new Ctor(name === 'CONFIG_INVALID' ? [{ field: 'a.b', message: 'is bad' }] : `a ${name} happened`);
}

describe('the catalogue', () => {
  it('has unique codes, each MW_ prefixed, named after its key', () => {
    const codes = entries.map(([, E]) => E.code);
    expect(new Set(codes).size).toBe(codes.length);
    for (const [name, E] of entries) expect(E.code).toBe(`MW_${name}`);
    expect(Object.values(ErrorCodes).sort()).toEqual([...codes].sort());
  });

  it('gives every entry an exit code from the sysexits set and a boolean retryable', () => {
    for (const [name, E] of entries) {
      expect(EXIT_CODES, name).toContain(E.exit);
      expect(typeof E.retryable, name).toBe('boolean');
    }
    expect([...EXIT_CODES].sort((a, b) => a - b)).toEqual([0, 1, 64, 69, 73, 75, 78]);
  });

  it('keeps the exit codes operators and systemd rely on', () => {
    expect(Errors.CONFIG_INVALID.exit).toBe(EXIT_CONFIG);
    expect(Errors.BAD_ARGUMENT.exit).toBe(EXIT_USAGE);
    expect(Errors.UNAVAILABLE.exit).toBe(EXIT_UNAVAILABLE);
    expect(Errors.CANNOT_WRITE.exit).toBe(73);
    expect(Errors.STARTUP_FAILED.exit).toBe(1);
  });

  it('refuses a code defined twice', () => {
    expect(() => defineError({ code: 'MW_INTERNAL', exit: 1, retryable: false, message: (m: string) => m })).toThrow(/defined twice/);
  });

  it('builds MailwheelErrors carrying the code, message, retryable, exit code and cause of their entry', () => {
    for (const [name, E] of entries) {
      const err = instanceOf(name, E);
      expect(err, name).toBeInstanceOf(MailwheelError);
      expect(err, name).toBeInstanceOf(Error);
      expect(err, name).toBeInstanceOf(E);
      expect({ code: err.code, exitCode: err.exitCode, retryable: err.retryable }, name).toEqual({ code: E.code, exitCode: E.exit, retryable: E.retryable });
      expect(err.message, name).not.toBe('');
      expect(err.constructor.name, name).toBe(E.code);
    }
    const cause = new Error('ECONNREFUSED');
    const err = new Errors.STARTUP_FAILED('http: cannot listen', { cause });
    expect(err.message).toBe('http: cannot listen');
    expect(err.cause).toBe(cause);
    // The generic constructor, as throw sites that name a code use it, takes its entry's flags too.
    expect(new MailwheelError(ErrorCodes.SHUTTING_DOWN, 'x')).toMatchObject({ code: 'MW_SHUTTING_DOWN', retryable: true, exitCode: Errors.SHUTTING_DOWN.exit });
  });

  it('ConfigError, UnavailableError and SmtpError take their code, exit code and retryable from it', () => {
    const config = new ConfigError('smtp.url', 'is not a URL', [{ field: 'http.port', message: 'too big' }]);
    expect(config).toBeInstanceOf(Errors.CONFIG_INVALID);
    expect(config).toMatchObject({ code: 'MW_CONFIG_INVALID', exitCode: 78, retryable: false, field: 'smtp.url' });
    expect(config.message).toBe('config: 2 problems:\n  smtp.url: is not a URL\n  http.port: too big');
    expect(new ConfigError('smtp.url', 'is not a URL').message).toBe('config: smtp.url: is not a URL');

    const down = new UnavailableError('mongodb.uri: cannot connect', { cause: new Error('refused') });
    expect(down).toMatchObject({ code: 'MW_UNAVAILABLE', exitCode: 69, retryable: true, name: 'UnavailableError' });
    expect((down.cause as Error).message).toBe('refused');

    expect(new SmtpError('452 busy', { retryable: true, smtpCode: 452 })).toMatchObject({ code: 'MW_SMTP_TRANSIENT', retryable: true, smtpCode: 452, connection: false });
    expect(new SmtpError('550 no such user', { retryable: false, smtpCode: 550 })).toMatchObject({ code: 'MW_SMTP_PERMANENT', retryable: false });
  });
});

describe('the CLI exit code', () => {
  it('is the catalogue entry of every error class', () => {
    for (const [name, E] of entries) expect(exitCodeOf(instanceOf(name, E)), name).toBe(E.exit);
    expect(exitCodeOf(ConfigError.of([{ field: 'x', message: 'bad' }]))).toBe(Errors.CONFIG_INVALID.exit);
    expect(exitCodeOf(new UnavailableError('down'))).toBe(Errors.UNAVAILABLE.exit);
    expect(exitCodeOf(new SmtpError('421', { retryable: true }))).toBe(Errors.SMTP_TRANSIENT.exit);
    expect(exitCodeOf(new SmtpError('550', { retryable: false }))).toBe(Errors.SMTP_PERMANENT.exit);
    let segment: unknown;
    try {
      parseSegment('{"$where": "1"}');
    } catch (err) {
      segment = err;
    }
    expect(segment).toBeInstanceOf(SegmentError);
    expect(exitCodeOf(segment)).toBe(Errors.BAD_ARGUMENT.exit);
  });

  it('is 64 for a command line commander refused, 0 for its help and version, 1 for anything else', () => {
    expect(exitCodeOf(new CommanderError(1, 'commander.unknownOption', "error: unknown option '--x'"))).toBe(64);
    expect(exitCodeOf(new CommanderError(0, 'commander.helpDisplayed', '(outputHelp)'))).toBe(0);
    expect(exitCodeOf(new Error('boom'))).toBe(1);
    expect(exitCodeOf(Object.assign(new Error('ENOENT: no such file or directory'), { code: 'ENOENT', syscall: 'open' }))).toBe(1);
    expect(exitCodeOf('a string')).toBe(1);
  });
});
