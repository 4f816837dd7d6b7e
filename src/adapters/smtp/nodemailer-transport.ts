/**
 * The SMTP transport: a bounded pool of reused connections (`SmtpPool`, over nodemailer's
 * SMTPConnection), never one connection per email (the old design's failure at 09:00). Messages are built by
 * `MimeBuilder` (template encoded once, values substituted) and handed to the pool as raw MIME
 * with an explicit envelope, which skips nodemailer's per-message MIME tree (its ~2,500-3,000
 * msgs/s per core would otherwise be the ceiling, docs/ARCHITECTURE.md "Known limits"). Certificate checks
 * stay on unless the operator turns them off; `smtp.ca` adds a private CA to trust.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import type { Config } from '../../config/schema.js';
import { defaultConfigDir } from '../../config/load.js';
import { loadTemplates, type TemplateSet } from '../../core/templates.js';
import { ConfigError, ErrorCodes, MailwheelError } from '../../errors.js';
import type { Delivery, MailTransport } from '../../ports/index.js';
import { MimeBuilder } from './mime.js';
import { SmtpPool } from './smtp-pool.js';

export interface NodemailerTransportOptions {
  /** Scheduled-mail templates, compiled; default: read from `config.templates.dir`. */
  templates?: TemplateSet | undefined;
  /** Extra headers per delivery (List-Unsubscribe and friends), from the composition root. */
  headersFor?: ((d: Delivery) => Readonly<Record<string, string>> | undefined) | undefined;
}

export class NodemailerTransport implements MailTransport {
  readonly #pool: SmtpPool;
  readonly #from: string;
  readonly #scheduled: MimeBuilder;
  /** Each running broadcast carries its own subject/text/html, compiled once per broadcast. */
  readonly #broadcasts = new Map<string, MimeBuilder>();
  readonly #headersFor: NodemailerTransportOptions['headersFor'];
  #closed = false;

  constructor(config: Config, opts: NodemailerTransportOptions = {}) {
    const s = config.smtp;
    const ca = s.ca === null ? undefined : readCa(s.ca);
    this.#pool = new SmtpPool({
      url: s.url,
      size: s.poolSize,
      maxMessages: s.maxMessagesPerConnection,
      connectionTimeoutMs: s.connectionTimeoutMs,
      socketTimeoutMs: s.socketTimeoutMs,
      tls: { rejectUnauthorized: s.rejectUnauthorized, ca },
    });
    this.#from = s.from;
    // loadConfig makes the folder absolute; a hand-made Config may still name it relatively.
    const dir = isAbsolute(config.templates.dir) ? config.templates.dir : join(defaultConfigDir, config.templates.dir);
    this.#scheduled = new MimeBuilder(opts.templates ?? loadTemplates(dir, 'scheduled'), { from: s.from });
    this.#headersFor = opts.headersFor;
  }

  /** Registers a broadcast's compiled templates; its deliveries are refused until then. */
  registerBroadcast(broadcastId: string, templates: TemplateSet): void {
    this.#broadcasts.set(broadcastId, new MimeBuilder(templates, { from: this.#from }));
  }

  unregisterBroadcast(broadcastId: string): void {
    this.#broadcasts.delete(broadcastId);
  }

  async send(d: Delivery): Promise<{ messageId: string; response: string }> {
    const msg = this.#builderFor(d).build(d, this.#headersFor?.(d));
    const info = await this.#pool.send(msg.envelope, msg.raw);
    return { messageId: msg.messageId, response: info.response };
  }

  #builderFor(d: Delivery): MimeBuilder {
    if (d.kind === 'scheduled') return this.#scheduled;
    const b = d.broadcastId === undefined ? undefined : this.#broadcasts.get(d.broadcastId);
    // Sending a broadcast with the scheduled template would mail the wrong text to everyone:
    // refuse instead, before anything reaches SMTP.
    if (b === undefined) throw new MailwheelError(ErrorCodes.NOT_FOUND, `no templates registered for broadcast ${String(d.broadcastId)}`);
    return b;
  }

  /** Answers when the server accepts a connection and greets us (for /readyz and the breaker). */
  verify(): Promise<boolean> {
    return this.#pool.verify();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#pool.close();
  }
}

/** Reads the CA bundle once, at construction, so a bad path stops start-up, not the first send. */
export function readCa(path: string): Buffer {
  let pem: Buffer;
  try {
    pem = readFileSync(path);
  } catch (err) {
    throw new ConfigError('smtp.ca', `cannot read ${path}: ${(err as Error).message}`);
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new ConfigError('smtp.ca', `${path} holds no PEM certificate`);
  return pem;
}
