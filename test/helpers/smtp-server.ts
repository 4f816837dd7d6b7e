/**
 * A real SMTP server for tests (the `smtp-server` package, in-process), with fault modes that can
 * be changed while a test runs: reply with a 4xx/5xx code, stall the DATA reply, drop the
 * connection without replying, or go down entirely (listener closed, connections cut) and come
 * back on the same port.
 *
 * Bookkeeping follows what the SENDER was told, because that is what mailwheel's delivery
 * contract is about:
 *   - `messages`  : answered 250 (the sender considers them delivered);
 *   - `rejected`  : answered with an error code (at RCPT TO or at the end of DATA);
 *   - `dropped`   : body fully received, then the connection was cut with no reply (the
 *                   "handed to SMTP, outcome unknown" window: a retry may legitimately duplicate it);
 *   - `abandoned` : body received while stalling, but the client had gone before the reply.
 *
 * Always `disableReverseLookup: true`: by default smtp-server reverse-resolves every client, which
 * sends DNS queries off this machine. smtp-server also waits 100 ms before its greeting (it
 * detects clients that talk too soon), so one connection per message is slow by design.
 */
import type { Socket } from 'node:net';
import {
  SMTPServer,
  type SMTPServerAddress,
  type SMTPServerAuthentication,
  type SMTPServerAuthenticationResponse,
  type SMTPServerDataStream,
  type SMTPServerOptions,
  type SMTPServerSession,
} from 'smtp-server';

export interface ReceivedMessage {
  /** Envelope sender (MAIL FROM), '' for the null sender. */
  from: string;
  /** Envelope recipients (RCPT TO) that were accepted. */
  to: string[];
  /** The message as received (CRLF line ends, dot-unstuffed), decoded as UTF-8. */
  raw: string;
  /** Header fields, names lower-cased, folded lines joined; the first occurrence wins. */
  headers: Map<string, string>;
  /** Subject header with RFC 2047 encoded-words decoded; '' if absent. */
  subject: string;
  messageId: string | undefined;
  receivedAt: number;
  /** smtp-server's session id: messages sharing it came over one (pooled) connection. */
  connectionId: string;
  /** Username the client authenticated with, if it did. */
  authUser: string | undefined;
  /** True when the message came over TLS (smtps or after STARTTLS). */
  secure: boolean;
}

export interface RejectedMessage {
  stage: 'rcpt' | 'data';
  code: number;
  response: string;
  from: string;
  /** The recipient refused (rcpt stage) or all envelope recipients (data stage). */
  to: string[];
  /** The parsed message for data-stage rejections (its body was received before the reply). */
  message: ReceivedMessage | undefined;
  at: number;
  connectionId: string;
}

/** Which messages a fault applies to. */
export interface FaultTargeting {
  /** Random share of messages (or recipients at the rcpt stage) affected, 0..1; default 1. */
  ratio?: number;
  /** Only messages with a matching recipient (or only matching recipients at the rcpt stage). */
  match?: (rcpt: string) => boolean;
}

export type SmtpFault =
  | { kind: 'none' }
  | ({
      kind: 'reply';
      code: number;
      message?: string;
      /** Where to answer with the code; default 'data' (the reply to the message itself). */
      stage?: 'rcpt' | 'data';
    } & FaultTargeting)
  | ({ kind: 'stall'; ms: number } & FaultTargeting)
  | ({ kind: 'drop' } & FaultTargeting);

export interface TestSmtpServerOptions {
  /** Fixed port; default 0 (the kernel picks one, see `port`). */
  port?: number;
  /** Enables STARTTLS with this certificate; without it STARTTLS is not offered. */
  tls?: { key: string | Buffer; cert: string | Buffer };
  /** Initial fault; default none. */
  fault?: SmtpFault;
  /** Random source for `ratio`, replaceable for deterministic tests; default Math.random. */
  random?: () => number;
}

