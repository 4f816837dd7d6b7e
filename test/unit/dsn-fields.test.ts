/** The field helpers the DSN and ARF readers share: typed addresses, Message-IDs, field blocks. */
import { describe, expect, it } from 'vitest';
import { addressIn, bracketed, fieldBlocks } from '../../src/feedback/inbound/report-mime.js';

describe('addressIn', () => {
  it('reads rfc822- and utf-8-typed addresses, bracketed or named ones, and drops comments', () => {
    expect(addressIn('rfc822; user@example.com')).toBe('user@example.com');
    expect(addressIn('RFC822;<User@Example.com>')).toBe('User@Example.com');
    expect(addressIn('utf-8; jörg@example.de')).toBe('jörg@example.de');
    expect(addressIn('Some One <one@example.com>')).toBe('one@example.com');
    expect(addressIn('two@example.com (the second)')).toBe('two@example.com');
  });
  it('refuses what is not an email address', () => {
    expect(addressIn('x400; /C=US/O=Example/')).toBeUndefined();
    expect(addressIn('<Undisclosed Recipients>')).toBeUndefined();
    expect(addressIn('rfc822;')).toBeUndefined();
    expect(addressIn('a@b@c')).toBeUndefined();
    expect(addressIn(undefined)).toBeUndefined();
  });
});

describe('bracketed', () => {
  it('keeps or adds the angle brackets of a Message-ID', () => {
    expect(bracketed(' <abc@host.example> (comment)')).toBe('<abc@host.example>');
    expect(bracketed('8787KJ.mail@example.net')).toBe('<8787KJ.mail@example.net>');
    expect(bracketed('no id here')).toBeUndefined();
  });
});

describe('fieldBlocks', () => {
  it('splits on blank lines (also whitespace-only ones), unfolds, keeps repeats in order, lower-cases names', () => {
    const blocks = fieldBlocks('Reporting-MTA: dns; a.example\r\n \r\nFinal-Recipient: rfc822; x@y.example\r\nDiagnostic-Code: smtp; 550 a\r\n  folded\r\nX-Repeat: 1\r\nX-Repeat: 2\r\n\r\n\r\n');
    expect(blocks.map((b) => Object.fromEntries(b))).toEqual([
      { 'reporting-mta': ['dns; a.example'] },
      { 'final-recipient': ['rfc822; x@y.example'], 'diagnostic-code': ['smtp; 550 a folded'], 'x-repeat': ['1', '2'] },
    ]);
  });
  it('does not let a field named like an Object member through', () => {
    const [b] = fieldBlocks('__proto__: x\r\nconstructor: y\r\nAction: failed\r\n');
    expect([...(b?.keys() ?? [])]).toEqual(['action']);
  });
});
