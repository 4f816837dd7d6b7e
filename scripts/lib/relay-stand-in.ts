/**
 * A stand-in for a relay (a smarthost or a mailbox provider) that accepts every message and hears
 * about some of them again later, the way real bounces and complaints arrive: after the SMTP
 * session said 250. For a chosen subset of recipients it mails back, to the message's envelope
 * sender (mailwheel's VERP return path), either a delivery status notification (RFC 3464, a hard
 * bounce: 5.1.1) or an abuse report (ARF, RFC 5965), through SMTP to the daemon's inbound
 * listener. It records what it accepted and every report it mailed back with the listener's answer.
 *
 * Loopback only: it listens on 127.0.0.1 (smtp-server, `disableReverseLookup: true`, any or no
 * AUTH) and mails back only to the host and port it is given. It runs inside a test process while
 * the daemon is a child process. Uses `smtp-server` and `nodemailer` like the other scripts.
 */
import { createHash } from 'node:crypto';
import type { Socket } from 'node:net';
import nodemailer, { type Transporter } from 'nodemailer';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import { buildArf, buildDsn, headerBlockOf, messageIdOf } from './report-mail.js';

export type FeedbackKind = 'bounce' | 'complaint';

/** Decides, per envelope recipient, whether it bounces, complains or neither (undefined). */
export type FeedbackPicker = (rcpt: string) => FeedbackKind | undefined;

/**
 * Picks by a hash of the (lower-cased) address, so the same address always gets the same fate,
 * whoever sends to it and in whatever order: a share `bounceShare` bounces, a disjoint share
 * `complaintShare` complains. The shares are expectations, not exact counts (a hash is not a quota).
 */
export function pickByHash(opts: { bounceShare?: number; complaintShare?: number; salt?: string } = {}): FeedbackPicker {
  const bounce = opts.bounceShare ?? 0.03;
  const complaint = opts.complaintShare ?? 0.005;
  const salt = opts.salt ?? 'relay-stand-in';
  return (rcpt) => {
    const u = createHash('sha256').update(`${salt}:${rcpt.toLowerCase()}`).digest().readUInt32BE(0) / 2 ** 32;
    if (u < bounce) return 'bounce';
    if (u < bounce + complaint) return 'complaint';
    return undefined;
  };
}

/** A message the stand-in accepted (answered 250). */
export interface RelayedMessage {
  /** Envelope sender (MAIL FROM); '' for the null sender. */
  from: string;
  /** Envelope recipients (RCPT TO). */
  to: string[];
  /** The Message-ID header, with its angle brackets. */
  messageId: string | undefined;
  /** The header block as received (CRLF), what a report returns of the original. */
  headers: string;
  at: Date;
}

/** A report the stand-in mailed back (or tried to), one per picked recipient of an accepted message. */
export interface MailedBackReport {
  kind: FeedbackKind;
  /** The recipient it is about. */
  rcpt: string;
  /** Where it went: the original's envelope sender (the VERP address). */
  returnPath: string;
  /** The original's Message-ID. */
  messageId: string | undefined;
  /**
   * pending: queued or in flight; accepted: the listener answered 250; refused: it answered
   * an error or could not be reached (see `response`); skipped: the original had no return path.
   */
  state: 'pending' | 'accepted' | 'refused' | 'skipped';
  /** The listener's reply, or the error. */
  response?: string;
}

export interface RelayStandInOptions {
  /** The daemon's inbound listener (`feedback.inbound.host` / `.port`). */
  inbound: { host: string; port: number };
  /** Who bounces or complains; default pickByHash() (3 % bounce, 0.5 % complain). */
  pick?: FeedbackPicker;
  /** At most this many reports in flight (connections to the listener) at once; default 4. */
  concurrency?: number;
  /** Name of the relay in the reports (Reporting-MTA, From, Message-ID domain). */
  reportingMta?: string;
  /** Port to listen on; default 0 (the kernel picks one, see `port`). */
  port?: number;
}

export interface RelayCounts {
  accepted: number;
  bounces: number;
  complaints: number;
  /** Reports the listener answered 250 / refused or never answered / still in flight. */
  answered: number;
  refused: number;
  pending: number;
}

export class RelayStandIn {
  readonly messages: RelayedMessage[] = [];
  readonly reports: MailedBackReport[] = [];
  /** Server-side errors (a client resetting its connection); for diagnostics. */
  readonly errors: Error[] = [];
  /** While false, messages are accepted but nothing is mailed back. */
  reporting = true;

  readonly #server: SMTPServer;
  readonly #sockets = new Set<Socket>();
  readonly #transport: Transporter;
  readonly #pick: FeedbackPicker;
  readonly #mta: string;
  #port = 0;
  #inFlight = 0;
  #idleWaiters: Array<() => void> = [];

