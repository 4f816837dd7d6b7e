/**
 * The FeedbackSink over in-memory fakes of its ports, with the real SuppressionList: what each
 * kind of report does, that the same report twice changes nothing, that an inbound report for an
 * unknown message never suppresses anyone, the soft-bounce window, the complaint scope per config
 * and the broadcast pause (once, with its reason).
 */
import { describe, expect, it } from 'vitest';
import { describeDeliveryKey, digestOfKey, digestOfMessageId, FeedbackReportSink, type FeedbackRules } from '../../src/core/feedback.js';
import { RefusalCounter } from '../../src/core/feedback-refusals.js';
import { broadcastKey, scheduledKey } from '../../src/core/delivery-key.js';
import { messageIdFor } from '../../src/core/message.js';
import { SuppressionList } from '../../src/core/suppression-list.js';
import type { BroadcastDoc, ControlAction } from '../../src/ports/broadcasts.js';
import type { FeedbackKind, FeedbackReport, MessageIndex, SentMessage } from '../../src/ports/feedback.js';
import type { FeedbackRecord, FeedbackStore, FeedbackTally } from '../../src/ports/feedback-store.js';
import type { OutcomeEvent, SuppressedAddress, SuppressionEntry, SuppressionStore } from '../../src/ports/index.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { silentLogger } from '../helpers/fakes.js';

const HOUR = 3_600_000;
const FIELD = { 'hard-bounce': 'hardBounces', 'soft-bounce': 'softBounces', complaint: 'complaints' } as const;

class MemoryFeedbackStore implements FeedbackStore {
  readonly records = new Map<string, FeedbackRecord>();
  readonly soft = new Map<string, Date[]>();
  readonly tallies = new Map<string, FeedbackTally>();
  async insert(records: readonly FeedbackRecord[]): Promise<Set<string>> {
    const dups = new Set<string>();
    for (const r of records) {
      if (this.records.has(r.id)) dups.add(r.id);
      else this.records.set(r.id, r);
    }
    return dups;
  }
  async remove(ids: readonly string[]): Promise<void> {
    for (const id of ids) this.records.delete(id);
  }
  async softBounce(email: string, at: Date, windowMs: number, keep: number): Promise<number> {
    const since = at.getTime() - windowMs;
    const times = [...(this.soft.get(email) ?? []), at].filter((t) => t.getTime() >= since).slice(-keep);
    this.soft.set(email, times);
    return times.filter((t) => t <= at).length;
  }
  async count(kind: FeedbackKind, day: string, broadcastId?: string): Promise<FeedbackTally | undefined> {
    const bump = (id: string) => {
      const t = { ...(this.tallies.get(id) ?? { hardBounces: 0, softBounces: 0, complaints: 0 }) };
      t[FIELD[kind]]++;
      this.tallies.set(id, t);
      return t;
    };
    bump(`d:${day}`);
    return broadcastId === undefined ? undefined : bump(`b:${broadcastId}`);
  }
  async forBroadcast(id: string): Promise<FeedbackTally> {
    return this.tallies.get(`b:${id}`) ?? { hardBounces: 0, softBounces: 0, complaints: 0 };
  }
  async forDay(day: string): Promise<FeedbackTally> {
    return this.tallies.get(`d:${day}`) ?? { hardBounces: 0, softBounces: 0, complaints: 0 };
  }
}

class MemorySuppressionStore implements SuppressionStore {
  readonly entries: SuppressionEntry[] = [];
  fail = false;
  async suppress(entry: SuppressionEntry): Promise<void> {
    if (this.fail) throw new Error('mongo down');
    this.entries.push(entry);
  }
  async recordHardBounce(): Promise<number> {
    return 1;
  }
  async *allSuppressed(): AsyncIterable<SuppressedAddress[]> {
    yield [];
  }
}

class FakeBroadcasts {
  readonly docs = new Map<string, Pick<BroadcastDoc, 'status' | 'counters'>>();
  readonly requests: Array<{ id: string; action: ControlAction; reason: string | undefined }> = [];
  async get(id: string): Promise<BroadcastDoc | undefined> {
    return this.docs.get(id) as BroadcastDoc | undefined;
  }
  async control(id: string): Promise<ControlAction | undefined> {
    return this.requests.filter((r) => r.id === id).at(-1)?.action;
  }
  async requestControl(id: string, action: ControlAction, reason?: string): Promise<void> {
    this.requests.push({ id, action, reason });
  }
}

const RULES: FeedbackRules = {
  softBounce: { limit: 3, windowHours: 24 },
  complaintStopsScheduled: false,
  broadcastPause: { minSent: 500, bounceRate: 0.05, complaintRate: 0.003 },
};

