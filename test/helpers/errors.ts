/**
 * Matching a thrown catalogue error by its code (what callers branch on) and, where an operator
 * reads it, its message: `expect(fn).toThrow(mwError(ErrorCodes.INTERNAL, /after stop/))`.
 */
import { expect } from 'vitest';
import type { ErrorCode } from '../../src/errors.js';

/** An asymmetric matcher for an error with `code` whose message matches `message` (if given). */
export function mwError(code: ErrorCode, message?: RegExp | string): Error {
  const text = message === undefined ? {} : { message: typeof message === 'string' ? expect.stringContaining(message) : expect.stringMatching(message) };
  return expect.objectContaining({ code, ...text }) as Error;
}
