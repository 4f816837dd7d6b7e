/**
 * The configuration schema: one typed object, units in the names, defaults in one place.
 * `config/default.json` is the documented baseline; a `--config` file and the environment
 * override it, and the merged result must pass this schema or start-up stops (exit 78).
 */
import { z } from 'zod';
import type { FieldMap, UnsubscribeSettings } from '../core/settings.js';
import { baseUrlProblem, mongoUriProblem, redisUrlProblem, smtpUrlProblem } from './urls.js';

const positiveInt = z.number().int().positive();
const fieldName = z.string().min(1).refine((n) => !n.split('.').some((p) => ['__proto__', 'constructor', 'prototype'].includes(p)), 'must not name __proto__, constructor or prototype (they reach JavaScript prototypes)');

/** A string checked by one of the URL checks in `urls.ts` (messages never quote the value). */
function urlString(problem: (s: string) => string | undefined) {
  return z.string().superRefine((value, ctx) => {
    const why = problem(value);
    if (why !== undefined) ctx.addIssue({ code: 'custom', message: why });
  });
}

const mongodb = z.strictObject({
  /** Connection string; the database is the one named in its path. Env: MONGODB_URI. */
  uri: urlString(mongoUriProblem),
  /** Prefix of the collections mailwheel owns (deliveries, events, broadcasts, suppressions). */
  collectionPrefix: z.string().regex(/^[A-Za-z0-9_]*$/, 'letters, digits and _ only'),
  /** Documents per cursor batch when streaming users. */
  batchSize: positiveInt.max(100_000),
  /** How long a command waits for a reachable server before it gives up (exit 69). */
  serverSelectionTimeoutMs: positiveInt.max(600_000),
});

const users = z.strictObject({
  collection: z.string().min(1),
  /** Field names in the application's user documents (applications differ). */
  fields: z.strictObject({
    id: fieldName,
    email: fieldName,
    name: fieldName,
    active: fieldName,
    timezone: fieldName,
    emailTimes: fieldName,
    emailDays: fieldName,
    unsubscribed: fieldName,
    updatedAt: fieldName,
  }) satisfies z.ZodType<FieldMap>,
  /**
   * The most of its wall time the daemon spends in incremental user syncs: one that took d ms
   * defers the next until d / share after its start. Where `updatedAt` cannot be read by index
   * (FerretDB v1 scans the whole collection, ~100 s at 1,000,000 users) this keeps the scans from
   * taking a broadcast's database core; the deferred sync reads the longer window, so no change is
   * lost, only seen later. With an index a sync takes milliseconds and nothing is deferred.
   */
  incrementalMaxShare: z.number().gt(0).max(1).default(0.25),
});

const smtp = z.strictObject({
  /** smtp:// or smtps:// URL, credentials included. Env: SMTP_URL. Never logged. */
  url: urlString(smtpUrlProblem),
  /** The From header of every message. */
  from: z.string().min(3).refine((s) => !/[\r\n]/.test(s), 'must not contain CR or LF'),
  /** Pooled SMTP connections; also the send concurrency. */
  poolSize: positiveInt.max(500),
  /** Messages per pooled connection before it is recycled. */
  maxMessagesPerConnection: positiveInt,
  /** Verify the server's TLS certificate (STARTTLS and smtps). */
  rejectUnauthorized: z.boolean(),
  /** PEM file of a private CA to trust for the SMTP server's certificate (null: system CAs). */
  ca: z.string().min(1).nullable(),
  connectionTimeoutMs: positiveInt,
  socketTimeoutMs: positiveInt,
  /**
   * Several relays, each with its own pool, breaker and health; traffic split by weight among the
   * healthy ones, all inside one global budget (`rate`). Empty: `url` is the one relay. Non-empty:
   * these are the relays and `url` is not used. Each `url` is a secret like `smtp.url`.
   */
  relays: z
    .array(
      z.strictObject({
        url: urlString(smtpUrlProblem),
        /** Share of the traffic among the healthy relays (relative to the others' weights). */
        weight: positiveInt.max(1000),
        /** Pooled connections to this relay; null: `smtp.poolSize`. */
        poolSize: positiveInt.max(500).nullable(),
      }),
    )
    .max(16),
});