function setup(rules: Partial<FeedbackRules> = {}) {
  const clock = new FakeClock('2027-03-01T12:00:00Z');
  const index = new Map<string, SentMessage>();
  const store = new MemoryFeedbackStore();
  const suppressionStore = new MemorySuppressionStore();
  const list = new SuppressionList(suppressionStore, { hardBounceLimit: 1 });
  const broadcasts = new FakeBroadcasts();
  const events: OutcomeEvent[] = [];
  const refusals = new RefusalCounter();
  const messageIndex: Pick<MessageIndex, 'find'> = {
    find: async (digests) => new Map(digests.flatMap((d) => (index.has(d) ? [[d, index.get(d) as SentMessage] as const] : []))),
  };
  const sink = new FeedbackReportSink(
    { index: messageIndex, store, suppressions: list, broadcasts, events: { record: async (e) => void events.push(e) }, refusals, clock, log: silentLogger() },
    { ...RULES, ...rules },
  );
  /** Records a sent message in the index; returns its Message-ID. */
  const sent = (key: string, email: string): string => {
    const d = describeDeliveryKey(key);
    index.set(digestOfKey(key), { digest: digestOfKey(key), key, email, userId: d.userId, broadcastId: d.broadcastId, at: new Date(clock.now()) });
    return messageIdFor(key, 'mail.example.com');
  };
  return { clock, index, store, suppressionStore, list, broadcasts, events, refusals, sink, sent };
}

const report = (r: Partial<FeedbackReport> & Pick<FeedbackReport, 'source' | 'kind' | 'email'>): FeedbackReport => ({ at: new Date('2027-03-01T11:59:00Z'), ...r });

describe('digests', () => {
  it('the digest of a key is the local part of its Message-ID, and is read back from one', () => {
    const key = broadcastKey('20270301-120000-abcdef', 's:u1');
    const id = messageIdFor(key, 'mail.example.com');
    expect(id).toBe(`<${digestOfKey(key)}@mail.example.com>`);
    expect(digestOfMessageId(id)).toBe(digestOfKey(key));
    expect(digestOfMessageId(id.toUpperCase())).toBe(digestOfKey(key));
    expect(digestOfMessageId('<not-ours@example.com>')).toBeUndefined();
  });

  it('a key tells its kind, user and broadcast', () => {
    expect(describeDeliveryKey(broadcastKey('B1', 's:u:1'))).toEqual({ kind: 'broadcast', broadcastId: 'B1', userId: 's:u:1' });
    expect(describeDeliveryKey(scheduledKey('s:a:b', '09:00', '2027-03-01'))).toEqual({ kind: 'scheduled', userId: 's:a:b' });
  });
});

