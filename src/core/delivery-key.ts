/**
 * Delivery keys (docs/ARCHITECTURE.md "Claims"): one per message that may ever be sent, so that claiming the
 * key decides, once and for all instances, who sends it.
 */

/** `s:<userId>:<HH:MM>:<local YYYY-MM-DD>`: one scheduled email per slot per local day. */
export function scheduledKey(userId: string, time: string, localDate: string): string {
  return `s:${userId}:${time}:${localDate}`;
}

/** `b:<broadcastId>:<userId>`: one broadcast email per user. */
export function broadcastKey(broadcastId: string, userId: string): string {
  return `b:${broadcastId}:${userId}`;
}
