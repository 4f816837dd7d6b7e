/**
 * Decodes a broadcast document as read back from MongoDB into the `BroadcastDoc` the rest of the
 * code is typed against. What the server returns is not what was written: the driver stores an
 * `undefined` field as `null` (the run publishes `counters.total: undefined` while the segment is
 * still being counted, which comes back as `null`), and a document edited by hand or written by
 * an older version can hold anything. So every optional field maps `null` to absent here, at the
 * adapter boundary, and a document that does not fit fails with one error naming the broadcast
 * and the field instead of a TypeError somewhere in a view.
 */
import { z } from 'zod';
import { Errors } from '../../errors.js';

/** An optional field: absent, `undefined` or `null` all decode to absent. */
const optional = <T extends z.ZodType>(schema: T) => schema.nullish().transform((v) => v ?? undefined);
const count = z.number().int().nonnegative();

const counters = z.object({
  total: optional(count),
  sent: count,
  failed: count,
  skipped: count,
  suppressed: count,
});

const localTime = z.object({ time: z.string(), date: z.string() });

const checkpoint = z.object({
  batches: count,
  processed: count,
  lastUserId: z.string().nullish().transform((v) => v ?? null),
  at: z.date(),
});

const broadcast = z.object({
  _id: z.string(),
  subject: z.string(),
  text: z.string(),
  html: optional(z.string()),
  segment: z.string(),
  status: z.enum(['queued', 'running', 'paused', 'cancelled', 'done', 'failed']),
  at: optional(z.date()),
  localTime: optional(localTime),
  createdAt: z.date(),
  counters,
  checkpoint: optional(checkpoint),
  gen: count,
  owner: optional(z.string()),
  startedAt: optional(z.date()),
  finishedAt: optional(z.date()),
  error: optional(z.string()),
  updatedAt: z.date(),
});

/** Drops keys whose value is undefined, so a decoded document has no `key: undefined` entries. */
function compact<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/** The decoded document; structurally the store's `BroadcastDoc` (not imported: no cycle). */
export type DecodedBroadcast = z.output<typeof broadcast>;

export function decodeBroadcast(raw: unknown): DecodedBroadcast {
  const parsed = broadcast.safeParse(raw);
  if (!parsed.success) {
    const id = typeof (raw as { _id?: unknown } | null)?._id === 'string' ? (raw as { _id: string })._id : '?';
    const issue = parsed.error.issues[0];
    const where = issue === undefined || issue.path.length === 0 ? 'document' : issue.path.join('.');
    throw new Errors.DOCUMENT_INVALID(`broadcast ${id}: stored document is malformed at ${where}: ${issue?.message ?? 'invalid'}`);
  }
  const d = parsed.data;
  return compact({ ...d, counters: compact(d.counters) });
}