describe('FeedbackSink rules', () => {
  it('a hard bounce found by Message-ID suppresses the address for all mail and records an event on the delivery key', async () => {
    const t = setup();
    const key = broadcastKey('B1', 's:u1');
    const messageId = t.sent(key, 'User1@Example.com');
    const r = await t.sink.apply([report({ source: 'dsn', kind: 'hard-bounce', email: 'user1@example.com', messageId, detail: '5.1.1 user unknown' })]);
    expect(r).toEqual({ applied: 1, duplicates: 0, suppressed: 1, ignored: [] });
    expect(t.list.has('user1@example.com', 'scheduled')).toBe(true);
    expect(t.suppressionStore.entries).toEqual([expect.objectContaining({ email: 'user1@example.com', reason: 'hard-bounce', source: 'dsn', scope: 'all', userId: 's:u1', detail: '5.1.1 user unknown' })]);
    expect(t.events).toHaveLength(1);
    expect(t.events[0]).toMatchObject({ type: 'bounced', key, kind: 'broadcast', userId: 's:u1' });
    expect(t.events[0]?.reason).toContain('5.1.1 user unknown');
    expect(await t.store.forBroadcast('B1')).toEqual({ hardBounces: 1, softBounces: 0, complaints: 0 });
    expect(await t.store.forDay('2027-03-01')).toEqual({ hardBounces: 1, softBounces: 0, complaints: 0 });
  });

  it('the same report twice, in one batch or two, changes nothing the second time', async () => {
    const t = setup();
    const messageId = t.sent(broadcastKey('B1', 's:u1'), 'u1@example.com');
    const r = report({ source: 'arf', kind: 'complaint', email: 'u1@example.com', messageId });
    expect(await t.sink.apply([r, { ...r }])).toMatchObject({ applied: 1, duplicates: 1 });
    expect(await t.sink.apply([r])).toMatchObject({ applied: 0, duplicates: 1, suppressed: 0 });
    expect(t.suppressionStore.entries).toHaveLength(1);
    expect(t.events).toHaveLength(1);
    expect((await t.store.forBroadcast('B1')).complaints).toBe(1);
    expect(t.sink.stats).toMatchObject({ applied: 1, duplicates: 2 });
    expect(t.sink.stats.reports.arf.complaint).toBe(3);
  });

  it('a DSN or ARF report for a message mailwheel did not send is ignored and suppresses no one', async () => {
    const t = setup();
    const r = await t.sink.apply([
      report({ source: 'dsn', kind: 'hard-bounce', email: 'victim@example.com', messageId: messageIdFor('b:B9:s:nobody', 'mail.example.com') }),
      report({ source: 'arf', kind: 'complaint', email: 'victim@example.com', messageId: '<forged@elsewhere.example>' }),
      report({ source: 'dsn', kind: 'hard-bounce', email: 'victim@example.com' }),
    ]);
    expect(r.applied).toBe(0);
    expect(r.ignored.map((i) => i.reason)).toEqual(['unknown-message', 'unknown-message', 'unknown-message']);
    expect(t.list.has('victim@example.com', 'broadcast')).toBe(false);
    expect(t.suppressionStore.entries).toEqual([]);
    expect(t.events).toEqual([]);
    expect(t.refusals.count('dsn', 'unknown-message')).toBe(2);
    expect(t.refusals.count('arf', 'unknown-message')).toBe(1);
    expect(t.sink.stats.ignored).toEqual({ 'unknown-message': 3 });
  });

  it("a provider's signed report applies by address without a delivery, once per event id", async () => {
    const t = setup();
    const r = report({ source: 'ses', kind: 'hard-bounce', email: 'Gone@Example.com', eventId: 'sns-1' });
    expect(await t.sink.apply([r])).toMatchObject({ applied: 1, suppressed: 1 });
    expect(await t.sink.apply([r])).toMatchObject({ applied: 0, duplicates: 1 });
    expect(t.list.has('gone@example.com')).toBe(true);
    expect(t.suppressionStore.entries).toEqual([expect.objectContaining({ email: 'gone@example.com', source: 'ses' })]);
    expect(t.events[0]).toMatchObject({ type: 'bounced' });
    expect(t.events[0]?.key).toBeUndefined();
  });

  it('a verified delivery key (VERP) finds the delivery without the index', async () => {
    const t = setup();
    const key = scheduledKey('s:u7', '09:00', '2027-03-01');
    const r = await t.sink.apply([report({ source: 'dsn', kind: 'hard-bounce', email: 'u7@example.com', deliveryKey: key })]);
    expect(r).toMatchObject({ applied: 1, suppressed: 1 });
    expect(t.events[0]).toMatchObject({ type: 'bounced', key, kind: 'scheduled', userId: 's:u7' });
    expect(t.store.records.has(`${key}#hard-bounce`)).toBe(true);
  });

  it('soft bounces suppress once the limit falls within the window, not before', async () => {
    const t = setup();
    const base = Date.parse('2027-03-01T00:00:00Z');
    const soft = (i: number, hours: number) =>
      t.sink.apply([report({ source: 'dsn', kind: 'soft-bounce', email: 's@example.com', deliveryKey: scheduledKey('s:u1', '09:00', `2027-03-0${i}`), at: new Date(base + hours * HOUR) })]);
    // 0 h, 1 h: two; 26 h: the first two are out of the 24 h window (one); 27 h: two.
    for (const [i, h] of [[1, 0], [2, 1], [3, 26], [4, 27]] as const) expect(await soft(i, h)).toMatchObject({ applied: 1, suppressed: 0 });
    expect(t.list.has('s@example.com')).toBe(false);
    expect(await soft(5, 28)).toMatchObject({ applied: 1, suppressed: 1 });
    expect(t.list.has('s@example.com', 'scheduled')).toBe(true);
    expect(t.suppressionStore.entries).toEqual([expect.objectContaining({ reason: 'soft-bounce', scope: 'all' })]);
    expect(t.events.map((e) => e.type)).toEqual(['bounced', 'bounced', 'bounced', 'bounced', 'bounced']);
  });

  it('a complaint stops broadcasts only, or all mail with complaintStopsScheduled', async () => {
    for (const stops of [false, true]) {
      const t = setup({ complaintStopsScheduled: stops });
      const messageId = t.sent(broadcastKey('B1', 's:u1'), 'c@example.com');
      await t.sink.apply([report({ source: 'arf', kind: 'complaint', email: 'c@example.com', messageId, detail: 'abuse' })]);
      expect(t.list.has('c@example.com', 'broadcast')).toBe(true);
      expect(t.list.has('c@example.com', 'scheduled')).toBe(stops);
      expect(t.suppressionStore.entries).toEqual([expect.objectContaining({ reason: 'complaint', scope: stops ? 'all' : 'marketing' })]);
      expect(t.events[0]).toMatchObject({ type: 'complained', kind: 'broadcast' });
    }
  });

  it('a report whose suppression fails is not kept, so its retry applies it', async () => {
    const t = setup();
    t.suppressionStore.fail = true;
    const r = report({ source: 'mailgun', kind: 'hard-bounce', email: 'x@example.com', eventId: 'mg-1' });
    await expect(t.sink.apply([r])).rejects.toThrow('mongo down');
    t.suppressionStore.fail = false;
    expect(await t.sink.apply([r])).toMatchObject({ applied: 1, duplicates: 0, suppressed: 1 });
  });
});