  private constructor(opts: RelayStandInOptions) {
    this.#pick = opts.pick ?? pickByHash();
    this.#mta = opts.reportingMta ?? 'relay.example.test';
    const concurrency = opts.concurrency ?? 4;
    // A pool: at most `concurrency` connections to the listener; further reports queue in it.
    this.#transport = nodemailer.createTransport({
      pool: true,
      maxConnections: concurrency,
      host: opts.inbound.host,
      port: opts.inbound.port,
      secure: false,
      ignoreTLS: true,
      name: this.#mta,
      connectionTimeout: 30_000,
      socketTimeout: 60_000,
    });
    this.#server = new SMTPServer({
      disableReverseLookup: true,
      authOptional: true,
      allowInsecureAuth: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      // Several daemon pools at once; smtp-server's default is 100.
      maxClients: 1000,
      onAuth: (auth, _session, callback) => callback(null, { user: auth.username ?? 'anonymous' }),
      onData: (stream, session, callback) => this.#onData(stream, session, callback),
    });
    this.#server.on('error', (err) => this.errors.push(err));
    this.#server.server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
  }

  static async start(opts: RelayStandInOptions): Promise<RelayStandIn> {
    const relay = new RelayStandIn(opts);
    await new Promise<void>((resolve, reject) => {
      relay.#server.server.once('error', reject);
      relay.#server.listen(opts.port ?? 0, '127.0.0.1', () => {
        relay.#server.server.off('error', reject);
        resolve();
      });
    });
    const address = relay.#server.server.address();
    if (address === null || typeof address === 'string') throw new Error('relay stand-in: no TCP address');
    relay.#port = address.port;
    return relay;
  }

  get port(): number {
    return this.#port;
  }

  /** For SMTP_URL / smtp.url. */
  get url(): string {
    return `smtp://127.0.0.1:${this.#port}`;
  }

  counts(): RelayCounts {
    let bounces = 0;
    let complaints = 0;
    let answered = 0;
    let refused = 0;
    let pending = 0;
    for (const r of this.reports) {
      if (r.state === 'skipped') continue;
      if (r.kind === 'bounce') bounces++;
      else complaints++;
      if (r.state === 'accepted') answered++;
      else if (r.state === 'refused') refused++;
      else pending++;
    }
    return { accepted: this.messages.length, bounces, complaints, answered, refused, pending };
  }

  /** Resolves once no report is queued or in flight (at once if none is). */
  settled(): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Closes the listener (cutting the senders' pooled connections) and the pool to the inbound listener. */
  async stop(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.server.close(() => resolve()));
    for (const socket of this.#sockets) socket.destroy();
    await closed;
    this.#transport.close();
    for (const resolve of this.#idleWaiters.splice(0)) resolve();
  }

  #onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback: (err?: Error | null) => void): void {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.once('end', () => {
      const headers = headerBlockOf(Buffer.concat(chunks).toString('utf8'));
      const message: RelayedMessage = {
        from: session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address,
        to: session.envelope.rcptTo.map((a) => a.address),
        messageId: messageIdOf(headers),
        headers,
        at: new Date(),
      };
      this.messages.push(message);
      // 250 first: the feedback of a relay comes after it accepted the message, never within.
      callback();
      if (this.reporting) setImmediate(() => this.#mailBack(message));
    });
  }

  #mailBack(message: RelayedMessage): void {
    for (const rcpt of message.to) {
      const kind = this.#pick(rcpt);
      if (kind === undefined) continue;
      const report: MailedBackReport = { kind, rcpt, returnPath: message.from, messageId: message.messageId, state: 'pending' };
      this.reports.push(report);
      if (message.from === '' || message.messageId === undefined) {
        report.state = 'skipped';
        report.response = message.from === '' ? 'no return path (null sender)' : 'no Message-ID';
        continue;
      }
      const raw =
        kind === 'bounce'
          ? buildDsn({ reportingMta: this.#mta, to: message.from, arrivalDate: message.at, recipients: [{ address: rcpt, remoteMta: `mx.${rcpt.split('@')[1] ?? 'example.test'}` }], originalHeaders: message.headers })
          : buildArf({ reportingDomain: this.#mta, to: message.from, originalMailFrom: message.from, originalRcptTo: rcpt, arrivalDate: message.at, sourceIp: '127.0.0.1', originalHeaders: message.headers });
      // A DSN comes from the null sender (RFC 3464 §2, RFC 5321 §4.5.5: no bounce of a bounce);
      // an ARF report from the provider's feedback-loop address.
      const envelope = { from: kind === 'bounce' ? (false as const) : `fbl@${this.#mta}`, to: [message.from] };
      this.#inFlight++;
      this.#transport.sendMail({ envelope, raw }).then(
        (info: { response?: string }) => {
          report.state = 'accepted';
          report.response = info.response ?? '';
        },
        (err: unknown) => {
          report.state = 'refused';
          report.response = err instanceof Error ? err.message : String(err);
        },
      ).finally(() => {
        this.#inFlight--;
        if (this.#inFlight === 0) for (const resolve of this.#idleWaiters.splice(0)) resolve();
      });
    }
  }
}
