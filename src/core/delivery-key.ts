/**
 * Delivery keys (docs/ARCHITECTURE.md "Claims"): one per message that may ever be sent, so that claiming the
 * key decides, once and for all instances, who sends it.
 *
 * `userId` is the unambiguous encoding of the user's `_id` (`user-id.ts`), so users whose ids
 * print alike (`1` and `"1"`) get different keys. A long id goes in as its digest: the key is
 * also the `X-Mailwheel-Key` header, and a header line must stay under 998 characters.
 */
import { compactUserId, digestUserId } from './user-id.js';

/** `s:<userId>:<HH:MM>:<local YYYY-MM-DD>`: one scheduled email per slot per local day. */
export function scheduledKey(userId: string, time: string, localDate: string): string {
  return `s:${compactUserId(userId)}:${time}:${localDate}`;
}

/**
 * `b:<broadcastId>:<userId>`: one broadcast email per user. The user id ends the key, and the
 * claim store writes `<key>#done` and `<key>#<generation>` next to it: the key of a user `x#done`
 * would be the done record of user `x`, so an id with a `#` goes in as its digest.
 */
export function broadcastKey(broadcastId: string, userId: string): string {
  return `b:${broadcastId}:${userId.includes('#') ? digestUserId(userId) : compactUserId(userId)}`;
}
