/**
 * Which partition a user belongs to (docs/ARCHITECTURE.md "Several instances"): a stable hash of
 * the user id, modulo the partition count. Stable means the same answer on every instance, every
 * version and every platform, so it is written out here (32-bit FNV-1a over the id's UTF-8 bytes)
 * rather than taken from a library whose output could change. Changing it would move every user
 * to another partition at once: it never changes.
 */
const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
const encoder = new TextEncoder();

/** 32-bit FNV-1a of `text`'s UTF-8 bytes, as an unsigned integer. */
export function fnv1a32(text: string): number {
  let h = FNV_OFFSET;
  for (const byte of encoder.encode(text)) {
    h ^= byte;
    h = Math.imul(h, FNV_PRIME) >>> 0;
  }
  return h >>> 0;
}

/** The partition (0 .. partitions-1) of the user whose registry id is `userId`. */
export function partitionOf(userId: string, partitions: number): number {
  return fnv1a32(userId) % partitions;
}
