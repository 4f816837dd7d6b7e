/**
 * What `mailwheel broadcast ...` prints: status blocks, the list table, and the live progress of
 * `send --wait` (a `cli-progress` bar on stderr when it is a terminal, plain lines otherwise, so
 * logs and CI stay readable). Reads only; the store is the daemon's.
 */
import cliProgress from 'cli-progress';
import { ErrorCodes, Errors, MailwheelError } from '../errors.js';
import { feedbackRates } from '../core/feedback-rates.js';
import { FINAL_STATUSES, type BroadcastDoc, type BroadcastStore, type BroadcastCounters, type BroadcastStatus, type ControlAction } from '../ports/broadcasts.js';
import type { FeedbackTally } from '../ports/feedback.js';
import { formatCount } from './format.js';

const n = formatCount;
const iso = (d: Date | undefined): string => (d === undefined ? '-' : d.toISOString());

/** Users with an outcome (sent, failed, skipped, suppressed, missed). */
export function handledOf(c: BroadcastCounters): number {
  return c.sent + c.failed + c.skipped + c.suppressed + (c.missed ?? 0);
}

/** One zone as `broadcast status` shows it: done, due now (its instant passed), waiting (ahead). */
export interface ZoneRow {
  zone: string;
  at: Date;
  users: number;
  done: number;
  due: number;
  waiting: number;
}

/** The per-zone progress of a local-time or quiet-hours broadcast at `now` (empty for others). */
export function zoneRows(doc: Pick<BroadcastDoc, 'zones' | 'status'>, now: number): ZoneRow[] {
  const over = FINAL_STATUSES.has(doc.status);
  return (doc.zones ?? []).map((z) => {
    const left = over ? 0 : Math.max(0, z.users - z.done);
    const ahead = z.at.getTime() > now;
    return { zone: z.zone, at: z.at, users: z.users, done: z.done, due: ahead ? 0 : left, waiting: ahead ? left : 0 };
  });
}

/** The per-zone lines of `broadcast status`: a summary line, then one line per zone by instant. */
function zoneLines(rows: readonly ZoneRow[]): string[] {
  if (rows.length === 0) return [];
  const sum = (f: 'done' | 'due' | 'waiting') => rows.reduce((a, r) => a + r[f], 0);
  const head = ['ZONE', 'AT (UTC)', 'USERS', 'DONE', 'DUE', 'WAITING'];
  const body = rows.map((r) => [r.zone, r.at.toISOString().slice(0, 16).replace('T', ' '), n(r.users), n(r.done), n(r.due), n(r.waiting)]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] ?? '').length)));
  const line = (cells: string[]) => `  ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ')}`;
  return [`zones      ${rows.length}: done ${n(sum('done'))}, due now ${n(sum('due'))}, waiting ${n(sum('waiting'))}`, line(head), ...body.map(line)];
}

/**
 * `4,120 / 10,000 (41.2 %)`, or `4,120 users (counting)` while a run counts the total (a status
 * other than running, or none given: just `4,120 users`).
 */
export function progressText(c: BroadcastCounters, status?: BroadcastStatus): string {
  const done = handledOf(c);
  if (c.total === undefined) return status === 'running' ? `${n(done)} users (counting)` : `${n(done)} users`;
  if (c.total === 0) return `${n(done)} users`;
  return `${n(done)} / ${n(c.total)} (${((done * 100) / c.total).toFixed(1)} %)`;
}

export function countsText(c: BroadcastCounters): string {
  return `sent ${n(c.sent)}, failed ${n(c.failed)}, skipped ${n(c.skipped)}, suppressed ${n(c.suppressed)}${c.missed ? `, missed ${n(c.missed)}` : ''}`;
}

/** A rate as the CLI shows it: `0.60 %`, or `–` when there is none (nothing sent). */
export function rateText(rate: number | null): string {
  return rate === null ? '–' : `${(rate * 100).toFixed(2)} %`;
}

/** A broadcast's bounces and complaints with their rates over its sent messages (JSON and text). */
export function feedbackView(t: FeedbackTally, sent: number): FeedbackTally & { bounceRate: number | null; complaintRate: number | null } {
  return { hardBounces: t.hardBounces, softBounces: t.softBounces, complaints: t.complaints, ...feedbackRates(t, sent) };
}

/**
 * The status word, with an operator request that is not applied yet, and why a pause was asked
 * for when the request says (an automatic pause: `paused: complaint rate 0.60 % >= 0.30 % ...`).
 */
