/**
 * Growable packed rows with a free list: the storage under the job registry. Freed rows are reused
 * before the array grows. A typed array rather than one object per row because a million small
 * objects cost ~100 bytes each in headers and pointers and every one of them is traced by each
 * major GC; a row here costs only its fields' bytes, and the collector never looks inside.
 */

/**
 * Rows of int32 fields stored interleaved in one `Int32Array` (row * stride + field): the fields
 * of one row share a cache line, so touching a row costs one memory fetch rather than one per
 * field; with a million rows most fetches miss the cache, and that is what would make an operation
 * slower at 1M rows than at 10k.
 */
export class PackedRows {
  data: Int32Array;
  readonly stride: number;
  #capacity: number;
  /** Rows handed out so far (the high-water mark); rows below it are live or on the free list. */
  #top = 0;
  #free: Int32Array;
  #freeCount = 0;

  constructor(stride: number, initial = 1024) {
    this.stride = stride;
    this.#capacity = initial;
    this.data = new Int32Array(initial * stride);
    this.#free = new Int32Array(64);
  }

  /** Live rows. */
  get live(): number {
    return this.#top - this.#freeCount;
  }

  /** Rows allocated (live, free and spare), for memory accounting. */
  get capacity(): number {
    return this.#capacity;
  }

  /** Rows handed out at least once (every live row is below it). */
  get top(): number {
    return this.#top;
  }

  get(row: number, field: number): number {
    return this.data[row * this.stride + field] as number;
  }

  set(row: number, field: number, value: number): void {
    this.data[row * this.stride + field] = value;
  }

  /**
   * An instant in ms stored exactly in two int32 fields (the epoch minute in `minuteField`, the ms
   * within it in `msField`): a ms count does not fit in an int32, an epoch minute does.
   */
  getInstant(row: number, minuteField: number, msField: number): number {
    return this.get(row, minuteField) * 60_000 + this.get(row, msField);
  }

  setInstant(row: number, minuteField: number, msField: number, ms: number): void {
    const minute = Math.floor(ms / 60_000);
    this.set(row, minuteField, minute);
    this.set(row, msField, ms - minute * 60_000);
  }

  /** A row index, a freed one if any; its fields hold whatever the last owner left. */
  alloc(): number {
    if (this.#freeCount > 0) return this.#free[--this.#freeCount] as number;
    if (this.#top === this.#capacity) this.#grow();
    return this.#top++;
  }

  release(row: number): void {
    if (this.#freeCount === this.#free.length) {
      const bigger = new Int32Array(this.#free.length * 2);
      bigger.set(this.#free);
      this.#free = bigger;
    }
    this.#free[this.#freeCount++] = row;
  }

  /**
   * By half again rather than doubling: a full sync of a million users reaches its size by
   * growing, and a doubling would leave up to half of the array unused (and briefly hold old and
   * new copies side by side, the sync's peak).
   */
  #grow(): void {
    const next = Math.ceil(this.#capacity * 1.5);
    const bigger = new Int32Array(next * this.stride);
    bigger.set(this.data);
    this.data = bigger;
    this.#capacity = next;
  }
}

/** A min-heap of numbers (the registry's bucket minutes). */
export function heapPush(heap: number[], value: number): void {
  heap.push(value);
  let i = heap.length - 1;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    const p = heap[parent] as number;
    if (p <= value) break;
    heap[i] = p;
    i = parent;
  }
  heap[i] = value;
}

export function heapPop(heap: number[]): void {
  const last = heap.pop();
  if (last === undefined || heap.length === 0) return;
  let i = 0;
  const n = heap.length;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= n) break;
    const r = l + 1;
    let c = l;
    if (r < n && (heap[r] as number) < (heap[l] as number)) c = r;
    const cv = heap[c] as number;
    if (cv >= last) break;
    heap[i] = cv;
    i = c;
  }
  heap[i] = last;
}