describe('broadcast pause', () => {
  const complaint = (t: ReturnType<typeof setup>, i: number) =>
    t.sink.apply([report({ source: 'arf', kind: 'complaint', email: `u${i}@example.com`, messageId: t.sent(broadcastKey('B1', `s:u${i}`), `u${i}@example.com`) })]);

  it('pauses a running broadcast once, when its complaint rate reaches the threshold, saying why', async () => {
    const t = setup();
    t.broadcasts.docs.set('B1', { status: 'running', counters: { sent: 1000, failed: 0, skipped: 0, suppressed: 0 } });
    await complaint(t, 1);
    await complaint(t, 2);
    expect(t.broadcasts.requests).toEqual([]);
    await complaint(t, 3);
    await complaint(t, 4);
    expect(t.broadcasts.requests).toEqual([{ id: 'B1', action: 'pause', reason: 'complaint rate 0.30% >= 0.30% (feedback.broadcastPause.complaintRate) after 1,000 sent' }]);
    expect(t.sink.stats.pauses).toBe(1);
  });

  it('pauses on the hard-bounce rate (the rate `broadcast status` shows); soft bounces do not count toward it', async () => {
    const t = setup();
    t.broadcasts.docs.set('B1', { status: 'running', counters: { sent: 600, failed: 0, skipped: 0, suppressed: 0 } });
    const bounce = (i: number, kind: 'hard-bounce' | 'soft-bounce') => report({ source: 'dsn', kind, email: `b${i}@example.com`, messageId: t.sent(broadcastKey('B1', `s:b${i}`), `b${i}@example.com`) });
    // 40 soft bounces (6.7 % of 600) and 29 hard ones (4.8 %): under the 5 % threshold.
    await t.sink.apply(Array.from({ length: 40 }, (_, i) => bounce(i, 'soft-bounce')));
    await t.sink.apply(Array.from({ length: 29 }, (_, i) => bounce(100 + i, 'hard-bounce')));
    expect(t.broadcasts.requests).toEqual([]);
    // The 30th hard bounce: 5.00 %.
    await t.sink.apply([bounce(200, 'hard-bounce')]);
    expect(t.broadcasts.requests).toEqual([{ id: 'B1', action: 'pause', reason: 'bounce rate 5.00% >= 5.00% (feedback.broadcastPause.bounceRate) after 600 sent' }]);
  });

  it('does not pause below minSent, a broadcast that is not running, or without thresholds', async () => {
    const few = setup();
    few.broadcasts.docs.set('B1', { status: 'running', counters: { sent: 499, failed: 0, skipped: 0, suppressed: 0 } });
    for (let i = 0; i < 10; i++) await complaint(few, i);
    expect(few.broadcasts.requests).toEqual([]);

    const done = setup();
    done.broadcasts.docs.set('B1', { status: 'done', counters: { sent: 1000, failed: 0, skipped: 0, suppressed: 0 } });
    for (let i = 0; i < 10; i++) await complaint(done, i);
    expect(done.broadcasts.requests).toEqual([]);

    const off = setup({ broadcastPause: { minSent: 1, bounceRate: null, complaintRate: null } });
    off.broadcasts.docs.set('B1', { status: 'running', counters: { sent: 1000, failed: 0, skipped: 0, suppressed: 0 } });
    for (let i = 0; i < 10; i++) await complaint(off, i);
    expect(off.broadcasts.requests).toEqual([]);
  });

  it('concurrent batches over the threshold ask for the pause once', async () => {
    const t = setup();
    t.broadcasts.docs.set('B1', { status: 'running', counters: { sent: 1000, failed: 0, skipped: 0, suppressed: 0 } });
    await complaint(t, 1);
    await complaint(t, 2);
    await Promise.all([complaint(t, 3), complaint(t, 4), complaint(t, 5)]);
    expect(t.broadcasts.requests.map((r) => r.action)).toEqual(['pause']);
  });

  it('a broadcast the operator already paused is not asked again', async () => {
    const t = setup();
    t.broadcasts.docs.set('B1', { status: 'running', counters: { sent: 1000, failed: 0, skipped: 0, suppressed: 0 } });
    await t.broadcasts.requestControl('B1', 'pause', 'operator');
    for (let i = 0; i < 5; i++) await complaint(t, i);
    expect(t.broadcasts.requests).toEqual([{ id: 'B1', action: 'pause', reason: 'operator' }]);
  });
});