export function statusWord(doc: BroadcastDoc, control: ControlAction | undefined, reason?: string): string {
  const pending =
    control === undefined || FINAL_STATUSES.has(doc.status) ? undefined
    : control === 'pause' && doc.status !== 'paused' ? 'pause requested'
    : control === 'cancel' ? 'cancel requested'
    : control === 'resume' && doc.status === 'paused' ? 'resume requested'
    : undefined;
  const scheduled =
    doc.status === 'queued' && doc.at !== undefined && doc.at.getTime() > Date.now() ? `scheduled for ${iso(doc.at)}`
    : doc.status === 'running' && doc.nextAt !== undefined && doc.nextAt.getTime() > Date.now() ? `waiting until ${iso(doc.nextAt)}`
    : undefined;
  const why = reason === undefined || FINAL_STATUSES.has(doc.status) ? undefined : reason;
  if (why !== undefined && control === 'pause' && doc.status === 'paused') return scheduled === undefined ? `paused: ${why}` : `paused: ${why} (${scheduled})`;
  const extra = [pending === undefined || why === undefined ? pending : `${pending}: ${why}`, scheduled].filter((s) => s !== undefined);
  return extra.length === 0 ? doc.status : `${doc.status} (${extra.join(', ')})`;
}

/** What `broadcast status` shows besides the document: its feedback counts and the request's reason. */
export interface StatusExtras {
  /** The last heartbeat of the run's holder (undefined: not looked up; null: the instance is gone). */
  heartbeat?: Date | null | undefined;
  feedback?: FeedbackTally | undefined;
  /** Why the latest request was made (an automatic pause names the rate and threshold). */
  reason?: string | undefined;
}

/**
 * @param extras.heartbeat lets an operator tell a live run from one waiting to be taken over.
 */
export function statusBlock(doc: BroadcastDoc, control: ControlAction | undefined, extras: StatusExtras = {}): string {
  const { heartbeat, feedback } = extras;
  const c = doc.counters;
  const lines: Array<[string, string]> = [
    ['broadcast', doc._id],
    ['subject', JSON.stringify(doc.subject)],
    ['status', statusWord(doc, control, extras.reason)],
    ['progress', progressText(c, doc.status)],
    ['sent', n(c.sent)],
    ['failed', n(c.failed)],
    ['skipped', n(c.skipped)],
    ['suppressed', n(c.suppressed)],
  ];
  if (c.missed !== undefined) lines.push(['missed', `${n(c.missed)} (held by quiet hours beyond quietHours.broadcasts.maxHoldMinutes)`]);
  if (feedback !== undefined) {
    const f = feedbackView(feedback, c.sent);
    lines.push(['bounces', `${n(f.hardBounces)} hard (rate ${rateText(f.bounceRate)}), ${n(f.softBounces)} soft`]);
    lines.push(['complaints', `${n(f.complaints)} (rate ${rateText(f.complaintRate)})`]);
  }
  lines.push(
    ['segment', doc.segment],
    ['created', iso(doc.createdAt)],
  );
  if (doc.at !== undefined) lines.push(['at', iso(doc.at)]);
  if (doc.localTime !== undefined) lines.push(['local time', `${doc.localTime.time} on ${doc.localTime.date} in each recipient's zone`]);
  if (doc.nextAt !== undefined && doc.status === 'running') lines.push(['next wave', iso(doc.nextAt)]);
  if (doc.startedAt !== undefined) lines.push(['started', iso(doc.startedAt)]);
  if (doc.finishedAt !== undefined) lines.push(['finished', iso(doc.finishedAt)]);
  if (doc.checkpoint !== undefined) {
    const cp = doc.checkpoint;
    lines.push(['checkpoint', `${n(cp.processed)} users in ${n(cp.batches)} confirmed batches, last user ${cp.lastUserId ?? '-'} (${iso(cp.at)})`]);
  }
  if (doc.owner !== undefined) {
    const beat = heartbeat === undefined ? '' : heartbeat === null ? ' (instance gone)' : ` (heartbeat ${Math.max(0, Math.round((Date.now() - heartbeat.getTime()) / 1000))} s ago)`;
    lines.push(['run', `generation ${doc.gen} by ${doc.owner}${beat}`]);
  }
  if (doc.error !== undefined) lines.push(['error', doc.error]);
  lines.push(['updated', iso(doc.updatedAt)]);
  const zones = zoneLines(zoneRows(doc, Date.now()));
  return [...lines.map(([k, v]) => `${k.padEnd(11)}${v}`), ...zones].join('\n') + '\n';
}

/**
 * The list, newest first. With `feedback` (per broadcast id), a BOUNCE and a COMPLAINT column
 * show each one's rates (`–`: nothing sent).
 */
