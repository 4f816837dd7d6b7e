/**
 * The MIME message of one delivery, built exactly as the daemon sends it, for the CLI views that
 * show it (`preview`, `broadcast send --dry-run`) without importing the SMTP adapter.
 */
import { DkimSigner } from '../adapters/smtp/dkim-signer.js';
import { MimeBuilder, type BuiltMessage } from '../adapters/smtp/mime.js';
import type { DkimKey } from '../config/dkim-keys.js';
import type { TemplateSet } from '../core/templates.js';
import { verpReturnPath } from '../core/verp.js';
import type { Delivery } from '../ports/index.js';

export type { BuiltMessage };

/**
 * `opts.verp` (the config's `feedback.verp`) makes the envelope sender the VERP return path, as
 * the daemon sends it; without it the envelope sender is the From address.
 */
export function buildMessage(
  templates: TemplateSet,
  opts: { from: string; now?: () => number; verp?: { domain: string | null; localPart: string; secret: string | null } },
  d: Delivery,
  extraHeaders?: Readonly<Record<string, string>>,
): BuiltMessage {
  const returnPath = opts.verp === undefined ? undefined : verpReturnPath(opts.verp);
  return new MimeBuilder(templates, { from: opts.from, now: opts.now, returnPath }).build(d, extraHeaders);
}

/** `raw` with the DKIM-Signature fields the daemon would add (the same signer as the send path). */
export function signMessage(keys: readonly DkimKey[], raw: string): Promise<string> {
  return new DkimSigner(keys).sign(raw);
}
