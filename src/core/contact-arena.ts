/**
 * Email and name of every scheduled user, packed as UTF-8 in one growing byte array and indexed
 * by the registry's user row (issue 17).
 *
 * Why held, not read when a minute fires: reading them at claim time was built and measured. On
 * MongoDB a `$in` on `_id` is index-backed and cheap; on FerretDB v1 (the server this project is
 * measured on) every read by id is a scan of the users collection (~4 µs per stored user for one
 * exact `_id` lookup, ~155 µs per stored user for a streamed read), so a daemon with 1,000,000
 * users would need minutes of reading for every minute with mail due. Held here they cost about
 * the bytes themselves (~35 B a user plus 12 B of offsets) and no garbage-collected objects: a
 * million JS strings would be a million objects for every major GC to mark.
 *
 * A change appends the new bytes and leaves the old ones as garbage; when garbage outgrows the
 * live bytes the array is compacted (rows copied in row order), so the array stays under about
 * twice what is live and a compaction is amortised O(1) per change.
 */
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** No contact stored for a row. */
const NONE = -1;
const MIN_BYTES = 1 << 16;

export class ContactArena {
  #bytes = new Uint8Array(MIN_BYTES);
  /** Bytes appended so far (live and garbage). */
  #used = 0;
  /** Bytes referenced by rows. */
  #live = 0;
  /** Per row: where its bytes start (NONE: no contact), the email's bytes, the name's (NONE: no name). */
  #start = new Int32Array(1024).fill(NONE);
  #emailLen = new Int32Array(1024);
  #nameLen = new Int32Array(1024);
  /** Where a contact is encoded before it is compared and stored. */
  #scratch = new Uint8Array(1024);
  /** Compactions so far (for tests). */
  compactions = 0;

  /** Bytes appended and not yet reclaimed by a compaction (live + garbage). */
  get usedBytes(): number {
    return this.#used;
  }

  get liveBytes(): number {
    return this.#live;
  }

  /**
   * Stores a row's email and name. Writing what the row already holds changes nothing (the sync
   * offers every user's contact at each full sync; only real changes append bytes).
   */
  set(row: number, email: string, name: string | undefined): void {
    this.#ensureRow(row);
    // Encoded into a scratch buffer first, so an unchanged contact (every user at every full
    // sync) is compared without touching the arena. Worst case 3 bytes per UTF-16 unit.
    const need = 3 * (email.length + (name?.length ?? 0));
    if (this.#scratch.length < need) this.#scratch = new Uint8Array(Math.max(need, 2 * this.#scratch.length));
    const e = encoder.encodeInto(email, this.#scratch).written;
    const n = name === undefined ? 0 : encoder.encodeInto(name, this.#scratch.subarray(e)).written;
    const nameLen = name === undefined ? NONE : n;
    const old = this.#start[row] as number;
    if (old !== NONE && this.#emailLen[row] === e && this.#nameLen[row] === nameLen && this.#same(old, e + n)) return;
    if (old !== NONE) {
      // Garbage from here on: a compaction made by the reserve below must not copy it.
      this.#live -= this.#lengthOf(row);
      this.#start[row] = NONE;
    }
    this.#reserve(e + n);
    const at = this.#used;
    this.#bytes.set(this.#scratch.subarray(0, e + n), at);
    this.#start[row] = at;
    this.#emailLen[row] = e;
    this.#nameLen[row] = nameLen;
    this.#used += e + n;
    this.#live += e + n;
  }

  /** The row's email ('' when none is stored). */
  email(row: number): string {
    const s = this.#startOf(row);
    return s === NONE ? '' : decoder.decode(this.#bytes.subarray(s, s + (this.#emailLen[row] as number)));
  }

  /** The row's name (undefined when none was given or none is stored). */
  name(row: number): string | undefined {
    const s = this.#startOf(row);
    const len = this.#nameLen[row] as number;
    if (s === NONE || len === NONE) return undefined;
    const from = s + (this.#emailLen[row] as number);
    return decoder.decode(this.#bytes.subarray(from, from + len));
  }

  has(row: number): boolean {
    return this.#startOf(row) !== NONE;
  }

  /** Forgets a row's contact (the user left the registry); its bytes become garbage. */
  clear(row: number): void {
    if (this.#startOf(row) === NONE) return;
    this.#live -= this.#lengthOf(row);
    this.#start[row] = NONE;
  }

  #startOf(row: number): number {
    return row < this.#start.length ? (this.#start[row] as number) : NONE;
  }

  #lengthOf(row: number): number {
    return (this.#emailLen[row] as number) + Math.max(0, this.#nameLen[row] as number);
  }

  /** True when the arena's bytes at `at` equal the scratch buffer's first `len`. */
  #same(at: number, len: number): boolean {
    const bytes = this.#bytes;
    const scratch = this.#scratch;
    for (let i = 0; i < len; i++) if (bytes[at + i] !== scratch[i]) return false;
    return true;
  }

  #ensureRow(row: number): void {
    if (row < this.#start.length) return;
    const size = Math.max(row + 1, Math.ceil(this.#start.length * 1.5));
    const start = new Int32Array(size).fill(NONE);
    start.set(this.#start);
    const emailLen = new Int32Array(size);
    emailLen.set(this.#emailLen);
    const nameLen = new Int32Array(size);
    nameLen.set(this.#nameLen);
    this.#start = start;
    this.#emailLen = emailLen;
    this.#nameLen = nameLen;
  }

  /** Room for `need` more bytes: compacts when garbage outgrows the live bytes, else grows by 1.5x. */
  #reserve(need: number): void {
    if (this.#used + need <= this.#bytes.length) return;
    const garbage = this.#used - this.#live;
    if (garbage > this.#live) {
      this.#compact(Math.max(MIN_BYTES, Math.ceil((this.#live + need) * 1.5)));
      return;
    }
    const size = Math.max(this.#used + need, Math.ceil(this.#bytes.length * 1.5));
    const bytes = new Uint8Array(size);
    bytes.set(this.#bytes.subarray(0, this.#used));
    this.#bytes = bytes;
  }

  #compact(size: number): void {
    const bytes = new Uint8Array(size);
    let at = 0;
    for (let row = 0; row < this.#start.length; row++) {
      const s = this.#start[row] as number;
      if (s === NONE) continue;
      const len = this.#lengthOf(row);
      bytes.set(this.#bytes.subarray(s, s + len), at);
      this.#start[row] = at;
      at += len;
    }
    this.#bytes = bytes;
    this.#used = at;
    this.#live = at;
    this.compactions++;
  }
}