interface Waiter {
  count: number;
  resolve: (messages: ReceivedMessage[]) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** An SMTP error reply: smtp-server sends `responseCode` and the message text. */
class SmtpReplyError extends Error {
  constructor(
    readonly responseCode: number,
    message: string,
  ) {
    super(message);
  }
}

export class TestSmtpServer {
  readonly messages: ReceivedMessage[] = [];
  readonly rejected: RejectedMessage[] = [];
  readonly dropped: ReceivedMessage[] = [];
  readonly abandoned: ReceivedMessage[] = [];
  /** Server-side errors seen (e.g. a client resetting its connection); for diagnostics. */
  readonly errors: Error[] = [];
  /** Number of TCP connections accepted since start (across down()/up()). */
  connections = 0;

  private fault: SmtpFault;
  private server: SMTPServer | undefined;
  private readonly sockets = new Set<Socket>();
  /** Live sockets by client port: smtp-server sessions carry the port, not the socket. */
  private readonly socketsByRemotePort = new Map<number, Socket>();
  private readonly stallTimers = new Set<NodeJS.Timeout>();
  private waiters: Waiter[] = [];
  private readonly random: () => number;
  private closed = false;

  private constructor(
    private boundPort: number,
    private readonly opts: TestSmtpServerOptions,
  ) {
    this.fault = opts.fault ?? { kind: 'none' };
    this.random = opts.random ?? Math.random;
  }

  static async start(opts: TestSmtpServerOptions = {}): Promise<TestSmtpServer> {
    const server = new TestSmtpServer(opts.port ?? 0, opts);
    await server.up();
    return server;
  }

  get port(): number {
    return this.boundPort;
  }

  get url(): string {
    return `smtp://127.0.0.1:${this.boundPort}`;
  }

  get isUp(): boolean {
    return this.server !== undefined;
  }

  /** Messages received under a 'stall' fault whose reply is still held back. */
  get stalling(): number {
    return this.stallTimers.size;
  }

  setFault(fault: SmtpFault): void {
    this.fault = fault;
  }

  /** Forgets all received/rejected/dropped messages and the connection count (not the fault). */
  reset(): void {
    this.messages.length = 0;
    this.rejected.length = 0;
    this.dropped.length = 0;
    this.abandoned.length = 0;
    this.errors.length = 0;
    this.connections = 0;
  }

  /** Accepted messages per envelope recipient. */
  countByRecipient(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const message of this.messages) {
      for (const rcpt of message.to) counts.set(rcpt, (counts.get(rcpt) ?? 0) + 1);
    }
    return counts;
  }