/** Rate windows; any combination, all enforced at once. `null` turns a default window off. */
const window = positiveInt.nullable().optional();
const rate = z.strictObject({
  perSecond: window,
  perMinute: window,
  perHour: window,
  perDay: window,
});

/** A DNS name such as `gmail.com` (lower case; no wildcard: a group names each domain it covers). */
const domainName = z
  .string()
  .regex(/^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/, 'must be a lower-case domain name such as gmail.com');

/**
 * Destination groups: recipients grouped by the domain of their address (gmail.com and
 * googlemail.com are one provider), each group with its own rate windows, connection cap and
 * slowdown after 421 / 4.7.x deferrals, all inside the global `rate`. Recipients of no group are
 * in the default group. No groups: one queue for every destination (the behaviour before).
 */
const destinationGroup = z.strictObject({
  /** Shown in `/metrics` (`group` label), `/stats` and logs. */
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, 'lower-case letters, digits, _ and - only (at most 32)').refine((n) => n !== 'default', 'default is the name of the group of every other domain'),
  domains: z.array(domainName).min(1).max(1000),
  rate,
  /** Sends in flight at once to this group; null: the connections of every relay together (`smtp.poolSize` with one relay). */
  maxConnections: positiveInt.max(500).nullable(),
});

const destinations = z.strictObject({
  groups: z.array(destinationGroup).max(32),
  /** Limits of the recipients in no group (the global `rate` always applies as well). */
  default: z.strictObject({ rate, maxConnections: positiveInt.max(500).nullable() }),
});

/**
 * DKIM signatures (RFC 6376, RFC 8463 for Ed25519), each made on every message; several at once
 * for a key rotation or RSA and Ed25519 side by side. `keyFile` is a PEM private key (PKCS#8 or
 * PKCS#1), relative to the config folder; it is read and checked once at start-up.
 */
const dkimSignature = z.strictObject({
  /** The d= domain; the From domain must equal it or be below it (DMARC relaxed alignment). */
  domain: domainName,
  /** The s= selector: the key's TXT record is at `<selector>._domainkey.<domain>`. */
  selector: z.string().regex(/^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62})$/, 'letters, digits, ., _ and - only'),
  keyFile: z.string().min(1),
  /** Header fields signed (h=); null: the recommended set (From, To, Subject, Date, Message-ID, MIME and List-Unsubscribe fields). */
  headers: z.array(z.string().regex(/^[A-Za-z0-9-]+$/, 'a header field name')).min(1).nullable(),
});

const send = z.strictObject({
  /** Attempts per message, the first included, for transient SMTP errors. */
  maxAttempts: positiveInt.max(20),
  backoffBaseMs: positiveInt,
  backoffMaxMs: positiveInt,
  /** On SIGTERM, how long in-flight sends may take before the process gives up on them. */
  drainTimeoutMs: positiveInt,
  /** A claim whose owner has not been heard from for this long is taken over (crash recovery). */
  claimStaleMs: positiveInt.min(5_000),
  /** Spread one minute's scheduled sends over this many seconds instead of one burst (0: off). */
  spreadSeconds: z.number().int().min(0).max(59),
  /** Hard bounces (5xx for a recipient) after which the address is suppressed. */
  hardBounceLimit: positiveInt,
  /** Consecutive connection failures that open the circuit breaker (pause and probe). */
  breakerThreshold: positiveInt,
  /** Longest wait between probes of an unreachable server. */
  breakerProbeMaxMs: positiveInt,
  /*
   * After a 421 / 4.7.x / "too many" deferral the send rate is lowered AIMD-style and climbs back
   * as the server accepts again (src/adapters/smtp/aimd-rate.ts). Replaces `slowdownCooldownMs`.
   */
  /** Rate factor per deferral (multiplicative decrease), e.g. 0.7: 30 % slower. */
  slowdownDecrease: z.number().gt(0).lt(1),
  /** At most one decrease per this many ms (the 421s of one crowded moment count once). */
  slowdownWindowMs: positiveInt,
  /** Share of the configured rate regained per second of accepted sending (additive increase). */
  slowdownRecoveryPerSecond: z.number().gt(0).max(10),
  /** Lowest send rate as a share of the configured `rate.perSecond` (not an absolute rate). */
  slowdownFloor: z.number().gt(0).max(1),
  /** On start, a fire missed while no instance ran is still sent when younger than this; older ones are recorded as `missed`. */
  catchUpGraceMs: z.number().int().min(0),
  /** How far back the start-up catch-up enumerates missed fires (hours); older downtime is logged as one range. */
  catchUpLookbackHours: positiveInt.max(168),
  /** Keys per bulk claim of scheduled mail (the dispatcher claims the next chunk while it feeds one). */
  claimBatch: positiveInt.max(100_000),
  /**
   * Scheduled messages the dispatcher keeps in the send queue at most (messages); the rest wait
   * unclaimed. Null: max(200, smtp.poolSize × 20).
   */
  maxQueued: positiveInt.max(1_000_000).nullable(),
  /** Outcomes recorded on the delivery records per bulk write (messages). */
  recordBatch: positiveInt.max(100_000),
  /**
   * Longest wait before outcomes are written to the delivery records, ms: also the window in
   * which a crash leaves a sent message looking unsent (a possible duplicate).
   */
  recordFlushMs: positiveInt.max(60_000),
});

