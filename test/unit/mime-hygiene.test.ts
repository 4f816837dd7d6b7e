/**
 * What the bulk-sender rules look at in every message MimeBuilder writes: a Date and a
 * Message-ID on scheduled and broadcast mail alike, `Feedback-ID` (broadcasts.feedbackId with
 * `{broadcast}` replaced) on broadcasts only, and no `Precedence` header anywhere.
 */
import { describe, expect, it } from 'vitest';
import { MimeBuilder, rfc5322Date } from '../../src/adapters/smtp/mime.js';
import { messageIdFor } from '../../src/core/message.js';
import { compileTemplates } from '../../src/core/templates.js';
import { parseHeaders } from '../helpers/smtp-server.js';
import { sampleDelivery } from '../helpers/fakes.js';

const NOW = Date.parse('2026-01-05T09:00:07Z');
const TPL = compileTemplates({ subject: 'Hi {{name}}', text: 'Hello {{name}}.\n' });
const build = (feedbackId: string | null) => new MimeBuilder(TPL, { from: 'Notes <noreply@example.com>', now: () => NOW, feedbackId });
const scheduled = sampleDelivery();
const broadcast = sampleDelivery({ key: 'b:news-7:u1', kind: 'broadcast', broadcastId: 'news-7' });

describe('message hygiene', () => {
  it('every message has a Date and a Message-ID, and none has a Precedence header', () => {
    for (const d of [scheduled, broadcast]) {
      for (const fb of [null, '{broadcast}:news:mailwheel']) {
        const headers = parseHeaders(build(fb).build(d, { 'List-Unsubscribe': '<mailto:u@example.com>' }).raw);
        expect(headers.get('date')).toBe(rfc5322Date(NOW));
        expect(headers.get('message-id')).toBe(messageIdFor(d.key, 'example.com'));
        expect(headers.has('precedence')).toBe(false);
      }
    }
  });

  it('Feedback-ID on broadcasts only, with {broadcast} replaced by the broadcast id', () => {
    const fb = '{broadcast}:news:mailwheel';
    expect(parseHeaders(build(fb).build(broadcast).raw).get('feedback-id')).toBe('news-7:news:mailwheel');
    expect(parseHeaders(build(fb).build(scheduled).raw).has('feedback-id')).toBe(false);
    expect(parseHeaders(build(null).build(broadcast).raw).has('feedback-id')).toBe(false);
  });

  it('an extra header cannot add a second Feedback-ID', () => {
    expect(() => build('x').build(broadcast, { 'Feedback-ID': 'forged' })).toThrow(/written by the builder itself/);
  });
});
