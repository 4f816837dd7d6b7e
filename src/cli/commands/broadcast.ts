/**
 * `mailwheel broadcast send | list | status | pause | resume | cancel`. The CLI writes the
 * broadcast document (and, later, operator requests); a running daemon does the sending
 * (core/broadcast-supervisor.ts). Everything is checked before anything is written: the templates
 * compile, the segment passes the operator allow-list, and the server accepts the query.
 */
import { readFileSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import { buildMessage } from '../../app/messages.js';
import { withStores, type Stores } from '../../app/stores.js';
import type { Config } from '../../config/schema.js';
import { broadcastKey } from '../../core/delivery-key.js';
import { NO_FEEDBACK } from '../../core/feedback-rates.js';
import { renderDelivery } from '../../core/message.js';
import { MAX_SEGMENT_CHARS, parseSegment, recipientFilter, SegmentError, type Segment } from '../../core/segment.js';
import { SuppressionList } from '../../core/suppression-list.js';
import { compileTemplates, type TemplateSet } from '../../core/templates.js';
import { checkRecipient, type Recipient } from '../../core/validate-user.js';
import { ErrorCodes, MailwheelError } from '../../errors.js';
import { FINAL_STATUSES, type BroadcastDoc, type BroadcastStatus, type BroadcastStore, type ControlAction, type LocalTimeWave, type RecipientSource } from '../../ports/broadcasts.js';
import { countsText, feedbackView, follow, listTable, progressText, statusBlock, zoneRows } from '../broadcast-view.js';
import { badArgument, configFor, parseInstant, parsePositiveInt } from '../context.js';
import { parseLocalTime } from '../local-time-option.js';
import { formatCount } from '../format.js';
import { localTimeDryRun } from '../local-time-dry-run.js';

interface SendOpts {
  subject: string;
  textFile: string;
  htmlFile?: string;
  segment?: string;
  segmentFile?: string;
  at?: string;
  localTime?: string;
  on?: string;
  dryRun?: boolean;
  wait?: boolean;
  pickupTimeout: string;
  json?: boolean;
}

interface RequestOpts {
  wait: boolean;
  timeout: string;
  json?: boolean;
}

export function registerBroadcast(program: Command): void {
  const broadcast = program.command('broadcast').description('send one message to every active user (or a segment), and follow or steer it');
  broadcast
    .command('send')
    .description('queue a broadcast (the running daemon sends it) and print its id')
    .requiredOption('--subject <text>', 'subject line; may use {{name}} and {{email}}')
    .requiredOption('--text-file <file>', 'plain-text body (Mustache: {{name}}, {{email}})')
    .option('--html-file <file>', 'HTML body (values are HTML-escaped)')
    .option('--segment <json>', 'MongoDB filter over users, e.g. \'{"plan": "pro"}\'; always combined with active and not unsubscribed (default: every user)')
    .option('--segment-file <file>', 'read the segment from a JSON file instead (for segments too long for a command line)')
    .option('--at <iso>', 'start at this instant instead of now, e.g. 2026-03-08T09:00:00Z')
    .option('--local-time <HH:MM>', "send at this time of each recipient's own local clock (their timezone field; DST gaps move forward, a repeated time counts once); rolls around the globe over about 26 hours")
    .option('--on <YYYY-MM-DD>', "with --local-time: the local date (default: tomorrow's UTC date)")
    .option('--dry-run', 'count the recipients and render one sample; write nothing (with --local-time: recipients per UTC hour and per zone)')
    .option('--wait', 'show progress until the broadcast is done, paused or cancelled')
    .option('--pickup-timeout <seconds>', 'with --wait: fail (exit 1) if no daemon has started it this long after it is due', '60')
    .option('--json', 'print the result as JSON')
    .action((opts: SendOpts, cmd: Command) => send(opts, cmd));
  broadcast
    .command('list')
    .description('every broadcast, newest first')
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }, cmd: Command) =>
      withStore(cmd, async ({ store, broadcasts }) => {
        const docs = await broadcasts.list();
        // One read by `_id` per broadcast (the list is one document per broadcast, not per user).
        const feedback = new Map(await Promise.all(docs.map(async (d) => [d._id, await store.feedbackCounts.forBroadcast(d._id)] as const)));
        const viewOf = (d: BroadcastDoc) => ({ ...publicView(d), feedback: feedbackView(feedback.get(d._id) ?? NO_FEEDBACK, d.counters.sent) });
        process.stdout.write(opts.json ? `${JSON.stringify(docs.map(viewOf))}\n` : listTable(docs, feedback));
      }),
    );
  broadcast
    .command('status <id>')
    .description("a broadcast's status (with why it was paused, when the pause says), counters, bounces and complaints with their rates, and checkpoint")
    .option('--json', 'print JSON')
    .action((id: string, opts: { json?: boolean }, cmd: Command) =>
      withStore(cmd, async ({ store, broadcasts }) => {
        const doc = await mustGet(broadcasts, id);
        // The request with its reason where the store keeps one (an automatic pause says why).
        const req = broadcasts.controlRequest === undefined ? undefined : await broadcasts.controlRequest(id);
        const control = req?.action ?? (await broadcasts.control(id));
        const holder = doc.owner === undefined || doc.status !== 'running' ? undefined : ((await store.instances.heartbeatOf(doc.owner)) ?? null);
        const tally = await store.feedbackCounts.forBroadcast(id);
        // Zones with what is done, due now and waiting at this moment (by each zone's instant).
        const json = { ...publicView(doc), ...(doc.zones === undefined ? {} : { zones: zoneRows(doc, Date.now()) }), request: control ?? null, requestReason: req?.reason ?? null, feedback: feedbackView(tally, doc.counters.sent), ...(holder === undefined ? {} : { heartbeatAt: holder }) };
        process.stdout.write(opts.json ? `${JSON.stringify(json)}\n` : statusBlock(doc, control, { heartbeat: holder, feedback: tally, reason: req?.reason }));
      }),
    );
  for (const [action, what] of [
    ['pause', 'stop sending after the messages in flight; resume continues where it stopped'],
    ['resume', 'continue a paused broadcast'],
    ['cancel', 'stop sending for good; the counters keep what was sent before'],
  ] as const) {
    broadcast
      .command(`${action} <id>`)
      .description(what)
      .option('--no-wait', 'return once the request is recorded, without waiting for a daemon to apply it')
      .option('--timeout <seconds>', 'how long to wait for a daemon to apply it', '30')
      .option('--json', 'print the result as JSON')
      .action((id: string, opts: RequestOpts, cmd: Command) => request(cmd, id, action, opts));
  }
}

