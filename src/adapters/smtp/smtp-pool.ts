/**
 * A bounded pool of SMTP connections (nodemailer's `SMTPConnection`), each sending one raw message
 * after another. Why not nodemailer's own `pool: true` transport: measured into Postfix's
 * smtp-sink on 2 cores, its per-message Mailer/pool plumbing caps raw-MIME sending at about
 * 3,600-4,000 msgs/s with 10 connections, while the same messages over `SMTPConnection` directly
 * reach about 7,400-7,800/s (bench/smtp.bench.ts, cases c and e). The send queue already does
 * what the Mailer layer would add (queueing, retries, concurrency), so this keeps only the part
 * that talks SMTP: connect, STARTTLS/TLS, login, send, reset, recycle.
 */
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { ConfigError, Errors } from '../../errors.js';

export interface SmtpPoolOptions {
  /** smtp:// or smtps:// URL; credentials, if any, in its userinfo. */
  url: string;
  /** Connections at most. */
  size: number;
  /** A connection is closed and replaced after this many messages. */
  maxMessages: number;
  connectionTimeoutMs: number;
  socketTimeoutMs: number;
  tls: { rejectUnauthorized: boolean; ca?: string | Buffer | undefined };
  /** The setting named when `url` cannot be parsed; default `smtp.url`. */
  setting?: string;
}

export interface RawEnvelope {
  from: string;
  to: string[];
}

interface Conn {
  smtp: SMTPConnection;
  messages: number;
  /** Set by an 'error' or 'end' event: never reuse. */
  broken: boolean;
}

/** Errors after which the connection itself is still good: the server refused this message. */
const MESSAGE_ERRORS = new Set(['EENVELOPE', 'EMESSAGE']);

/** Failures of `send` whose message never left this process (see {@link neverHandedOver}). */
const unsent = new WeakSet<object>();

/**
 * True when `send` failed before any byte of the message was written to the server: no connection
 * could be had (connect, greeting, TLS or login failed), or the server never answered DATA with
 * 354, the only answer after which the client writes the message. Such a message cannot have
 * been delivered, so sending it elsewhere cannot duplicate it. After a 354 the server may have
 * the whole message and the 250 may be what got lost: that outcome is unknown. (One case this
 * cannot tell: a server that closes in the middle of writing its final reply; nodemailer then
 * reports the cut line as the last answer. A whole reply is written at once in practice.)
 */
export function neverHandedOver(err: unknown): boolean {
  return typeof err === 'object' && err !== null && unsent.has(err);
}

function markUnsent(err: unknown): unknown {
  if (typeof err === 'object' && err !== null) unsent.add(err);
  return err;
}

export class SmtpPool {
  readonly #opts: SmtpPoolOptions;
  readonly #target: { host: string; port: number; secure: boolean; auth: { user: string; pass: string } | undefined };
  readonly #idle: Conn[] = [];
  readonly #all = new Set<Conn>();
  #opening = 0;
  #waiters: Array<(c: Conn | Error) => void> = [];
  #closed = false;
  readonly stats = { connectionsOpened: 0, connectErrors: 0 };
  /** `host:port` of the server (never the credentials): names the relay in stats and metrics. */
  readonly address: string;