  /** Resolves with `messages` once at least `count` were accepted; rejects after `timeoutMs`. */
  waitFor(count: number, timeoutMs = 10_000): Promise<ReceivedMessage[]> {
    if (this.messages.length >= count) return Promise.resolve(this.messages);
    return new Promise<ReceivedMessage[]>((resolve, reject) => {
      const waiter: Waiter = {
        count,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          reject(
            new Error(
              `TestSmtpServer.waitFor: ${this.messages.length} of ${count} messages after ${timeoutMs} ms ` +
                `(rejected ${this.rejected.length}, dropped ${this.dropped.length}, connections ${this.connections})`,
            ),
          );
        }, timeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  /**
   * Simulates an unreachable server: stops listening and cuts every open connection without a
   * reply, so clients see ECONNREFUSED / ECONNRESET rather than an SMTP error.
   */
  async down(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.server.close(() => resolve()));
    // Destroy rather than let smtp-server's close() wait up to closeTimeout for pooled
    // connections that a client keeps open.
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  /** Listens again, on the same port as before. */
  async up(): Promise<void> {
    if (this.closed) throw new Error('TestSmtpServer is closed');
    if (this.server !== undefined) return;
    const server = this.createServer();
    // smtp-server emits connection-level errors (a client resetting, a write after the peer
    // went away) on the server; without a listener they would crash the test process.
    server.on('error', (err) => this.errors.push(err));
    // Our own 'connection' listener, after smtp-server's: counts connections and keeps the raw
    // socket so that 'drop' and down() can cut it.
    server.server.on('connection', (socket: Socket) => {
      this.connections++;
      this.sockets.add(socket);
      const remotePort = socket.remotePort;
      if (remotePort !== undefined) this.socketsByRemotePort.set(remotePort, socket);
      socket.once('close', () => {
        this.sockets.delete(socket);
        if (remotePort !== undefined && this.socketsByRemotePort.get(remotePort) === socket) {
          this.socketsByRemotePort.delete(remotePort);
        }
      });
    });
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      server.server.once('error', onError);
      server.listen(this.boundPort, '127.0.0.1', () => {
        server.server.off('error', onError);
        resolve();
      });
    });
    const address = server.server.address();
    if (address === null || typeof address === 'string') throw new Error('SMTP listener has no TCP address');
    this.boundPort = address.port;
    this.server = server;
  }

  /** Ends everything: listener, connections, stalled replies, pending waitFor() calls. */
  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.stallTimers) clearTimeout(timer);
    this.stallTimers.clear();
    await this.down();
    for (const waiter of this.waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(new Error(`TestSmtpServer closed with ${this.messages.length} of ${waiter.count} messages`));
    }
    this.waiters = [];
  }

  // -------------------------------------------------------------------------------------------

  private createServer(): SMTPServer {
    const tls = this.opts.tls;
    const options: SMTPServerOptions = {
      disableReverseLookup: true,
      // Credentials are optional and any are accepted, so SMTP_URL with or without user:pass
      // works; allowInsecureAuth because there is no TLS unless asked for.
      authOptional: true,
      allowInsecureAuth: true,
      // No `size`: unlimited, no SIZE limit advertised.
      logger: false,
      ...(tls === undefined ? { disabledCommands: ['STARTTLS'] } : { key: tls.key, cert: tls.cert }),
      onAuth: (auth, session, callback) => this.onAuth(auth, session, callback),
      onRcptTo: (address, session, callback) => this.onRcptTo(address, session, callback),
      onData: (stream, session, callback) => this.onData(stream, session, callback),
    };
    return new SMTPServer(options);
  }

  private onAuth(
    auth: SMTPServerAuthentication,
    _session: SMTPServerSession,
    callback: (err: Error | null | undefined, response?: SMTPServerAuthenticationResponse) => void,
  ): void {
    callback(null, { user: auth.username ?? 'anonymous' });
  }

  private onRcptTo(address: SMTPServerAddress, session: SMTPServerSession, callback: (err?: Error | null) => void): void {
    const fault = this.fault;
    if (fault.kind === 'reply' && fault.stage === 'rcpt' && this.targets(fault, [address.address])) {
      const response = fault.message ?? defaultReplyText(fault.code);
      this.rejected.push({
        stage: 'rcpt',
        code: fault.code,
        response,
        from: envelopeFrom(session),
        to: [address.address],
        message: undefined,
        at: Date.now(),
        connectionId: session.id,
      });
      callback(new SmtpReplyError(fault.code, response));
      return;
    }
    callback();
  }

  private onData(
    stream: SMTPServerDataStream,
    session: SMTPServerSession,
    callback: (err?: Error | null, message?: string) => void,
  ): void {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.once('end', () => {
      const message = parseMessage(Buffer.concat(chunks).toString('utf8'), session);
      // The fault in force when the message arrived decides its fate, even if a test changes
      // it while a stalled reply is pending.
      const fault = this.fault;
      if (fault.kind === 'none' || (fault.kind === 'reply' && fault.stage === 'rcpt') || !this.targets(fault, message.to)) {
        this.accept(message);
        callback();
        return;
      }
      switch (fault.kind) {
        case 'reply': {
          const response = fault.message ?? defaultReplyText(fault.code);
          this.rejected.push({
            stage: 'data',
            code: fault.code,
            response,
            from: message.from,
            to: message.to,
            message,
            at: Date.now(),
            connectionId: session.id,
          });
          callback(new SmtpReplyError(fault.code, response));
          return;
        }
        case 'stall': {
          const timer = setTimeout(() => {
            this.stallTimers.delete(timer);
            const socket = this.socketsByRemotePort.get(session.remotePort);
            if (socket === undefined || socket.destroyed) {
              this.abandoned.push(message);
              return;
            }
            this.accept(message);
            callback();
          }, fault.ms);
          this.stallTimers.add(timer);
          return;
        }
        case 'drop': {
          this.dropped.push(message);
          // No callback: the client gets no reply at all, only a reset connection.
          this.socketsByRemotePort.get(session.remotePort)?.destroy();
          return;
        }
      }
    });
  }

  private targets(fault: FaultTargeting, recipients: string[]): boolean {
    if (fault.match !== undefined && !recipients.some((rcpt) => fault.match?.(rcpt) === true)) return false;
    const ratio = fault.ratio ?? 1;
    return ratio >= 1 || this.random() < ratio;
  }

  private accept(message: ReceivedMessage): void {
    this.messages.push(message);
    const ready = this.waiters.filter((w) => this.messages.length >= w.count);
    if (ready.length === 0) return;
    this.waiters = this.waiters.filter((w) => this.messages.length < w.count);
    for (const waiter of ready) {
      clearTimeout(waiter.timer);
      waiter.resolve(this.messages);
    }
  }
}

