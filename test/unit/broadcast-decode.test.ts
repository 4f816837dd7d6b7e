import { describe, expect, it } from 'vitest';
import { decodeBroadcast } from '../../src/adapters/mongo/broadcast-decode.js';
import { progressText, statusBlock } from '../../src/cli/broadcast-view.js';
import { ErrorCodes } from '../../src/errors.js';
import { mwError } from '../helpers/errors.js';

const at = new Date('2026-03-08T09:00:00Z');
/** A document as the server returns it while a run counts the segment (undefined stored as null). */
const stored = {
  _id: '20260308-090000-abcdef',
  subject: 'News',
  text: 'Hi {{name}}',
  html: null,
  segment: '{}',
  status: 'running',
  at: null,
  createdAt: at,
  counters: { total: null, sent: 3, failed: 0, skipped: 1, suppressed: 0 },
  checkpoint: { batches: 1, processed: 4, lastUserId: null, at },
  gen: 1,
  owner: 'host:1:x',
  startedAt: at,
  finishedAt: null,
  error: null,
  updatedAt: at,
};

describe('decodeBroadcast', () => {
  it('reads null optional fields as absent (counters.total null while counting)', () => {
    const doc = decodeBroadcast(stored);
    expect(doc.counters).toEqual({ sent: 3, failed: 0, skipped: 1, suppressed: 0 });
    expect('total' in doc.counters).toBe(false);
    for (const k of ['html', 'at', 'finishedAt', 'error'] as const) expect(k in doc, k).toBe(false);
    expect(doc.checkpoint).toEqual({ batches: 1, processed: 4, lastUserId: null, at });
    expect(doc.owner).toBe('host:1:x');
  });

  it('keeps a counted total and present optional fields', () => {
    const doc = decodeBroadcast({ ...stored, html: '<p>x</p>', counters: { ...stored.counters, total: 10 }, error: 'boom' });
    expect(doc.counters.total).toBe(10);
    expect(doc.html).toBe('<p>x</p>');
    expect(doc.error).toBe('boom');
  });

  it('a document that does not fit fails naming the broadcast and the field', () => {
    expect(() => decodeBroadcast({ ...stored, counters: { ...stored.counters, sent: 'many' } })).toThrow(mwError(ErrorCodes.DOCUMENT_INVALID, /broadcast 20260308-090000-abcdef: stored document is malformed at counters\.sent/));
    expect(() => decodeBroadcast({ ...stored, status: 'exploded' })).toThrow(mwError(ErrorCodes.DOCUMENT_INVALID, /at status/));
  });

  it('the views render a decoded document with an uncounted total instead of throwing', () => {
    const doc = decodeBroadcast(stored);
    expect(progressText(doc.counters, doc.status)).toBe('4 users (counting)');
    expect(statusBlock(doc, undefined)).toMatch(/progress\s+4 users \(counting\)\n/);
  });
});
