/**
 * The SMTP pool: nodemailer with `pool: true`, so messages reuse a bounded set of connections
 * instead of opening one each (the old design's failure at 09:00). Certificate checks stay on
 * unless the operator turns them off.
 */
import nodemailer from 'nodemailer';
import type { Config } from '../../config/schema.js';
import type { Template } from '../../core/message.js';
import { renderDelivery } from '../../core/message.js';
import type { Delivery, MailTransport } from '../../ports/index.js';

export class NodemailerTransport implements MailTransport {
  readonly #mailer: ReturnType<typeof nodemailer.createTransport>;
  readonly #from: string;
  readonly #template: Template;
  readonly #idDomain: string;

  constructor(config: Config) {
    const s = config.smtp;
    this.#mailer = nodemailer.createTransport({
      url: s.url,
      pool: true,
      maxConnections: s.poolSize,
      maxMessages: s.maxMessagesPerConnection,
      connectionTimeout: s.connectionTimeoutMs,
      greetingTimeout: s.connectionTimeoutMs,
      socketTimeout: s.socketTimeoutMs,
      tls: { rejectUnauthorized: s.rejectUnauthorized },
    });
    this.#from = s.from;
    this.#template = config.templates.scheduled;
    this.#idDomain = domainOf(s.from);
  }

  async send(d: Delivery): Promise<{ messageId: string; response: string }> {
    const m = renderDelivery(d, this.#template, this.#idDomain);
    const info = await this.#mailer.sendMail({
      from: this.#from,
      to: m.to.name ? { name: m.to.name, address: m.to.address } : m.to.address,
      subject: m.subject,
      text: m.text,
      ...(m.html === undefined ? {} : { html: m.html }),
      messageId: m.messageId,
      headers: m.headers,
    });
    return { messageId: m.messageId, response: String(info.response ?? '') };
  }

  /** Answers when the server accepts a connection and greets us (for /readyz and the breaker). */
  async verify(): Promise<boolean> {
    return this.#mailer.verify();
  }

  async close(): Promise<void> {
    this.#mailer.close();
  }
}

function domainOf(from: string): string {
  const m = /@([^>\s]+)/.exec(from);
  return m?.[1] ?? 'mailwheel.local';
}