/**
 * The document as the CLI shows it in JSON (dates as ISO strings by JSON.stringify): the segment
 * is stored as validated JSON text and shown as the object it is, not a string inside a string.
 */
function publicView(doc: BroadcastDoc): Record<string, unknown> {
  const { _id, segment, ...rest } = doc;
  return { id: _id, ...rest, segment: JSON.parse(segment) as unknown };
}

async function withStore<T>(cmd: Command, fn: (s: { config: Config; store: Stores; broadcasts: BroadcastStore }) => Promise<T>): Promise<T> {
  const { config } = configFor(cmd);
  return withStores(config, (store) => fn({ config, store, broadcasts: store.broadcasts }));
}

async function mustGet(broadcasts: BroadcastStore, id: string): Promise<BroadcastDoc> {
  const doc = await broadcasts.get(id);
  if (doc === undefined) throw new MailwheelError(ErrorCodes.NOT_FOUND, `no broadcast with id "${id}" (see: mailwheel broadcast list)`);
  return doc;
}

function readText(file: string, option: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw badArgument(`${option}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** The segment from `--segment` or `--segment-file` (not both); a refusal names the file. */
function segmentOf(opts: SendOpts): Segment {
  if (opts.segment !== undefined && opts.segmentFile !== undefined) throw badArgument('--segment and --segment-file: give one of them, not both');
  if (opts.segmentFile === undefined) return parseSegment(opts.segment ?? '{}');
  const file = opts.segmentFile;
  let text: string;
  try {
    const size = statSync(file).size;
    // Checked before reading, so a wrong path to a huge file is not read into memory.
    if (size > MAX_SEGMENT_CHARS * 4) throw new SegmentError(`longer than ${MAX_SEGMENT_CHARS} characters`, '');
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof SegmentError) throw badArgument(`--segment-file ${file}: ${err.message}`);
    throw badArgument(`--segment-file: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    return parseSegment(text);
  } catch (err) {
    if (err instanceof SegmentError) throw badArgument(`--segment-file ${file}: ${err.message}`);
    throw err;
  }
}