const unsubscribe = z.strictObject({
  /**
   * HMAC key for one-click unsubscribe tokens (RFC 8058). Env MAILWHEEL_UNSUBSCRIBE_SECRET.
   * Null: messages carry only the mailto link and the HTTP endpoint refuses every token.
   */
  secret: z.string().min(16, 'must be at least 16 characters').nullable(),
  /**
   * Public https base URL of this daemon's HTTP endpoint, as recipients reach it. One-click
   * links (RFC 8058 requires https) are sent only with a secret and this; null: mailto only.
   */
  baseUrl: urlString(baseUrlProblem).nullable(),
  /** Accept an http:// baseUrl on 127.0.0.1, ::1 or localhost (development and tests only). */
  allowInsecureBaseUrl: z.boolean(),
  /** Address for mailto: unsubscribe requests. */
  mailto: z.string().regex(/^[^\s@<>]+@[^\s@<>]+$/, 'must be an email address'),
  /** How long a token stays valid. */
  tokenTtlDays: positiveInt.max(3650),
}) satisfies z.ZodType<UnsubscribeSettings>;

const analytics = z.strictObject({
  /** Flush when this many events are buffered. */
  flushEvents: positiveInt,
  /** Flush at least this often. */
  flushIntervalMs: positiveInt,
  /** Hard bound of the buffer; at the bound, sending slows instead of dropping events. */
  maxBuffered: positiveInt,
  /** First retry delay after a failed write; doubles up to `retryMaxMs`. */
  retryBaseMs: positiveInt,
  /** Longest wait between write attempts while MongoDB is down. */
  retryMaxMs: positiveInt,
});

/** Age limits of the records mailwheel keeps; the `retention` housekeeping cron deletes older ones. */
const retention = z.strictObject({
  /** Analytics events older than this many days are deleted. */
  eventsDays: positiveInt,
  /**
   * Delivery records (claims, outcomes) older than this are deleted. A deleted record no longer
   * stops its key from being sent again, so keep it above the catch-up lookback.
   */
  deliveriesDays: z.number().int().min(2),
});

/** Broadcasts (`mailwheel broadcast send`), run by the daemon. */
const broadcasts = z.strictObject({
  /**
   * Users per batch: one cursor batch, one bulk claim, one confirmed checkpoint. Also the bound on
   * duplicates after a crash: a run keeps two batches open (core/broadcast-run.ts), so at most
   * 2 × batchSize messages can be sent but not recorded.
   */
  batchSize: positiveInt.max(10_000),
  /** How often the daemon looks for queued, due (`--at`), resumed and orphaned broadcasts, ms. */
  pollMs: positiveInt.min(100),
  /** How often a running batch re-reads pause/cancel requests and publishes its progress, ms. */
  controlPollMs: positiveInt.min(50),
  /** Broadcasts one daemon runs at the same time. */
  maxConcurrent: positiveInt.max(16),
  /**
   * Messages a running broadcast keeps in the send queue ahead of sending, per destination
   * group (each group's queue gets this room of its own). Null: max(100,
   * smtp.poolSize × 10), half the dispatcher's default bound, so a broadcast never fills the
   * queue ahead of scheduled mail.
   */
  feedAhead: positiveInt.max(1_000_000).nullable(),
  /**
   * `Feedback-ID` header of broadcast messages (Gmail's feedback loop reports complaint rates per
   * value); `{broadcast}` is replaced by the broadcast's id. Null: no header.
   */
  feedbackId: z.string().min(1).max(200).regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces').nullable(),
});