  constructor(opts: SmtpPoolOptions) {
    this.#opts = opts;
    let u: URL;
    try {
      u = new URL(opts.url);
    } catch {
      // The URL itself is not repeated: it may hold a password.
      throw new ConfigError(opts.setting ?? 'smtp.url', 'is not a URL that can be parsed (check the host name and escape special characters in the credentials)');
    }
    const secure = u.protocol === 'smtps:';
    this.#target = {
      host: u.hostname.replace(/^\[|\]$/g, ''),
      port: u.port ? Number(u.port) : secure ? 465 : 587,
      secure,
      auth: u.username ? { user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) } : undefined,
    };
    const host = this.#target.host.includes(':') ? `[${this.#target.host}]` : this.#target.host;
    this.address = `${host}:${this.#target.port}`;
  }

  /** Sends one raw message; rejects with nodemailer's error (code, responseCode) on failure. */
  async send(envelope: RawEnvelope, raw: string | Buffer): Promise<{ response: string }> {
    let conn: Conn;
    try {
      conn = await this.#acquire();
    } catch (err) {
      throw markUnsent(err);
    }
    try {
      const info = await new Promise<{ response?: string }>((resolve, reject) =>
        conn.smtp.send(envelope, raw, (err, result) => (err ? reject(err) : resolve(result ?? {}))),
      );
      conn.messages++;
      this.#release(conn);
      return { response: info.response ?? '' };
    } catch (err) {
      const e = err as { code?: string; responseCode?: number };
      // The last answer is 354 (go ahead) only once DATA was accepted and the message is being written.
      const last = conn.smtp.lastServerResponse;
      const dataAccepted = typeof last === 'string' && last.startsWith('354');
      if (!conn.broken && MESSAGE_ERRORS.has(e.code ?? '') && e.responseCode !== 421) {
        // The server refused this message; reset the session and keep the connection.
        await new Promise<void>((resolve) => conn.smtp.reset((resetErr) => (resetErr ? this.#discard(conn) : this.#release(conn), resolve())));
      } else {
        this.#discard(conn);
      }
      if (!MESSAGE_ERRORS.has(e.code ?? '') && !dataAccepted) markUnsent(err);
      throw err;
    }
  }

  /**
   * Opens one connection (greeting, EHLO, STARTTLS when offered, AUTH when the URL has
   * credentials) and quits; rejects with the cause (`config check --connect`).
   */
  async check(): Promise<void> {
    const conn = await this.#open();
    conn.smtp.quit();
  }

  /** Opens a connection, greets and logs in, then quits: true when the server answers. */
  verify(): Promise<boolean> {
    return this.check().then(
      () => true,
      () => false,
    );
  }

  /** Closes every connection; waiting senders are rejected. Idempotent. */
  close(): void {
    this.#closed = true;
    for (const w of this.#waiters.splice(0)) w(new Errors.SHUTTING_DOWN('SMTP pool closed'));
    for (const c of this.#all) c.smtp.quit();
    this.#all.clear();
    this.#idle.length = 0;
  }

  get size(): number {
    return this.#all.size;
  }

  async #acquire(): Promise<Conn> {
    if (this.#closed) throw new Errors.SHUTTING_DOWN('SMTP pool closed');
    for (let c = this.#idle.pop(); c !== undefined; c = this.#idle.pop()) {
      if (!c.broken) return c;
      this.#all.delete(c);
    }
    if (this.#all.size + this.#opening < this.#opts.size) {
      this.#opening++;
      let c: Conn;
      try {
        c = await this.#open();
      } catch (err) {
        // The slot this open held is free again: a sender waiting for one tries its own open
        // (which may fail as well and reach the relay set's failover) instead of waiting forever.
        this.#opening--;
        this.#openForWaiter();
        throw err;
      }
      this.#opening--;
      this.#all.add(c);
      return c;
    }
    const got = await new Promise<Conn | Error>((resolve) => this.#waiters.push(resolve));
    if (got instanceof Error) throw got;
    return got;
  }

  #release(conn: Conn): void {
    if (conn.broken || this.#closed) return this.#discard(conn);
    if (conn.messages >= this.#opts.maxMessages) {
      // Recycled politely; the next sender opens a fresh one.
      this.#discard(conn);
      conn.smtp.quit();
      return;
    }
    const waiter = this.#waiters.shift();
    if (waiter) waiter(conn);
    else this.#idle.push(conn);
  }

  #discard(conn: Conn): void {
    conn.broken = true;
    this.#all.delete(conn);
    if (!conn.smtp.destroyed) conn.smtp.close();
    // A sender waiting for a connection may now open its own.
    this.#openForWaiter();
  }

  /** Opens a connection for the first waiting sender, if any (a slot came free). */
  #openForWaiter(): void {
    const waiter = this.#waiters.shift();
    if (waiter === undefined) return;
    this.#opening++;
    this.#open().then(
      (c) => {
        this.#opening--;
        this.#all.add(c);
        waiter(c);
      },
      (err: unknown) => {
        this.#opening--;
        waiter(err instanceof Error ? err : new Error(String(err)));
        this.#openForWaiter(); // the slot is free again: the next one in line tries
      },
    );
  }

  async #open(): Promise<Conn> {
    const t = this.#target;
    const smtp = new SMTPConnection({
      host: t.host,
      port: t.port,
      secure: t.secure,
      connectionTimeout: this.#opts.connectionTimeoutMs,
      greetingTimeout: this.#opts.connectionTimeoutMs,
      socketTimeout: this.#opts.socketTimeoutMs,
      tls: { rejectUnauthorized: this.#opts.tls.rejectUnauthorized, ...(this.#opts.tls.ca === undefined ? {} : { ca: this.#opts.tls.ca }) },
    });
    const conn: Conn = { smtp, messages: 0, broken: false };
    // Without an 'error' listener a dropped socket would crash the process.
    smtp.on('error', () => (conn.broken = true));
    smtp.on('end', () => (conn.broken = true));
    try {
      await new Promise<void>((resolve, reject) => {
        smtp.once('error', reject);
        smtp.connect(() => {
          smtp.removeListener('error', reject);
          resolve();
        });
      });
      const auth = t.auth;
      if (auth) await new Promise<void>((resolve, reject) => smtp.login(auth, (err) => (err ? reject(err) : resolve())));
    } catch (err) {
      this.stats.connectErrors++;
      smtp.close();
      throw err;
    }
    this.stats.connectionsOpened++;
    return conn;
  }
}