function envelopeFrom(session: SMTPServerSession): string {
  return session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address;
}

function defaultReplyText(code: number): string {
  if (code >= 500) return 'Error: permanent failure (TestSmtpServer fault)';
  return 'Error: temporary failure, try again later (TestSmtpServer fault)';
}

function parseMessage(raw: string, session: SMTPServerSession): ReceivedMessage {
  const headers = parseHeaders(raw);
  const user: unknown = session.user;
  return {
    from: envelopeFrom(session),
    to: session.envelope.rcptTo.map((a) => a.address),
    raw,
    headers,
    subject: decodeEncodedWords(headers.get('subject') ?? ''),
    messageId: headers.get('message-id'),
    receivedAt: Date.now(),
    connectionId: session.id,
    authUser: typeof user === 'string' ? user : undefined,
    secure: session.secure,
  };
}

/** Parses the header block (up to the first empty line): unfolds, lower-cases names. */
export function parseHeaders(raw: string): Map<string, string> {
  const end = raw.search(/\r?\n\r?\n/);
  const block = end < 0 ? raw : raw.slice(0, end);
  // RFC 5322 unfolding: a line break followed by whitespace continues the previous field.
  const unfolded = block.replace(/\r?\n(?=[ \t])/g, '');
  const headers = new Map<string, string>();
  for (const line of unfolded.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!headers.has(name)) headers.set(name, line.slice(colon + 1).trim());
  }
  return headers;
}

/** Decodes RFC 2047 encoded-words (`=?utf-8?B?...?=`, `=?utf-8?Q?...?=`), as nodemailer writes them. */
export function decodeEncodedWords(value: string): string {
  // Whitespace between two adjacent encoded-words is not part of the text (RFC 2047 §6.2).
  const joined = value.replace(/(=\?[^?]+\?[bBqQ]\?[^?]*\?=)\s+(?==\?)/g, '$1');
  return joined.replace(/=\?([^?*]+)(?:\*[^?]*)?\?([bBqQ])\?([^?]*)\?=/g, (word, charset: string, enc: string, text: string) => {
    let bytes: Buffer;
    if (enc.toUpperCase() === 'B') {
      bytes = Buffer.from(text, 'base64');
    } else {
      const latin = text.replace(/_/g, ' ').replace(/=([0-9A-Fa-f]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
      bytes = Buffer.from(latin, 'latin1');
    }
    try {
      return new TextDecoder(charset.toLowerCase()).decode(bytes);
    } catch {
      return word; // unknown charset: leave the word as it was
    }
  });
}
