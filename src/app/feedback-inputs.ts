/** Whether any way for a bounce or complaint to come back is configured (config `feedback.*`). */
import type { Config } from '../config/schema.js';

/**
 * True with a VERP domain, the inbound listener or any provider webhook. Without one, no report
 * can arrive, so the message index (one insert per claim batch) is not kept.
 */
export function feedbackInputsConfigured(config: Config): boolean {
  const { verp, inbound } = config.feedback;
  return verp.domain !== null || inbound.enabled || webhooksConfigured(config);
}

/** True when any provider webhook is on. */
export function webhooksConfigured(config: Config): boolean {
  const { ses, sendgrid, mailgun, postmark } = config.feedback.webhooks;
  return ses.enabled || sendgrid.publicKey !== null || mailgun.signingKey !== null || postmark.username !== null;
}
