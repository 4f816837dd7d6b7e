/**
 * Which of some delivery keys are claimed already (a claim document exists: sent, failed, missed,
 * or being sent). Read-only; `mailwheel plan` uses it so a plan does not show sends that
 * `run-minute` or a daemon already took.
 *
 * The cost is bounded by the number of keys asked about, whatever the size of the deliveries
 * collection, by picking the cheaper of two reads:
 * - deliveries no larger than {@link SCAN_FACTOR} x the keys: one streamed scan of `_id`s, checked
 *   against the keys in memory;
 * - otherwise one `_id $in` query per {@link CHUNK} keys: point lookups on the unique `_id` index.
 * Why both: FerretDB v1 does not push `$in` down, so there every `$in` query is a full scan that
 * also tests each document against the whole list. Measured on FerretDB with 100,000 delivery
 * records and 13,063 planned sends, 2 loaded cores: 1,000-key `$in` chunks 320 s, one `$in` of all
 * keys 87-158 s, one scan 54 s against 10 s for the plan without the check (`--no-claims`).
 */
import type { Collection } from 'mongodb';
import type { DeliveryDoc } from './store.js';

const CHUNK = 1000;
const SCAN_FACTOR = 10;

export async function claimedKeys(deliveries: Collection<DeliveryDoc>, keys: readonly string[]): Promise<Set<string>> {
  const found = new Set<string>();
  if (keys.length === 0) return found;
  const size = await deliveries.estimatedDocumentCount();
  // An empty collection (a fresh install, a test) needs no reads at all.
  if (size === 0) return found;
  if (size <= keys.length * SCAN_FACTOR) {
    const wanted = new Set(keys);
    for await (const d of deliveries.find({}, { projection: { _id: 1 }, batchSize: 10_000 })) if (wanted.has(d._id)) found.add(d._id);
    return found;
  }
  for (let i = 0; i < keys.length; i += CHUNK) {
    const chunk = keys.slice(i, i + CHUNK);
    for (const d of await deliveries.find({ _id: { $in: chunk } }, { projection: { _id: 1 } }).toArray()) found.add(d._id);
  }
  return found;
}