async function send(opts: SendOpts, cmd: Command): Promise<void> {
  // Everything the operator gave is checked before connecting, so nothing is written for a
  // mistake (the segment allow-list names a refused operator).
  const text = readText(opts.textFile, '--text-file');
  const html = opts.htmlFile === undefined ? undefined : readText(opts.htmlFile, '--html-file');
  const templates = compileTemplates({ subject: opts.subject, text, html }, 'broadcast');
  const segment = segmentOf(opts);
  // An instant without an offset would be read in this machine's zone, which is rarely the one
  // the operator meant: refused, as README says (`--at ISO`, an instant).
  if (opts.at !== undefined && !/(?:Z|[+-]\d{2}(?::?\d{2})?)$/i.test(opts.at)) {
    throw badArgument(`--at: "${opts.at}" has no UTC offset; give one, e.g. ${opts.at}Z or ${opts.at}+01:00`);
  }
  const at = opts.at === undefined ? undefined : new Date(parseInstant(opts.at, '--at'));
  const wave = parseLocalTime(opts, Date.now());
  const pickupMs = parsePositiveInt(opts.pickupTimeout, '--pickup-timeout') * 1000;
  await withStore(cmd, async ({ config, store, broadcasts }) => {
    const recipients = store.recipients;
    const filter = recipientFilter(segment.filter, config.users.fields);
    try {
      await recipients.probe(filter);
    } catch (err) {
      throw badArgument(`segment: the server refused the query: ${(err as Error).message}`);
    }
    if (opts.dryRun) return dryRun({ config, store, recipients, segment, templates, localTime: wave?.wave, json: opts.json === true });
    // A typo'd field matches nobody, and the broadcast would "complete" to no one: say so.
    const matching = await recipients.count(filter);
    if (matching === 0) process.stderr.write(`warning: the segment matches 0 users (active, not unsubscribed): ${segment.json}; check the field names (mailwheel broadcast send --dry-run shows who would receive it)\n`);
    const daemons = await store.instances.live();
    const doc = await broadcasts.create({ subject: opts.subject.trim(), text, html, segment: segment.json, at, localTime: wave?.wave });
    if (opts.json) process.stdout.write(`${JSON.stringify({ id: doc._id, status: doc.status, at: doc.at ?? null, ...(wave === undefined ? {} : { localTime: wave.wave, firstAt: new Date(wave.first), lastAt: new Date(wave.last) }), matching, daemons: daemons.length })}\n`);
    else process.stdout.write(`${doc._id}\n`);
    if (wave !== undefined && wave.first <= Date.now()) {
      process.stderr.write(`warning: ${wave.wave.time} on ${wave.wave.date} has already passed in the zones furthest east (UTC+14 at ${new Date(wave.first).toISOString()}): recipients there get it as soon as a daemon starts it\n`);
    }
    if (daemons.length === 0) {
      process.stderr.write(`warning: no mailwheel daemon is running (no instance heartbeat within send.claimStaleMs, ${config.send.claimStaleMs / 1000} s): broadcast ${doc._id} is queued and starts when one runs (mailwheel start)\n`);
    } else if (!opts.json) {
      const when =
        wave !== undefined ? `each recipient gets it at ${wave.wave.time} local time on ${wave.wave.date}, from ${new Date(wave.first).toISOString()} (UTC+14) to ${new Date(wave.last).toISOString()} (UTC-12)`
        : at === undefined ? 'a running daemon starts it within seconds'
        : `a daemon starts it at ${at.toISOString()}`;
      process.stderr.write(`broadcast ${doc._id} queued; ${when}. Follow it with: mailwheel broadcast status ${doc._id}\n`);
    }
    if (!opts.wait) return;
    // Ctrl-C stops watching, not the broadcast.
    process.once('SIGINT', () => {
      process.stderr.write(`\nstopped watching; broadcast ${doc._id} goes on in the daemon (mailwheel broadcast status ${doc._id})\n`);
      process.exit(130);
    });
    // Nobody to take it up: give up after a bounded time (counted from its --at instant).
    const last = await follow(broadcasts, doc._id, { pickupDeadline: (at?.getTime() ?? Date.now()) + pickupMs });
    process.stderr.write(`broadcast ${doc._id} ${last.status}: ${progressText(last.counters, last.status)}; ${countsText(last.counters)}\n`);
    if (last.status === 'failed') process.exitCode = 1;
  });
}