/** `HH:MM`, 24-hour, as in users' emailTimes. */
const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be HH:MM (24-hour)');

/**
 * Quiet hours per kind of mail: no broadcast mail while the recipient's local time is inside
 * [start, end) (a window may cross midnight: 21:00-08:00). A running broadcast holds those users
 * and sends them when their window ends; held longer than `maxHoldMinutes` they are recorded as
 * `missed` with the reason. Scheduled mail is the user's own choice and is never held.
 */
const quietHours = z.strictObject({
  broadcasts: z.strictObject({
    /** null (with `end` null): no quiet hours. */
    start: hhmm.nullable(),
    end: hhmm.nullable(),
    maxHoldMinutes: positiveInt.max(7 * 24 * 60),
  }),
});

/** `mailwheel run-minute`, a one-shot replay of one minute. */
const runMinute = z.strictObject({
  /**
   * Give up (release the claims, print a summary, exit 75) once nothing has been claimed, sent or
   * failed for this long: an unreachable SMTP server otherwise keeps the run waiting for ever.
   */
  giveUpAfterSeconds: positiveInt.max(86_400),
});

const http = z.strictObject({
  enabled: z.boolean(),
  host: z.string().min(1),
  port: z.number().int().min(0).max(65535),
  /**
   * Bearer token required on every route except /healthz and /unsubscribe (null: none).
   * Env MAILWHEEL_HTTP_TOKEN. Never logged.
   */
  token: z.string().min(16, 'must be at least 16 characters').nullable(),
  /** How long `/readyz` reuses a successful SMTP handshake, ms (a probe every few seconds must not open a connection each time). */
  smtpCheckCacheMs: z.number().int().min(0).max(3_600_000),
  /** How long `/readyz` reuses a failed SMTP handshake, ms (shorter, so a recovery shows soon). */
  smtpCheckFailedCacheMs: z.number().int().min(0).max(3_600_000),
});

/**
 * Several instances on one database (docs/ARCHITECTURE.md "Several instances"). Without a Redis
 * URL an instance holds every user and keeps its own rate windows (restored from the delivery
 * records at start): right for one instance. With it, every instance draws on one set of rate
 * windows kept in Redis, and the users are split into `partitions` leased among the live
 * instances, so each holds only its share.
 */
const cluster = z.strictObject({
  /** `redis://[user:pass@]host:port[/db]` or `rediss://`; null: one instance, no Redis. Env MAILWHEEL_REDIS_URL. Never logged. */
  redisUrl: urlString(redisUrlProblem).nullable(),
  /** Prefix of every Redis key mailwheel writes (several deployments may share one Redis). */
  keyPrefix: z.string().regex(/^[A-Za-z0-9_.:-]+$/, 'letters, digits and _ . : - only'),
  /** Partitions the users are split into (by a stable hash of the user id). Fixed for a deployment: every instance must agree. */
  partitions: positiveInt.max(4096),
  /** A partition lease not renewed for this long is free to take (ms): a dead instance's users are taken over within it. */
  leaseTtlMs: positiveInt.min(3_000).max(600_000),
});

/**
 * Hearing back from the mail system (docs/ARCHITECTURE.md "Bounces and complaints"): provider
 * webhooks, VERP return paths and an inbound SMTP listener for DSNs and ARF reports, and what a
 * report does. Everything is off until configured; with nothing configured mailwheel behaves as
 * before (only refusals during the SMTP session suppress).
 */
