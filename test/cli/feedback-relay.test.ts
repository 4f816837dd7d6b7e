/**
 * Bounces and complaints that come back after the relay said 250 (issue 14, first acceptance
 * line), as processes: the daemon (`mailwheel start`, a child process) sends a 2,000-user
 * broadcast through a relay stand-in (scripts/lib/relay-stand-in.ts, in this process) that
 * accepts everything and then mails back, to each message's VERP return path at the daemon's
 * inbound listener, a DSN (RFC 3464, 5.1.1) for 3 % of the recipients and an ARF abuse report
 * (RFC 5965) for 0.5 %. Then:
 * - every bounced and every complaining address is suppressed, and no other;
 * - the broadcast paused itself at `feedback.broadcastPause.complaintRate`, saying why;
 * - a second broadcast to the same users skips them all, counted as suppressed.
 * First, the stand-in on its own against a plain test SMTP server as the "listener".
 */
import { createServer } from 'node:net';
import nodemailer from 'nodemailer';
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RelayStandIn, type FeedbackPicker, type RelayedMessage } from '../../scripts/lib/relay-stand-in.js';
import { broadcastUsers, controlOf, getBroadcast, HANG_GUARD_MS, insertUsers, waitWhileProgressing, writeBodies } from '../helpers/broadcasts.js';
import { runCli, spawnCli, writeTestConfig, type CliProcess } from '../helpers/cli.js';
import { testDb, type TestDb } from '../helpers/db.js';
import { TestSmtpServer } from '../helpers/smtp-server.js';

const USERS = 2_000;
const MIN_SENT = 200;
const COMPLAINT_RATE = 0.004;
const VERP_DOMAIN = 'example.test';

/**
 * Exactly 3 % bounce and 0.5 % complain, disjoint, spread evenly over the send order (users go
 * out in `_id` order): user i complains when i % 200 == 7 (f7, f207, f407, ...) and bounces when
 * i % 100 is 3, 36 or 69. A hash (the stand-in's default) gives those shares only on average;
 * here the complaint rate of the first n users is >= 1/200 = 0.005 for every n >= 200, above the
 * 0.004 threshold whatever point the daemon checks it at, so the pause cannot depend on luck.
 */
const pick: FeedbackPicker = (rcpt) => {
  const i = Number(/^f(\d+)@/.exec(rcpt)?.[1] ?? NaN);
  if (Number.isNaN(i)) return undefined;
  if (i % 200 === 7) return 'complaint';
  return [3, 36, 69].includes(i % 100) ? 'bounce' : undefined;
};

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** The X-Mailwheel-Key of a relayed message (`b:<broadcast>:<user>` for a broadcast). */
function keyOf(m: RelayedMessage): string {
  return /^x-mailwheel-key:[ \t]*(\S+)/im.exec(m.headers)?.[1] ?? '';
}

/** Recipients of broadcast `id`'s messages, with how often each got one. */
function recipientsOf(relay: RelayStandIn, id: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const m of relay.messages) {
    if (!keyOf(m).startsWith(`b:${id}:`)) continue;
    for (const rcpt of m.to) counts.set(rcpt, (counts.get(rcpt) ?? 0) + 1);
  }
  return counts;
}

const sorted = (xs: Iterable<string>): string[] => [...xs].sort();

