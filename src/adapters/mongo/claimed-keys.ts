/**
 * Which of some delivery keys are claimed already (a claim document exists: sent, failed, missed,
 * or being sent). Read-only; `mailwheel plan` uses it so a plan does not show sends that
 * `run-minute` or a daemon already took. One `_id $in` query per chunk of keys: point lookups on
 * the unique `_id` index on MongoDB, bounded by the number of keys asked about, never by the size
 * of the deliveries collection's history.
 */
import type { Collection } from 'mongodb';
import type { DeliveryDoc } from './store.js';

const CHUNK = 1000;

export async function claimedKeys(deliveries: Collection<DeliveryDoc>, keys: readonly string[]): Promise<Set<string>> {
  const found = new Set<string>();
  if (keys.length === 0) return found;
  // An empty collection (a fresh install, a test) needs no lookups at all.
  if ((await deliveries.estimatedDocumentCount()) === 0) return found;
  for (let i = 0; i < keys.length; i += CHUNK) {
    const chunk = keys.slice(i, i + CHUNK);
    for (const d of await deliveries.find({ _id: { $in: chunk } }, { projection: { _id: 1 } }).toArray()) found.add(d._id);
  }
  return found;
}