export function listTable(docs: readonly BroadcastDoc[], feedback?: ReadonlyMap<string, FeedbackTally>): string {
  if (docs.length === 0) return 'no broadcasts\n';
  const rates = (d: BroadcastDoc): string[] => {
    const t = feedback?.get(d._id);
    if (feedback === undefined) return [];
    if (t === undefined) return ['–', '–'];
    const f = feedbackView(t, d.counters.sent);
    return [rateText(f.bounceRate), rateText(f.complaintRate)];
  };
  const rows = docs.map((d) => [d._id, d.status, progressText(d.counters, d.status), n(d.counters.sent), n(d.counters.failed), ...rates(d), iso(d.createdAt).slice(0, 19) + 'Z', d.subject.length > 40 ? `${d.subject.slice(0, 39)}…` : d.subject]);
  const head = ['ID', 'STATUS', 'PROGRESS', 'SENT', 'FAILED', ...(feedback === undefined ? [] : ['BOUNCE', 'COMPLAINT']), 'CREATED', 'SUBJECT'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((v, i) => (i === r.length - 1 ? v : v.padEnd(widths[i] ?? 0))).join('  ');
  return [line(head), ...rows.map(line)].join('\n') + '\n';
}

export interface FollowOptions {
  intervalMs?: number;
  /** Where progress goes; default process.stderr. */
  stream?: NodeJS.WriteStream;
  /** Epoch ms: still queued then means no daemon took it up: fail rather than wait forever. */
  pickupDeadline?: number;
}

/** Sends per second over a sliding window of samples. */
class Rate {
  readonly #samples: Array<{ at: number; done: number }> = [];
  add(at: number, done: number): void {
    this.#samples.push({ at, done });
    while (this.#samples.length > 2 && at - (this.#samples[0]?.at ?? at) > 10_000) this.#samples.shift();
  }
  get perSecond(): number {
    const first = this.#samples[0];
    const last = this.#samples[this.#samples.length - 1];
    if (first === undefined || last === undefined || last.at === first.at) return 0;
    return ((last.done - first.done) * 1000) / (last.at - first.at);
  }
}

function eta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  return s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m` : s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/**
 * Shows a broadcast's progress until it is done, cancelled, failed or paused, and returns its
 * last state. A terminal gets a live bar; anything else a line every few seconds.
 */
export async function follow(store: Pick<BroadcastStore, 'get'>, id: string, opts: FollowOptions = {}): Promise<BroadcastDoc> {
  const out = opts.stream ?? process.stderr;
  const every = opts.intervalMs ?? 500;
  const rate = new Rate();
  const bar =
    out.isTTY === true
      ? new cliProgress.SingleBar(
          {
            stream: out,
            format: ' {bar} {percentage}% | {value}/{total} | sent {sent} failed {failed} skipped {skipped} suppressed {suppressed} | {rate}/s | ETA {etaText} | {status}',
            hideCursor: true,
            clearOnComplete: false,
            barsize: 24,
          },
          cliProgress.Presets.shades_classic,
        )
      : undefined;
  let started = false;
  let lastLine = 0;
  for (;;) {
    const doc = await store.get(id);
    if (doc === undefined) throw new Errors.NOT_FOUND(`broadcast ${id} disappeared`);
    const c = doc.counters;
    const done = handledOf(c);
    const now = Date.now();
    rate.add(now, c.sent + c.failed);
    const total = Math.max(c.total ?? 0, done);
    const perSecond = rate.perSecond;
    const payload = { sent: n(c.sent), failed: n(c.failed), skipped: n(c.skipped), suppressed: n(c.suppressed), rate: formatCount(perSecond), etaText: c.total === undefined ? '?' : eta((total - done) / perSecond), status: doc.status };
    const over = FINAL_STATUSES.has(doc.status) || doc.status === 'paused';
    if (bar !== undefined) {
      if (!started) bar.start(total || 1, done, payload);
      else {
        bar.setTotal(total || 1);
        bar.update(done, payload);
      }
      started = true;
      if (over) bar.stop();
    } else if (over || now - lastLine >= 5_000) {
      lastLine = now;
      out.write(`${doc._id}: ${doc.status}, ${progressText(c, doc.status)}: ${countsText(c)}, ${payload.rate}/s, ETA ${payload.etaText}\n`);
    }
    if (over) return doc;
    if (doc.status === 'queued' && opts.pickupDeadline !== undefined && now > opts.pickupDeadline) {
      bar?.stop();
      throw new MailwheelError(ErrorCodes.INVALID_STATE, `broadcast ${id} is still queued ${Math.round((now - (doc.at ?? doc.createdAt).getTime()) / 1000)} s after it was due: no mailwheel daemon took it up (is one running? mailwheel start). It stays queued and starts when one runs.`);
    }
    await new Promise((r) => setTimeout(r, every));
  }
}
