/**
 * Suite `mime`: the CPU cost of building one message, single core, no network.
 *
 * (a) the old path: render the template to strings, then nodemailer's MailComposer builds the
 *     MIME tree and streams it out (what every per-message `sendMail` does);
 * (a') the same through nodemailer's stream transport (`sendMail` without a network: the
 *     mailer's own per-message work on top of MailComposer);
 * (b) MimeBuilder: template encoded once, per message only the values are encoded and joined;
 * (c) MimeBuilder + DKIM signing (src/adapters/smtp/dkim-signer.ts, keys parsed once) with an
 *     RSA-2048 key and with an Ed25519 key, measured in the same run as the unsigned builder.
 *
 * Messages of ~2 KB and ~10 KB; every message goes to a distinct user (distinct key, address,
 * Message-ID). Each cell runs a bounded count within a bounded time after a warm-up.
 */
import nodemailer from 'nodemailer';
import MailComposer from 'nodemailer/lib/mail-composer';
import { DkimSigner } from '../src/adapters/smtp/dkim-signer.js';
import { MimeBuilder } from '../src/adapters/smtp/mime.js';
import { benchDkimKeys } from './lib/dkim-keys.js';
import { deliveries, FROM, mailOptions, templateOfSize } from './lib/fixtures.js';
import { cpuMsSince, round, type Row, type Suite } from './lib/suite.js';

const SIZES = [
  { label: '2KB', bytes: 2_000 },
  { label: '10KB', bytes: 10_000 },
];
const COUNT = 20_000;
const MAX_SECONDS = 10;
const WARMUP = 1_000;
/** Builds in flight for the async paths: a pool feeds nodemailer many messages at once. */
const IN_FLIGHT = 32;
const USERS = deliveries(5_000);

interface Measured {
  messages: number;
  seconds: number;
  cpuMs: number;
  bytes: number;
}

/** Runs `one(i)` up to COUNT times (or MAX_SECONDS), `inFlight` at a time. */
async function measure(one: (i: number) => number | Promise<number>, inFlight: number): Promise<Measured> {
  for (let i = 0; i < WARMUP; i++) await one(i);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const deadline = t0 + MAX_SECONDS * 1000;
  let started = 0;
  let done = 0;
  let bytes = 0;
  const worker = async () => {
    while (started < COUNT && performance.now() < deadline) {
      const i = started++;
      const b = await one(i);
      bytes += b;
      done++;
    }
  };
  if (inFlight === 1) {
    // Synchronous builders: a plain loop, no promise per message.
    while (started < COUNT && performance.now() < deadline) {
      const r = one(started++);
      const b = typeof r === 'number' ? r : await r;
      bytes += b;
      done++;
    }
  } else {
    await Promise.all(Array.from({ length: inFlight }, worker));
  }
  const seconds = (performance.now() - t0) / 1000;
  return { messages: done, seconds, cpuMs: cpuMsSince(cpu0), bytes: bytes / Math.max(1, done) };
}

function msgsPerS(m: Measured): number {
  return Math.round(m.messages / m.seconds);
}

function row(method: string, size: string, inFlight: number, m: Measured): Row {
  return {
    method,
    size,
    inFlight,
    avgBytes: Math.round(m.bytes),
    messages: m.messages,
    seconds: round(m.seconds, 2),
    msgsPerS: msgsPerS(m),
    usPerMsg: round((m.seconds * 1e6) / m.messages, 1),
    cpuUsPerMsg: round((m.cpuMs * 1000) / m.messages, 1),
  };
}

