/**
 * SMTP error classification (what is retried) and the backoff policy (how long to wait).
 */
import { describe, expect, it } from 'vitest';
import { backoffDelay, classifySmtpError, isSlowDown } from '../../src/adapters/smtp/classify.js';
import { ErrorCodes, SmtpError } from '../../src/errors.js';

/** What nodemailer rejects with after an SMTP reply. */
function smtpReply(responseCode: number, text = `${responseCode} some reply`): Error & { responseCode: number; response: string; code: string } {
  return Object.assign(new Error(`Message failed: ${text}`), { responseCode, response: text, code: 'EMESSAGE' });
}

function transportError(code: string, message = `${code} happened`): Error & { code: string } {
  return Object.assign(new Error(message), { code });
}

describe('classifySmtpError', () => {
  it.each([421, 450, 451, 452, 454])('%i is transient: retryable, code kept, not a connection failure', (code) => {
    const e = classifySmtpError(smtpReply(code));
    expect(e).toBeInstanceOf(SmtpError);
    expect(e.retryable).toBe(true);
    expect(e.code).toBe(ErrorCodes.SMTP_TRANSIENT);
    expect(e.smtpCode).toBe(code);
    expect(e.connection).toBe(false);
  });

  it.each([550, 553, 554])('%i is permanent: not retryable, smtpCode kept', (code) => {
    const e = classifySmtpError(smtpReply(code));
    expect(e.retryable).toBe(false);
    expect(e.code).toBe(ErrorCodes.SMTP_PERMANENT);
    expect(e.smtpCode).toBe(code);
  });

  it('a 5xx reply wins over a connection-ish error code', () => {
    const raw = Object.assign(new Error('rejected'), { code: 'ECONNECTION', responseCode: 554, response: '554 no' });
    expect(classifySmtpError(raw).retryable).toBe(false);
  });

  it.each(['ECONNECTION', 'ETIMEDOUT', 'ECONNREFUSED', 'ECONNRESET'])('%s is a retryable connection failure', (code) => {
    const e = classifySmtpError(transportError(code));
    expect(e.retryable).toBe(true);
    expect(e.connection).toBe(true);
    expect(e.smtpCode).toBeUndefined();
  });

  it('EENVELOPE without a reply code is permanent (the message is at fault)', () => {
    const e = classifySmtpError(transportError('EENVELOPE', 'No recipients defined'));
    expect(e.retryable).toBe(false);
    expect(e.connection).toBe(false);
    expect(e.smtpCode).toBeUndefined();
  });

  it.each<[string, unknown]>([
    ['a plain Error', new Error('something odd')],
    ['an unknown code', transportError('EWHATEVER')],
    ['a string', 'boom'],
    ['null', null],
    ['undefined', undefined],
  ])('%s is retryable (bounded by maxAttempts elsewhere)', (_label, raw) => {
    const e = classifySmtpError(raw);
    expect(e).toBeInstanceOf(SmtpError);
    expect(e.retryable).toBe(true);
    expect(e.connection).toBe(false);
  });

  it('keeps the server reply as the message and the original as the cause', () => {
    const raw = smtpReply(550, '550 5.1.1 <x@example.test>: user unknown');
    const e = classifySmtpError(raw);
    expect(e.message).toBe('550 5.1.1 <x@example.test>: user unknown');
    expect(e.cause).toBe(raw);
  });

  it('returns an already classified SmtpError unchanged', () => {
    const e = new SmtpError('x', { retryable: false, smtpCode: 552 });
    expect(classifySmtpError(e)).toBe(e);
  });
});

describe('backoffDelay (exponential, full jitter)', () => {
  const base = 100;
  const max = 5_000;

  it('is 0 when random() is 0', () => {
    for (let attempt = 1; attempt <= 10; attempt++) expect(backoffDelay(attempt, base, max, () => 0)).toBe(0);
  });

  it('is just under the ceiling base * 2^(attempt-1) when random() is close to 1', () => {
    const r = () => 0.999;
    // Ceilings computed by hand: 100, 200, 400, 800, 1600, 3200, then capped at 5000.
    const ceilings = [100, 200, 400, 800, 1600, 3200, 5000, 5000];
    ceilings.forEach((ceiling, i) => {
      const d = backoffDelay(i + 1, base, max, r);
      expect(d).toBeLessThan(ceiling);
      expect(d).toBeGreaterThanOrEqual(Math.floor(ceiling * 0.999) - 1);
    });
  });

  it('doubles the range with each attempt', () => {
    const half = () => 0.5;
    expect(backoffDelay(1, base, max, half)).toBe(50);
    expect(backoffDelay(2, base, max, half)).toBe(100);
    expect(backoffDelay(3, base, max, half)).toBe(200);
    expect(backoffDelay(4, base, max, half)).toBe(400);
  });

  it('never exceeds the cap, even for huge attempt numbers', () => {
    for (const attempt of [7, 20, 100, 2000]) {
      const d = backoffDelay(attempt, base, max, () => 0.999999);
      expect(d).toBeLessThan(max);
      expect(d).toBeGreaterThan(max * 0.99);
    }
  });

  it('with Math.random stays inside [0, ceiling) and is an integer', () => {
    for (let i = 0; i < 500; i++) {
      const attempt = 1 + (i % 8);
      const d = backoffDelay(attempt, base, max);
      expect(Number.isInteger(d)).toBe(true);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(Math.min(max, base * 2 ** (attempt - 1)));
    }
  });
});

describe("isSlowDown (answers about the sender's pace, which slow the whole queue)", () => {
  it.each([
    [421, '421 4.7.0 Try again later'],
    [450, '450 4.7.28 Our system has detected an unusual rate of unsolicited mail'],
    [451, '451 4.7.1 Please try again later'],
    [452, '452 Too many recipients received this hour'],
  ])('%i "%s" is a slow-down', (code, text) => {
    expect(isSlowDown(classifySmtpError(smtpReply(code, text)))).toBe(true);
  });
  it.each([
    [450, '450 4.2.1 Mailbox busy'],
    [451, '451 4.3.0 Local error in processing'],
    [550, '550 5.7.1 Relaying denied'],
  ])('%i "%s" is not', (code, text) => {
    expect(isSlowDown(classifySmtpError(smtpReply(code, text)))).toBe(false);
  });
});