const webhookSecret = z.string().min(16, 'must be at least 16 characters').nullable();
const feedback = z.strictObject({
  /** VERP: the envelope sender becomes `<localPart>+<signed token>@<domain>`, naming the delivery. null: the From address, as before. */
  verp: z.strictObject({
    domain: z.string().regex(/^[A-Za-z0-9.-]+\.[A-Za-z]{2,}$|^localhost$/, 'must be a domain name').nullable(),
    localPart: z.string().regex(/^[A-Za-z0-9._-]{1,20}$/, 'letters, digits and . _ - only, at most 20'),
    /** Signs the tokens (HMAC-SHA256). Env MAILWHEEL_VERP_SECRET. Never logged. Required with a domain. */
    secret: webhookSecret,
  }),
  /** The inbound SMTP listener that accepts DSNs (RFC 3464) and ARF reports (RFC 5965). */
  inbound: z.strictObject({
    enabled: z.boolean(),
    host: z.string().min(1),
    port: z.number().int().min(0).max(65535),
    /** Largest message accepted, bytes (a DSN or ARF report with the original's headers is a few KB). */
    maxMessageBytes: positiveInt.max(50_000_000),
  }),
  webhooks: z.strictObject({
    /** Largest webhook body accepted, bytes; beyond it the answer is 413. */
    maxBodyBytes: positiveInt.max(50_000_000),
    /** A signed timestamp older (or further in the future) than this is refused as stale, seconds. */
    maxAgeSeconds: positiveInt.max(86_400),
    /** Amazon SES through SNS at `/webhooks/ses`. */
    ses: z.strictObject({
      enabled: z.boolean(),
      /** Topic ARNs accepted; empty: any topic. */
      topicArns: z.array(z.string().min(1)),
      /** SigningCertURL must be https on a host matching this (the SNS host pattern). */
      certHostPattern: z.string().min(1),
      /**
       * Signing certificates known in advance, by URL (PEM file paths, relative to the config
       * folder): used instead of fetching. Tests inject their own; production may pin AWS's.
       */
      certificates: z.record(z.string(), z.string().min(1)),
      /** Confirm subscriptions by fetching their SubscribeURL (a host matching certHostPattern). */
      confirmSubscriptions: z.boolean(),
    }),
    /** SendGrid Event Webhook at `/webhooks/sendgrid`: its ECDSA public key (base64 DER or PEM). null: off. */
    sendgrid: z.strictObject({ publicKey: z.string().min(16).nullable() }),
    /** Mailgun at `/webhooks/mailgun`: the HTTP webhook signing key. Env MAILWHEEL_MAILGUN_SIGNING_KEY. null: off. */
    mailgun: z.strictObject({ signingKey: webhookSecret }),
    /** Postmark at `/webhooks/postmark`: basic-auth credentials in the webhook URL. Env MAILWHEEL_POSTMARK_PASSWORD. null: off. */
    postmark: z.strictObject({ username: z.string().min(1).nullable(), password: webhookSecret }),
  }),
  /** Soft bounces of one address suppress it once `limit` arrive within `windowHours`. */
  softBounce: z.strictObject({ limit: positiveInt.max(1000), windowHours: positiveInt.max(24 * 90) }),
  /** A complaint always stops broadcasts to the address; with true it stops scheduled mail too. */
  complaintStopsScheduled: z.boolean(),
  /** A running broadcast pauses itself when a rate crosses its threshold once it has sent `minSent` (null: never). */
  broadcastPause: z.strictObject({
    minSent: positiveInt,
    bounceRate: z.number().gt(0).max(1).nullable(),
    complaintRate: z.number().gt(0).max(1).nullable(),
  }),
});

/**
 * Email templates: `<kind>.subject`, `<kind>.txt` and optionally `<kind>.html` (Mustache) in this
 * folder. Given relative to the config folder (the operator's, else the packaged one); after
 * loading it holds the absolute folder in use.
 */
const templates = z.strictObject({
  dir: z.string().min(1),
});

