/**
 * The registry's index from user id to user row (job-table.ts): open addressing with linear
 * probing in one `Int32Array` of row + 1 (0 = empty, -1 = deleted), keys compared against the
 * registry's own row -> id array, so no id is stored twice.
 *
 * Why not a `Map<string, number>`: at a million jobs a cancel's time is a chain of dependent cache
 * misses, and a V8 Map lookup is two of them (the hash bucket, then the entry holding key and
 * value) before the user row can be read; here it is one (the slot holds the row), and the key
 * check reads the id array in parallel with the row. It also costs 4 bytes per slot at a load
 * between 3/16 and 1/2 (8-21 bytes per user) instead of about 30 bytes per Map entry.
 * Issue 17, second round (measured in the NOTES of that round).
 */

const EMPTY = 0;
const DELETED = -1;
const MIN_SLOTS = 16;

/**
 * FNV-1a over the id's UTF-16 code units, with a final mix so the low bits (the slot) depend on
 * every character. Ids come from the user store, not from whoever sends mail, so no keyed hash.
 */
function hashOf(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  return Math.imul(h, 0x45d9f3b) ^ (h >>> 13);
}

export class UserIndex {
  #slots = new Int32Array(MIN_SLOTS);
  #mask = MIN_SLOTS - 1;
  #size = 0;
  /** Slots marked deleted: probes pass over them; they are cleared by the next rehash. */
  #deleted = 0;
  /** The registry's id of each user row (the index reads it, never writes it). */
  readonly #idOf: readonly string[];

  constructor(idOf: readonly string[]) {
    this.#idOf = idOf;
  }

  get size(): number {
    return this.#size;
  }

  /** Slots allocated (for memory figures). */
  get slots(): number {
    return this.#slots.length;
  }

  get(id: string): number | undefined {
    const slots = this.#slots;
    const mask = this.#mask;
    for (let i = hashOf(id) & mask; ; i = (i + 1) & mask) {
      const v = slots[i] as number;
      if (v === EMPTY) return undefined;
      if (v !== DELETED && this.#idOf[v - 1] === id) return v - 1;
    }
  }

  /** Adds `id` at `row`. The caller knows `id` is absent and has set `idOf[row] = id` already. */
  set(id: string, row: number): void {
    if ((this.#size + this.#deleted + 1) * 2 > this.#slots.length) this.#rehash(this.#size + 1);
    const slots = this.#slots;
    const mask = this.#mask;
    let i = hashOf(id) & mask;
    while ((slots[i] as number) > 0) i = (i + 1) & mask;
    if (slots[i] === DELETED) this.#deleted--;
    slots[i] = row + 1;
    this.#size++;
  }

  /** Removes `id` (a cancel touches only its own slot: no neighbour is moved or rehashed). */
  delete(id: string): boolean {
    const slots = this.#slots;
    const mask = this.#mask;
    for (let i = hashOf(id) & mask; ; i = (i + 1) & mask) {
      const v = slots[i] as number;
      if (v === EMPTY) return false;
      if (v !== DELETED && this.#idOf[v - 1] === id) {
        slots[i] = DELETED;
        this.#size--;
        this.#deleted++;
        // Give back room after mass removals (a partition let go); O(1) amortized like growing.
        if (this.#size * 8 < slots.length && slots.length > MIN_SLOTS) this.#rehash(this.#size);
        return true;
      }
    }
  }

  /** Rebuilds the table for `live` users at a load of at most one half, dropping deleted marks. */
  #rehash(live: number): void {
    let size = MIN_SLOTS;
    while (size < live * 2) size *= 2;
    if (live * 8 > size * 3) size *= 2; // load <= 3/8: at least 1/8 of the slots fill before the next rehash
    const old = this.#slots;
    const slots = new Int32Array(size);
    const mask = size - 1;
    for (let k = 0; k < old.length; k++) {
      const v = old[k] as number;
      if (v <= 0) continue;
      let i = hashOf(this.#idOf[v - 1] as string) & mask;
      while (slots[i] !== EMPTY) i = (i + 1) & mask;
      slots[i] = v;
    }
    this.#slots = slots;
    this.#mask = mask;
    this.#deleted = 0;
  }
}