async function dryRun(a: { config: Config; store: Stores; recipients: RecipientSource; segment: Segment; templates: TemplateSet; localTime: LocalTimeWave | undefined; json: boolean }): Promise<void> {
  const { config, store, recipients, segment, templates } = a;
  const suppressions = new SuppressionList(store.suppressions, { hardBounceLimit: config.send.hardBounceLimit });
  await suppressions.load();
  const counts = { matching: 0, recipients: 0, suppressed: 0, skipped: 0 };
  let firstSkip: string | undefined;
  let sample: Recipient | undefined;
  for await (const batch of recipients.stream(recipientFilter(segment.filter, config.users.fields), config.mongodb.batchSize)) {
    for (const doc of batch) {
      counts.matching++;
      const c = checkRecipient(doc, config.users.fields);
      if (c.kind !== 'valid') {
        counts.skipped++;
        firstSkip ??= c.kind === 'invalid' ? `${c.id}: ${c.reason}` : `${c.id}: no longer active`;
      } else if (suppressions.has(c.recipient.email, 'broadcast')) counts.suppressed++;
      else {
        counts.recipients++;
        sample ??= c.recipient;
      }
    }
  }
  const delivery = sample && { key: broadcastKey('dry-run', sample.id), kind: 'broadcast' as const, userId: sample.id, email: sample.email, name: sample.name, broadcastId: 'dry-run', dueAt: Date.now() };
  const rendered = delivery && renderDelivery(delivery, templates, 'dry-run.invalid');
  // Built as the daemon would, so an address or header problem shows now rather than per message.
  const mimeBytes = delivery && buildMessage(templates, { from: config.smtp.from }, delivery).raw.length;
  const wave = a.localTime && (await localTimeDryRun(recipients, recipientFilter(segment.filter, config.users.fields), a.localTime, config, Date.now()));
  if (a.json) {
    process.stdout.write(`${JSON.stringify({ dryRun: true, segment: JSON.parse(segment.json) as unknown, ...counts, ...(wave ? { localTime: wave.json } : {}), sample: rendered ?? null, mimeBytes: mimeBytes ?? null })}\n`);
    return;
  }
  const lines = [
    'dry run: nothing was written',
    `segment     ${segment.json}`,
    `matching    ${formatCount(counts.matching)} users (active, not unsubscribed, in the segment)`,
    `would send  ${formatCount(counts.recipients)}`,
    `suppressed  ${formatCount(counts.suppressed)}`,
    `skipped     ${formatCount(counts.skipped)}${firstSkip === undefined ? '' : ` (first: ${firstSkip})`}`,
    ...(wave?.lines ?? []),
  ];
  if (rendered === undefined) lines.push('sample      none: nobody would receive it');
  else {
    lines.push(`sample      to ${rendered.to.name === '' ? '' : `${rendered.to.name} `}<${rendered.to.address}> (user ${delivery?.userId ?? ''}), ${mimeBytes ?? 0} bytes of MIME`);
    lines.push(`Subject: ${rendered.subject}`, '', rendered.text.trimEnd());
    if (rendered.html !== undefined) lines.push('', '--- html ---', rendered.html.trimEnd());
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** What each request needs from the current status, and when it counts as applied. */
const REQUESTS: Record<ControlAction, { from: readonly BroadcastStatus[]; applied: (s: BroadcastStatus) => boolean; noop?: BroadcastStatus }> = {
  pause: { from: ['queued', 'running'], applied: (s) => s !== 'queued' && s !== 'running', noop: 'paused' },
  resume: { from: ['paused', 'queued', 'running'], applied: (s) => s !== 'paused' },
  cancel: { from: ['queued', 'running', 'paused'], applied: (s) => FINAL_STATUSES.has(s) },
};

async function request(cmd: Command, id: string, action: ControlAction, opts: RequestOpts): Promise<void> {
  const timeoutMs = parsePositiveInt(opts.timeout, '--timeout') * 1000;
  /** One result: a line of text, or with --json one object (`applied`: the daemon applied it). */
  const report = (text: string, doc: BroadcastDoc, result: 'noop' | 'requested' | 'applied' | 'not-applied'): void => {
    process.stdout.write(opts.json ? `${JSON.stringify({ id, action, result, applied: result === 'applied' || result === 'noop', status: doc.status, counters: doc.counters, ...(doc.at === undefined ? {} : { at: doc.at }) })}\n` : `${text}\n`);
  };
  await withStore(cmd, async ({ broadcasts }) => {
    const doc = await mustGet(broadcasts, id);
    const rule = REQUESTS[action];
    const control = await broadcasts.control(id);
    if (doc.status === rule.noop) {
      report(`broadcast ${id} is already ${doc.status}: ${progressText(doc.counters, doc.status)}; ${countsText(doc.counters)}`, doc, 'noop');
      return;
    }
    if (!rule.from.includes(doc.status)) throw new MailwheelError(ErrorCodes.INVALID_STATE, `cannot ${action} broadcast ${id}: it is ${doc.status}`);
    if (control === 'cancel') throw new MailwheelError(ErrorCodes.INVALID_STATE, `cannot ${action} broadcast ${id}: a cancel was requested`);
    if (action === 'resume' && doc.status !== 'paused' && control !== 'pause') {
      report(`broadcast ${id} is not paused (${doc.status})`, doc, 'noop');
      return;
    }
    await broadcasts.requestControl(id, action);
    // A resume of a pause that no daemon applied yet needs nothing more, nor one of a broadcast
    // whose --at instant is still ahead (it starts then).
    const notYet = action === 'resume' && doc.at !== undefined && doc.at.getTime() > Date.now();
    if (!opts.wait || (action === 'resume' && doc.status !== 'paused') || notYet) {
      report(`${action} of broadcast ${id} requested${notYet ? `; it starts at ${doc.at?.toISOString() ?? ''}` : ''}`, doc, 'requested');
      return;
    }
    const deadline = Date.now() + timeoutMs;
    let now = doc;
    while (!rule.applied(now.status) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      now = await mustGet(broadcasts, id);
    }
    if (!rule.applied(now.status)) {
      report(`${action} of broadcast ${id} requested; not applied after ${timeoutMs / 1000} s (is a mailwheel daemon running?). It is applied when a daemon takes the broadcast up.`, now, 'not-applied');
      return;
    }
    const before = action === 'cancel' && now.status === 'cancelled' ? ' before the cancel' : '';
    report(`broadcast ${id} ${now.status}: ${progressText(now.counters, now.status)}; ${countsText(now.counters)}${before}`, now, 'applied');
  });
}