export const configSchema = z
  .strictObject({
    mongodb,
    users,
    smtp,
    rate,
    send,
    analytics,
    retention,
    broadcasts,
    quietHours,
    runMinute,
    http,
    cluster,
    destinations,
    dkim: z.array(dkimSignature).max(4),
    feedback,
    unsubscribe,
    templates,
    /** Path of the housekeeping cron file, relative to the config folder. */
    schedulesFile: z.string().min(1),
    log: z.strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    }),
  })
  .refine((c) => c.send.backoffMaxMs >= c.send.backoffBaseMs, {
    message: 'must be >= send.backoffBaseMs',
    path: ['send', 'backoffMaxMs'],
  })
  .refine((c) => c.unsubscribe.baseUrl === null || insecureBaseUrlAllowed(c.unsubscribe.baseUrl, c.unsubscribe.allowInsecureBaseUrl), {
    message: 'must be an https:// URL (RFC 8058 one-click links must be https); http:// only on 127.0.0.1, ::1 or localhost with unsubscribe.allowInsecureBaseUrl: true',
    path: ['unsubscribe', 'baseUrl'],
  })
  .refine((c) => c.feedback.verp.domain === null || c.feedback.verp.secret !== null, {
    message: 'is required when feedback.verp.domain is set (it signs the return-path tokens)',
    path: ['feedback', 'verp', 'secret'],
  })
  .refine((c) => (c.feedback.webhooks.postmark.username === null) === (c.feedback.webhooks.postmark.password === null), {
    message: 'must be set together with feedback.webhooks.postmark.username (both or neither)',
    path: ['feedback', 'webhooks', 'postmark', 'password'],
  })
  .refine((c) => new Set(c.destinations.groups.map((g) => g.name)).size === c.destinations.groups.length, {
    message: 'group names must be different',
    path: ['destinations', 'groups'],
  })
  .refine((c) => { const all = c.destinations.groups.flatMap((g) => g.domains); return new Set(all).size === all.length; }, {
    message: 'a domain may be in one group only',
    path: ['destinations', 'groups'],
  })
  .refine((c) => (c.quietHours.broadcasts.start === null) === (c.quietHours.broadcasts.end === null) && (c.quietHours.broadcasts.start === null || c.quietHours.broadcasts.start !== c.quietHours.broadcasts.end), {
    message: 'start and end are set together (both or neither) and differ',
    path: ['quietHours', 'broadcasts'],
  })
  .refine((c) => c.retention.deliveriesDays * 24 > c.send.catchUpLookbackHours, {
    message: 'must be longer than send.catchUpLookbackHours (a deleted delivery record can be sent again)',
    path: ['retention', 'deliveriesDays'],
  });

export type Config = z.infer<typeof configSchema>;

/** `send.maxQueued`, or when it is null its default: max(200, smtp.poolSize × 20) messages. */
export function maxQueuedOf(config: Pick<Config, 'send' | 'smtp'>): number {
  return config.send.maxQueued ?? Math.max(200, config.smtp.poolSize * 20);
}

/** `broadcasts.feedAhead`, or when it is null its default: max(100, smtp.poolSize × 10) messages. */
export function feedAheadOf(config: Pick<Config, 'broadcasts' | 'smtp'>): number {
  return config.broadcasts.feedAhead ?? Math.max(100, config.smtp.poolSize * 10);
}

/** Settings that no longer exist, with what replaced them: refused (exit 78) with this text rather than "unknown setting". */
export const retiredSettings: ReadonlyArray<{ path: readonly string[]; message: string }> = [
  {
    path: ['send', 'slowdownCooldownMs'],
    message:
      'replaced by send.slowdownDecrease, send.slowdownWindowMs, send.slowdownRecoveryPerSecond and send.slowdownFloor (the slowdown after 421s is now AIMD, without fixed levels); remove it',
  },
];

/** https always; http only on a loopback host and only when the operator said so. */
function insecureBaseUrlAllowed(url: string, allowInsecure: boolean): boolean {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return true; // reported on the field itself
  }
  if (u.protocol === 'https:') return true;
  return allowInsecure && ['127.0.0.1', '[::1]', 'localhost'].includes(u.hostname);
}

/** One housekeeping schedule: a node-cron expression and the zone it is read in. */
export const scheduleEntrySchema = z.strictObject({
  cron: z.string().min(1),
  timezone: z.string().min(1),
});

/**
 * The housekeeping jobs. `userSync` is required; the others run only when present (an operator's
 * schedules file replaces the packaged one, and may leave a job out on purpose).
 */
export const schedulesSchema = z.strictObject({
  userSync: scheduleEntrySchema,
  /**
   * A full resync of every user. Incremental syncs cannot see a user document that was deleted
   * (there is nothing left to read), so without this a deleted user would keep their jobs until
   * the next restart.
   */
  fullSync: scheduleEntrySchema.optional(),
  /** Deletes events and deliveries older than `retention.*Days`. */
  retention: scheduleEntrySchema.optional(),
  /** One log line with the day's counts. */
  dailySummary: scheduleEntrySchema.optional(),
  /** Picks up queued broadcasts (`broadcast send --at`). */
  broadcasts: scheduleEntrySchema.optional(),
});

export type Schedules = z.infer<typeof schedulesSchema>;