const suite: Suite = {
  description: 'MIME build cost per message, single core: nodemailer MailComposer (old path) vs MimeBuilder (render once, substitute, raw MIME), unsigned and DKIM-signed (RSA-2048, Ed25519)',
  async run({ log }) {
    const rows: Row[] = [];
    const comparisons: Row[] = [];
    const stream = nodemailer.createTransport({ streamTransport: true, buffer: true });
    const keys = benchDkimKeys();
    const signers = [
      { label: 'RSA-2048', signer: new DkimSigner([keys.rsa]) },
      { label: 'Ed25519', signer: new DkimSigner([keys.ed25519]) },
    ];
    for (const size of SIZES) {
      const tpl = templateOfSize(size.bytes);
      const user = (i: number) => USERS[i % USERS.length] ?? USERS[0];

      log(`${size.label}: MailComposer per message...`);
      const composer = async (i: number) => {
        const d = user(i);
        if (d === undefined) return 0;
        const buf = await new MailComposer(mailOptions(d, tpl)).compile().build();
        return buf.length;
      };
      const a1 = await measure(composer, 1);
      const a32 = await measure(composer, IN_FLIGHT);

      log(`${size.label}: nodemailer stream transport sendMail...`);
      const viaStream = async (i: number) => {
        const d = user(i);
        if (d === undefined) return 0;
        const info = await stream.sendMail(mailOptions(d, tpl));
        return Buffer.isBuffer(info.message) ? info.message.length : 0;
      };
      const s32 = await measure(viaStream, IN_FLIGHT);

      log(`${size.label}: MimeBuilder...`);
      const builder = new MimeBuilder(tpl, { from: FROM });
      const mb = await measure((i) => {
        const d = user(i);
        return d === undefined ? 0 : builder.build(d).raw.length;
      }, 1);
      const signed: Array<{ label: string; m: Measured }> = [];
      for (const { label, signer } of signers) {
        log(`${size.label}: MimeBuilder + DKIM ${label}...`);
        const m = await measure(async (i) => {
          const d = user(i);
          return d === undefined ? 0 : (await signer.sign(builder.build(d).raw)).length;
        }, 1);
        signed.push({ label, m });
      }
      rows.push(
        row('MailComposer (old path)', size.label, 1, a1),
        row('MailComposer (old path)', size.label, IN_FLIGHT, a32),
        row('stream transport sendMail (old path)', size.label, IN_FLIGHT, s32),
        row('MimeBuilder', size.label, 1, mb),
        ...signed.map((x) => row(`MimeBuilder + DKIM ${x.label}`, size.label, 1, x.m)),
      );
      const best = Math.max(msgsPerS(a1), msgsPerS(a32));
      comparisons.push({
        size: size.label,
        'MimeBuilder msgs/s': msgsPerS(mb),
        'best MailComposer msgs/s': best,
        'MimeBuilder / MailComposer': round(msgsPerS(mb) / best, 1),
        'MimeBuilder / stream sendMail': round(msgsPerS(mb) / msgsPerS(s32), 1),
        ...Object.fromEntries(signed.flatMap((x) => [[`+DKIM ${x.label} msgs/s`, msgsPerS(x.m)], [`+DKIM ${x.label} µs/msg`, round((x.m.seconds * 1e6) / x.m.messages, 1)]])),
      });
    }
    stream.close();
    return {
      config: { sizes: SIZES, countPerCell: COUNT, maxSecondsPerCell: MAX_SECONDS, warmup: WARMUP, inFlightForAsync: IN_FLIGHT, users: USERS.length },
      rows,
      comparisons,
      notes: [
        'one Node process, one event loop: "single core" figures; cpuUsPerMsg is user+system CPU of this process per message',
        'the old path includes rendering the template to strings (renderDelivery), as the old per-message sendMail did',
        'MimeBuilder output and MailComposer output decode to the same content (test/unit/mime.test.ts)',
        'DKIM cells: one signature per message, relaxed/relaxed, the default signed headers; RSA via nodemailer\'s signer with the pre-parsed KeyObject, Ed25519 via mailauth (dkim-signer.ts); signatures verified by dkimpy in test/integration/dkim-signing.test.ts',
      ],
    };
  },
};

export default suite;