describe('the relay stand-in on its own', () => {
  let inbound: TestSmtpServer;
  let relay: RelayStandIn;

  beforeAll(async () => {
    inbound = await TestSmtpServer.start();
    relay = await RelayStandIn.start({ inbound: { host: '127.0.0.1', port: inbound.port }, pick, concurrency: 2 });
  });

  afterAll(async () => {
    await relay?.stop();
    await inbound?.close();
  });

  async function sendThrough(n: number, from: (i: number) => string | false): Promise<void> {
    const transport = nodemailer.createTransport({ pool: true, maxConnections: 4, host: '127.0.0.1', port: relay.port, secure: false, ignoreTLS: true });
    try {
      await Promise.all(
        Array.from({ length: n }, (_, i) => {
          const digest = i.toString(16).padStart(32, '0');
          const raw = [`From: noreply@example.com`, `To: f${i}@example.test`, `Subject: hello ${i}`, `Message-ID: <${digest}@example.com>`, `X-Mailwheel-Key: b:x:f${i}`, '', 'body', ''].join('\r\n');
          const sender = from(i);
          return transport.sendMail({ envelope: { from: sender, to: [`f${i}@example.test`] }, raw });
        }),
      );
    } finally {
      transport.close();
    }
  }

  it('accepts everything, then mails a DSN or an ARF report for each picked recipient to its return path', async () => {
    await sendThrough(200, (i) => `bounces+${i.toString(16).padStart(32, '0')}.sig@${VERP_DOMAIN}`);
    await vi.waitFor(() => expect(relay.reports.length).toBeGreaterThanOrEqual(7), { timeout: 30_000 });
    await relay.settled();
    // f3 f36 f69 f103 f136 f169 bounce; f7 complains.
    expect(relay.counts()).toEqual({ accepted: 200, bounces: 6, complaints: 1, answered: 7, refused: 0, pending: 0 });
    expect(inbound.messages).toHaveLength(7);
    for (const report of relay.reports) {
      const got = inbound.messages.find((m) => m.to.includes(report.returnPath));
      expect(got, `report on ${report.rcpt}`).toBeDefined();
      if (got === undefined) continue;
      const mail = await simpleParser(got.raw, { keepDeliveryStatus: true });
      const original = mail.attachments.find((a) => a.contentType === 'text/rfc822-headers')?.content.toString('utf8') ?? '';
      expect(original).toContain(`Message-ID: ${report.messageId ?? '?'}`);
      if (report.kind === 'bounce') {
        expect(got.from, 'a DSN comes from the null sender').toBe('');
        expect((mail.headers.get('content-type') as { params: Record<string, string> }).params['report-type']).toBe('delivery-status');
        const status = mail.attachments.find((a) => a.contentType === 'message/delivery-status')?.content.toString('utf8') ?? '';
        expect(status).toContain(`Final-Recipient: rfc822; ${report.rcpt}`);
        expect(status).toContain('Status: 5.1.1');
      } else {
        expect(got.from).toBe('fbl@relay.example.test');
        const arf = mail.attachments.find((a) => a.contentType === 'message/feedback-report')?.content.toString('utf8') ?? '';
        expect(arf).toContain(`Original-Rcpt-To: <${report.rcpt}>`);
        expect(arf).toContain(`Original-Mail-From: <${report.returnPath}>`);
      }
    }
    expect(sorted(relay.reports.map((r) => r.rcpt))).toEqual(sorted(['f3', 'f36', 'f69', 'f103', 'f136', 'f169', 'f7'].map((u) => `${u}@example.test`)));
  });

  it('records a refusal by the listener, skips a message without a return path, and is silent while reporting is off', async () => {
    relay.messages.length = 0;
    relay.reports.length = 0;
    inbound.setFault({ kind: 'reply', code: 550, message: 'no such delivery' });
    await sendThrough(4, (i) => (i === 3 ? false : `bounces+${i.toString(16).padStart(32, '0')}.sig@${VERP_DOMAIN}`));
    await vi.waitFor(() => expect(relay.reports).toHaveLength(1), { timeout: 30_000 });
    await relay.settled();
    expect(relay.reports[0]).toMatchObject({ rcpt: 'f3@example.test', state: 'skipped' });
    expect(relay.counts()).toMatchObject({ accepted: 4, bounces: 0, answered: 0, refused: 0, pending: 0 });
    await sendThrough(8, (i) => `bounces+${i.toString(16).padStart(32, '0')}.sig@${VERP_DOMAIN}`);
    // f3 bounces, f7 complains: both refused by the listener.
    await vi.waitFor(() => expect(relay.reports).toHaveLength(3), { timeout: 30_000 });
    await relay.settled();
    expect(relay.counts()).toMatchObject({ bounces: 1, complaints: 1, answered: 0, refused: 2, pending: 0 });
    expect(relay.reports.find((r) => r.state === 'refused')?.response).toContain('550');
    inbound.setFault({ kind: 'none' });

    relay.reporting = false;
    const before = relay.reports.length;
    await sendThrough(8, (i) => `bounces+${i.toString(16).padStart(32, '0')}.sig@${VERP_DOMAIN}`);
    await vi.waitFor(() => expect(relay.messages).toHaveLength(20), { timeout: 30_000 });
    await relay.settled();
    expect(relay.reports).toHaveLength(before);
    relay.reporting = true;
  });
});

