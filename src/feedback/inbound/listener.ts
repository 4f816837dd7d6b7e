/**
 * The inbound SMTP listener (`feedback.inbound`): a relay mails delivery status notifications
 * (RFC 3464) to the VERP return path and abuse reports (ARF, RFC 5965) to an address the
 * operator registered with a feedback loop; both arrive here. Loopback by default; plain SMTP
 * (no STARTTLS, no AUTH: a relay on the same host or network hands reports over, and nothing in
 * a report is secret); `smtp-server`, with reverse DNS off.
 *
 * Matching a report to a delivery (the sink looks the digest up in the message index):
 * - VERP: the DSN's RCPT TO, else the report's Original-Mail-From / the original's Return-Path,
 *   verified with readVerp. A verified token sets `report.messageId` to `<digest@verp.domain>`:
 *   the sink reads the digest from the Message-ID's local part, as for any Message-ID
 *   (core/message.ts `messageIdFor`), so a VERP match needs no extra field.
 * - else the original message's Message-ID, as the report carries it.
 * - neither: counted `unknown-message`, never applied.
 *
 * Answers (what a relay does next depends on them):
 * - 250: applied, or ignored with a counted reason (malformed MIME, not feedback, unknown
 *   message, ignored by the sink). Accepting and dropping an unreadable report is deliberate:
 *   refusing it would make the relay bounce a bounce, and a retry would not make it readable.
 * - 550 5.7.1 at RCPT TO (or after DATA, for a token the report quotes): a VERP address of ours
 *   whose token is forged or tampered (`bad-signature`) or cut short (`malformed`); nobody is
 *   suppressed on a token that does not verify.
 * - 552 5.3.4: larger than `feedback.inbound.maxMessageBytes` (`too-large`, body not parsed).
 * - 451 4.3.0: the sink failed (the database is down): the relay keeps the report and retries.
 *
 * Refusals are counted per source: `arf` when the message is a feedback report, else `dsn`
 * (an oversized message or a refused RCPT is counted `dsn`: it was not read).
 */
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { SMTPServer, type SMTPServerAddress, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import type { Config } from '../../config/schema.js';
import { readVerp, type VerpSettings } from '../../core/verp.js';
import { ErrorCodes, MailwheelError } from '../../errors.js';
import type { Clock } from '../../ports/clock.js';
import type { FeedbackRefusal, FeedbackRefusals, FeedbackReport, FeedbackSink, FeedbackSource } from '../../ports/feedback.js';
import { readArf } from './arf.js';
import { readDsn } from './dsn.js';
import type { InboundMalformed, InboundReading } from './reading.js';
import { addressIn, readReportMessage } from './report-mime.js';

export interface InboundListenerOptions {
  feedback: Config['feedback'];
  sink: FeedbackSink;
  refusals: FeedbackRefusals;
  clock: Clock;
  log: Pick<Logger, 'info' | 'warn' | 'error' | 'debug'>;
}

export interface InboundStats {
  /** Messages whose DATA was answered (any answer). */
  messages: number;
  /** Reports handed to the sink, and how many of them it applied. */
  reports: number;
  applied: number;
  /** Refused or ignored inputs, by reason (the same counts go to FeedbackRefusals). */
  refused: Partial<Record<FeedbackRefusal, number>>;
  /** Answered 451 because the sink failed. */
  tempFailed: number;
}

/** Concurrent SMTP clients; a relay hands over reports on a few connections. */
const MAX_CLIENTS = 16;
/**
 * Reports one message may carry. mailwheel sends every message to one recipient, so a genuine
 * DSN or ARF report about it names one; a message naming more than this is not a report about
 * mailwheel's mail (and would be a cheap way to hand the sink thousands of addresses).
 */
const MAX_REPORTS_PER_MESSAGE = 50;
/** How long `close()` lets open sessions finish before cutting them. */
const CLOSE_TIMEOUT_MS = 5_000;

type SmtpError = Error & { responseCode: number };
function smtpError(code: number, message: string): SmtpError {
  return Object.assign(new Error(message), { responseCode: code });
}

export class InboundListener {
  readonly #opts: InboundListenerOptions;
  readonly #verp: VerpSettings | undefined;
  readonly #server: SMTPServer;
  readonly #stats: InboundStats = { messages: 0, reports: 0, applied: 0, refused: {}, tempFailed: 0 };
  #listening = false;

  constructor(opts: InboundListenerOptions) {
    this.#opts = opts;
    const { domain, localPart, secret } = opts.feedback.verp;
    this.#verp = domain !== null && secret !== null ? { domain, localPart, secret } : undefined;
    this.#server = new SMTPServer({
      banner: 'mailwheel feedback listener (DSN, ARF)',
      disableReverseLookup: true,
      authOptional: true,
      disabledCommands: ['AUTH', 'STARTTLS'],
      size: opts.feedback.inbound.maxMessageBytes,
      maxClients: MAX_CLIENTS,
      closeTimeout: CLOSE_TIMEOUT_MS,
      logger: false,
      onRcptTo: (address, _session, callback) => callback(this.#checkRecipient(address.address) ?? undefined),
      onData: (stream, session, callback) => {
        this.#receive(stream, session).then(
          () => callback(null),
          (err: unknown) => callback(err instanceof Error ? err : new Error(String(err))),
        );
      },
    });
    this.#server.on('error', (err) => opts.log.warn({ err }, 'inbound listener: connection error'));
  }

  /** Starts listening on `feedback.inbound.host`:`port` (0: a free port); resolves with the port. */
  listen(): Promise<number> {
    const { host, port } = this.#opts.feedback.inbound;
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(new MailwheelError(ErrorCodes.STARTUP_FAILED, `inbound listener cannot listen on ${host}:${port}: ${err.message}`));
      this.#server.server.once('error', onError);
      this.#server.listen(port, host, () => {
        this.#server.server.off('error', onError);
        this.#listening = true;
        const addr = this.#server.server.address();
        const bound = typeof addr === 'object' && addr !== null ? addr.port : port;
        this.#opts.log.info({ host, port: bound }, 'inbound listener: accepting DSN and ARF reports');
        resolve(bound);
      });
    });
  }

  /** Stops accepting; open sessions get CLOSE_TIMEOUT_MS to finish. */
  close(): Promise<void> {
    if (!this.#listening) return Promise.resolve();
    this.#listening = false;
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  get stats(): Readonly<InboundStats> {
    return { ...this.#stats, refused: { ...this.#stats.refused } };
  }

  #refuse(source: FeedbackSource, reason: FeedbackRefusal, n = 1): void {
    if (n <= 0) return;
    this.#stats.refused[reason] = (this.#stats.refused[reason] ?? 0) + n;
    for (let i = 0; i < n; i++) this.#opts.refusals.refuse(source, reason);
  }

  /** A VERP address of ours with a bad token is refused at once; any other recipient is accepted. */
  #checkRecipient(address: string): SmtpError | null {
    if (this.#verp === undefined) return null;
    const v = readVerp(address, this.#verp);
    if (!('refusal' in v) || v.refusal === 'foreign') return null;
    this.#refuse('dsn', v.refusal === 'bad-signature' ? 'bad-signature' : 'malformed');
    return smtpError(550, '5.7.1 no such return path');
  }

  async #receive(stream: SMTPServerDataStream, session: SMTPServerSession): Promise<void> {
    const raw = await collect(stream, this.#opts.feedback.inbound.maxMessageBytes);
    this.#stats.messages++;
    if (raw === null || stream.sizeExceeded) {
      this.#refuse('dsn', 'too-large');
      throw smtpError(552, `5.3.4 message exceeds the limit of ${this.#opts.feedback.inbound.maxMessageBytes} bytes`);
    }
    const now = new Date(this.#opts.clock.now());
    const reading = await readInbound(raw, now);
    if ('malformed' in reading) {
      this.#opts.log.info({ source: reading.source, why: reading.malformed }, 'inbound listener: unreadable report accepted and dropped');
      this.#refuse(reading.source, 'malformed');
      return;
    }
    if (reading.reports.length > MAX_REPORTS_PER_MESSAGE) {
      this.#opts.log.info({ source: reading.source, reports: reading.reports.length }, 'inbound listener: report naming too many recipients dropped');
      this.#refuse(reading.source, 'malformed');
      return;
    }
    this.#refuse(reading.source, 'not-feedback', reading.notFeedback);
    if (reading.reports.length === 0) return;

    const matched = this.#match(reading, session.envelope.rcptTo);
    if ('refusal' in matched) {
      this.#refuse(reading.source, matched.refusal);
      if (matched.refusal !== 'unknown-message') throw smtpError(550, '5.7.1 the return path token does not verify');
      return;
    }
    let result;
    try {
      result = await this.#opts.sink.apply(matched.reports);
    } catch (err) {
      this.#stats.tempFailed++;
      this.#opts.log.warn({ err, source: reading.source }, 'inbound listener: feedback not applied, asking the relay to retry');
      throw smtpError(451, '4.3.0 feedback could not be recorded, try again later');
    }
    this.#stats.reports += matched.reports.length;
    this.#stats.applied += result.applied;
    for (const i of result.ignored) this.#refuse(i.report.source, i.reason);
  }

  /**
   * Ties the reports to a delivery: a VERP token (envelope recipient first: the relay mailed the
   * DSN there; then the return path the report quotes), else the original Message-ID.
   */
  #match(reading: InboundReading, rcptTo: readonly SMTPServerAddress[]): { reports: FeedbackReport[] } | { refusal: FeedbackRefusal } {
    const verp = this.#verp;
    if (verp !== undefined) {
      const candidates = [...rcptTo.map((r) => r.address), addressIn(reading.returnPath)].filter((a): a is string => a !== undefined);
      for (const address of candidates) {
        const v = readVerp(address, verp);
        if ('digest' in v) return { reports: reading.reports.map((r) => ({ ...r, messageId: `<${v.digest}@${verp.domain.toLowerCase()}>` })) };
        if (v.refusal !== 'foreign') return { refusal: v.refusal === 'bad-signature' ? 'bad-signature' : 'malformed' };
      }
    }
    const known = reading.reports.filter((r) => r.messageId !== undefined);
    const unknown = reading.reports.length - known.length;
    if (known.length === 0) return { refusal: 'unknown-message' };
    this.#refuse(reading.source, 'unknown-message', unknown);
    return { reports: known };
  }
}

/** Reads a raw message as a DSN or an ARF report (by its report-type). Never throws. */
export async function readInbound(raw: Buffer, now: Date): Promise<InboundReading | InboundMalformed> {
  let msg;
  try {
    msg = await readReportMessage(raw);
  } catch (err) {
    return { source: 'dsn', malformed: `MIME does not parse: ${(err as Error).message}` };
  }
  return msg.reportType === 'feedback-report' ? readArf(msg, now) : readDsn(msg, now);
}

/** The message body, or null past `limit` bytes (the rest is drained, not kept). */
async function collect(stream: Readable, limit: number): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= limit) chunks.push(chunk);
  }
  return size > limit ? null : Buffer.concat(chunks);
}
