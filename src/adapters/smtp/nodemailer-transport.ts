/**
 * The SMTP transport: bounded pools of reused connections (`SmtpPool`, over nodemailer's
 * SMTPConnection, one per relay: `RelaySet`), never one connection per email (the old design's failure at 09:00). Messages are built by
 * `MimeBuilder` (template encoded once, values substituted) and handed to the pool as raw MIME
 * with an explicit envelope, which skips nodemailer's per-message MIME tree (its ~2,500-3,000
 * msgs/s per core would otherwise be the ceiling, docs/ARCHITECTURE.md "Known limits"). Certificate checks
 * stay on unless the operator turns them off; `smtp.ca` adds a private CA to trust.
 *
 * What a message says comes with its delivery: a broadcast delivery carries its broadcast's
 * compiled content (`Delivery.content`, one object per run), scheduled mail uses the scheduled
 * templates of the config. A builder is made once per content object (WeakMap: it goes when the
 * run's deliveries do), so a broadcast's fixed parts are encoded once, as before.
 */
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { isAbsolute, join } from 'node:path';
import type { Config } from '../../config/schema.js';
import { defaultConfigDir } from '../../config/load.js';
import { loadTemplates, type TemplateSet } from '../../core/templates.js';
import { verpReturnPath } from '../../core/verp.js';
import { ConfigError, ErrorCodes, MailwheelError } from '../../errors.js';
import { systemClock, type Clock, type Delivery, type MailTransport } from '../../ports/index.js';
import { loadDkimKeys, type DkimKey } from '../../config/dkim-keys.js';
import { messageSigner, type MessageSigner } from './dkim-pool.js';
import { MimeBuilder } from './mime.js';
import { RelaySet, relaysOf, type RelayAnswer, type RelayStatus } from './relay-set.js';

export interface NodemailerTransportOptions {
  /** Scheduled-mail templates, compiled; default: read from `config.templates.dir`. */
  templates?: TemplateSet | undefined;
  /** Extra headers per delivery (List-Unsubscribe and friends), from the composition root. */
  headersFor?: ((d: Delivery) => Readonly<Record<string, string>> | undefined) | undefined;
  /** The Date header's time; default the system clock. */
  clock?: Clock | undefined;
  /** Where relay health changes are logged (a relay down, back again). */
  log?: Logger | undefined;
  /** DKIM keys parsed at start-up (`LoadedConfig.dkim`); default: read from `config.dkim` here. */
  dkim?: readonly DkimKey[] | undefined;
  /**
   * A signer shared with other transports (the destination groups' own, app.ts), so the process
   * has one pool of signing workers; its owner closes it. Default: one of this transport's own.
   */
  signer?: MessageSigner | undefined;
}

export class NodemailerTransport implements MailTransport {
  /** The relays (`smtp.relays`, or `smtp.url` alone), each its own pool and health: relay-set.ts. */
  readonly #relays: RelaySet;
  readonly #from: string;
  /** VERP (`feedback.verp`): each message's envelope sender names it; undefined: the From address. */
  readonly #returnPath: ((digest: string) => string) | undefined;
  readonly #now: () => number;
  readonly #scheduled: MimeBuilder;
  /** A builder per content object that deliveries carry (one per broadcast run). */
  readonly #builders = new WeakMap<TemplateSet, MimeBuilder>();
  readonly #headersFor: NodemailerTransportOptions['headersFor'];
  readonly #dkim: MessageSigner;
  /** False when the signer is shared (`signer` option): its owner closes it. */
  readonly #ownSigner: boolean;
  readonly #feedbackId: string | null;
  #closed = false;

  constructor(config: Config, opts: NodemailerTransportOptions = {}) {
    const s = config.smtp;
    const ca = s.ca === null ? undefined : readCa(s.ca);
    const clock = opts.clock ?? systemClock;
    this.#relays = new RelaySet(relaysOf(s), {
      pool: { maxMessages: s.maxMessagesPerConnection, connectionTimeoutMs: s.connectionTimeoutMs, socketTimeoutMs: s.socketTimeoutMs, tls: { rejectUnauthorized: s.rejectUnauthorized, ca } },
      threshold: config.send.breakerThreshold,
      probeMaxMs: config.send.breakerProbeMaxMs,
      clock,
      log: opts.log,
    });
    this.#from = s.from;
    this.#returnPath = verpReturnPath(config.feedback.verp);
    this.#now = () => clock.now();
    // loadConfig makes the folder absolute; a hand-made Config may still name it relatively.
    const dir = isAbsolute(config.templates.dir) ? config.templates.dir : join(defaultConfigDir, config.templates.dir);
    this.#scheduled = new MimeBuilder(opts.templates ?? loadTemplates(dir, 'scheduled'), { from: s.from, now: this.#now, returnPath: this.#returnPath });
    this.#headersFor = opts.headersFor;
    this.#ownSigner = opts.signer === undefined;
    this.#dkim = opts.signer ?? messageSigner(opts.dkim ?? loadDkimKeys(config.dkim, defaultConfigDir));
    this.#feedbackId = config.broadcasts.feedbackId;
  }

  async send(d: Delivery): Promise<{ messageId: string; response: string }> {
    const msg = this.#builderFor(d).build(d, this.#headersFor?.(d));
    const info = await this.#relays.send(msg.envelope, await this.#dkim.sign(msg.raw));
    return { messageId: msg.messageId, response: info.response };
  }

  #builderFor(d: Delivery): MimeBuilder {
    if (d.content !== undefined) {
      let b = this.#builders.get(d.content);
      if (b === undefined) {
        b = new MimeBuilder(d.content, { from: this.#from, now: this.#now, returnPath: this.#returnPath, feedbackId: this.#feedbackId });
        this.#builders.set(d.content, b);
      }
      return b;
    }
    // Sending a broadcast with the scheduled template would mail the wrong text to everyone:
    // refuse instead, before anything reaches SMTP.
    if (d.kind !== 'scheduled') throw new MailwheelError(ErrorCodes.NOT_FOUND, `broadcast ${String(d.broadcastId)} delivery ${d.key} carries no content`);
    return this.#scheduled;
  }

  /** Answers when a relay accepts a connection and greets us (the send queue's breaker probe). */
  verify(): Promise<boolean> {
    return this.#relays.verify();
  }

  /** Each relay's handshake, named by host:port (`/readyz`). */
  checkRelays(): Promise<RelayAnswer[]> {
    return this.#relays.check();
  }

  /** Each relay's health and counts (`/stats`, `/metrics`). */
  relays(): RelayStatus[] {
    return this.#relays.status();
  }

  /** Connections of all relays together: the send queue's concurrency. */
  get capacity(): number {
    return this.#relays.capacity;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#relays.close();
    if (this.#ownSigner) await this.#dkim.close();
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