describe(`a ${USERS.toLocaleString('en-US')}-user broadcast through a relay that reports bounces and complaints later`, () => {
  let db: TestDb;
  let relay: RelayStandIn;
  let env: Record<string, string>;
  let textFile: string;
  let daemon: CliProcess | undefined;

  /** No new message, report, log line or counter for this long means stuck. */
  const STALL_MS = 90_000;

  beforeAll(async () => {
    db = await testDb('feedback_relay');
    await insertUsers(db.db, broadcastUsers(USERS, 'f'));
    // The listener's port is chosen here (free a moment ago) so the stand-in knows where to mail
    // back before the daemon starts.
    const inboundPort = await freePort();
    relay = await RelayStandIn.start({ inbound: { host: '127.0.0.1', port: inboundPort }, pick, concurrency: 4 });
    const config = writeTestConfig({
      smtp: { poolSize: 10 },
      // 300/s: ~7 s for 2,000, while reports come back within a second of each message.
      rate: { perSecond: 300, perDay: null },
      broadcasts: { batchSize: 100, pollMs: 300, controlPollMs: 200, maxConcurrent: 1 },
      send: { claimStaleMs: 5_000 },
      http: { enabled: false },
      feedback: {
        verp: { domain: VERP_DOMAIN, localPart: 'bounces', secret: 'relay-test-verp-secret-0123456789' },
        inbound: { enabled: true, host: '127.0.0.1', port: inboundPort },
        // 3 % bounces must not pause it (the complaint rate is what this test is about).
        broadcastPause: { minSent: MIN_SENT, bounceRate: 0.5, complaintRate: COMPLAINT_RATE },
      },
    });
    env = { MONGODB_URI: db.uri, SMTP_URL: relay.url, MAILWHEEL_CONFIG: config, LOG_LEVEL: 'info' };
    ({ textFile } = writeBodies(config));
  });

  afterAll(async () => {
    if (daemon && daemon.child.exitCode === null) daemon.child.kill('SIGKILL');
    await relay?.stop();
    await db?.cleanup();
  });

  async function suppressions(): Promise<Map<string, string>> {
    const docs = await db.db.collection<{ _id: string; reason?: string }>('mailwheel_suppressions').find({ suppressed: true }).toArray();
    return new Map(docs.map((d) => [d._id, d.reason ?? '']));
  }

  it('suppresses every bounced and complaining address and no other, pauses at the complaint threshold, and a second broadcast skips them all', { timeout: HANG_GUARD_MS }, async () => {
    const d = spawnCli(['start'], env);
    daemon = d;
    await waitWhileProgressing('daemon start', () => d.stderr.includes('mailwheel started') || d.child.exitCode !== null, () => d.stderr.length, STALL_MS);
    expect(d.stderr, d.stderr.slice(-2000)).toContain('mailwheel started');

    // Broadcast 1: pauses itself once the complaints cross the threshold.
    const started = Date.now();
    const first = await runCli(['broadcast', 'send', '--subject', 'News for {{name}}', '--text-file', textFile], env);
    expect(first.code, first.stderr).toBe(0);
    const id1 = first.stdout.trim();
    const progress = (): number => relay.messages.length + relay.reports.length + d.stderr.length;
    await waitWhileProgressing('broadcast 1 pauses or ends', async () => ['paused', 'done', 'cancelled'].includes((await getBroadcast(db.db, id1)).status), progress, STALL_MS, 100);
    const paused = await getBroadcast(db.db, id1);
    const pausedAt = Date.now();
    const seen = `counters ${JSON.stringify(paused.counters)}, stand-in ${JSON.stringify(relay.counts())}, suppressed ${(await suppressions()).size}`;
    expect(paused.status, `broadcast 1 should pause itself (${seen})`).toBe('paused');
    const pausedAfter = paused.counters.sent;
    expect(pausedAfter).toBeGreaterThanOrEqual(MIN_SENT);
    // At the threshold, not eventually: the complaint rate is over it from the 200th user on, so
    // the pause comes once `minSent` is confirmed and a report arrives, plus the reaction time
    // (a batch or two); half the audience is a generous bound for a loaded machine.
    expect(pausedAfter, seen).toBeLessThan(USERS / 2);
    const control = await controlOf(db.db, id1);
    expect(control?.action).toBe('pause');
    expect(control?.reason ?? '', 'the pause says why').toMatch(/complaint rate/i);
    const status = await runCli(['broadcast', 'status', id1], env);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/status\s+paused/);
    expect(status.stdout).toMatch(/complaint/i);

    // What broadcast 1 reached (messages in flight at the pause included), and every report the
    // stand-in mailed back about them answered by the listener.
    await waitWhileProgressing('reports answered', () => relay.counts().pending === 0, progress, STALL_MS);
    await relay.settled();
    const sent1 = recipientsOf(relay, id1);
    expect([...sent1].filter(([, n]) => n > 1), 'sent twice').toEqual([]);
    expect(sent1.size).toBe(pausedAfter);
    // Each message went out with the VERP return path naming it: `bounces+<digest>.<sig>@domain`, digest = the Message-ID's local part.
    for (const m of relay.messages) {
      const verp = /^bounces\+([0-9a-f]{32})\.[A-Za-z0-9_-]+@example\.test$/.exec(m.from);
      expect(verp, `return path ${m.from}`).not.toBeNull();
      expect(m.messageId?.startsWith(`<${verp?.[1] ?? '-'}@`), `Message-ID ${m.messageId ?? '-'} for ${m.from}`).toBe(true);
    }
    const counts = relay.counts();
    expect(counts.refused, JSON.stringify(relay.reports.filter((r) => r.state === 'refused').slice(0, 3))).toBe(0);
    const bounced = new Set(relay.reports.filter((r) => r.kind === 'bounce' && r.state === 'accepted').map((r) => r.rcpt));
    const complained = new Set(relay.reports.filter((r) => r.kind === 'complaint' && r.state === 'accepted').map((r) => r.rcpt));
    // The stand-in reported on exactly the picked recipients that broadcast 1 reached.
    expect(sorted(bounced)).toEqual(sorted([...sent1.keys()].filter((r) => pick(r) === 'bounce')));
    expect(sorted(complained)).toEqual(sorted([...sent1.keys()].filter((r) => pick(r) === 'complaint')));
    expect(complained.size).toBeGreaterThan(0);

    // Suppressed: exactly those, with the reason of each (the listener may answer before it writes).
    const expected = new Map<string, string>([...[...bounced].map((a) => [a, 'hard-bounce'] as const), ...[...complained].map((a) => [a, 'complaint'] as const)]);
    await vi.waitFor(async () => expect(sorted((await suppressions()).keys())).toEqual(sorted(expected.keys())), { timeout: 60_000, interval: 250 });
    const suppressed = await suppressions();
    expect(Object.fromEntries([...suppressed].sort())).toEqual(Object.fromEntries([...expected].sort()));
    console.log(
      `broadcast 1: sent ${sent1.size} of ${USERS}, paused after ${pausedAfter} sent (minSent ${MIN_SENT}, complaintRate ${COMPLAINT_RATE}); ` +
        `bounced ${bounced.size}, complained ${complained.size}, suppressed ${suppressed.size}; reason: ${control?.reason ?? '-'}; ` +
        `send to paused ${((pausedAt - started) / 1000).toFixed(1)} s, to all reports applied ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );

    // The operator ends broadcast 1; broadcast 2 to the same users (the stand-in now reports
    // nothing, so nothing new is suppressed while it runs).
    const cancel = await runCli(['broadcast', 'cancel', id1], env);
    expect(cancel.code, cancel.stderr).toBe(0);
    relay.reporting = false;
    const second = await runCli(['broadcast', 'send', '--subject', 'More news for {{name}}', '--text-file', textFile], env);
    expect(second.code, second.stderr).toBe(0);
    const id2 = second.stdout.trim();
    const started2 = Date.now();
    await waitWhileProgressing('broadcast 2 ends', async () => ['paused', 'done', 'cancelled'].includes((await getBroadcast(db.db, id2)).status), progress, STALL_MS, 100);
    const done = await getBroadcast(db.db, id2);
    expect(done.status).toBe('done');
    const sent2 = recipientsOf(relay, id2);
    expect(sorted([...sent2.keys()].filter((r) => suppressed.has(r))), 'a suppressed address got broadcast 2').toEqual([]);
    expect([...sent2].filter(([, n]) => n > 1), 'sent twice').toEqual([]);
    expect(sent2.size).toBe(USERS - suppressed.size);
    expect(done.counters).toEqual({ total: USERS, sent: USERS - suppressed.size, failed: 0, skipped: 0, suppressed: suppressed.size });
    const seconds2 = (Date.now() - started2) / 1000;
    console.log(`broadcast 2: sent ${sent2.size}, suppressed ${done.counters.suppressed} (of ${USERS}) in ${seconds2.toFixed(1)} s (${Math.round(sent2.size / seconds2)} msgs/s)`);

    d.child.kill('SIGTERM');
    const stop = await d.done;
    expect(stop.code, stop.stderr.slice(-2000)).toBe(0);
  });
});
