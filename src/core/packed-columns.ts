/**
 * Growable typed-array columns with a free list: the storage under the job registry. A row is an
 * index into every column; freed rows are reused before the columns grow. Typed arrays rather than
 * one object per row because a million small objects cost ~100 bytes each in headers and pointers
 * and every one of them is traced by each major GC; a row here costs only its fields' bytes, and
 * the collector never looks inside.
 */

type Column = Int32Array | Uint16Array | Uint8Array | Float64Array;
type ColumnKind = 'i32' | 'u16' | 'u8' | 'f64';

function make(kind: ColumnKind, n: number): Column {
  switch (kind) {
    case 'i32':
      return new Int32Array(n);
    case 'u16':
      return new Uint16Array(n);
    case 'u8':
      return new Uint8Array(n);
    case 'f64':
      return new Float64Array(n);
  }
}

/** Rows of fixed-width fields; `cols[name]` is re-read after {@link alloc} (it may have grown). */
export class PackedRows<K extends string> {
  readonly cols: Record<K, Column>;
  readonly #kinds: Record<K, ColumnKind>;
  #capacity: number;
  /** Rows handed out so far (the high-water mark); rows below it are live or on the free list. */
  #top = 0;
  #free: Int32Array;
  #freeCount = 0;

  constructor(kinds: Record<K, ColumnKind>, initial = 1024) {
    this.#kinds = kinds;
    this.#capacity = initial;
    this.cols = {} as Record<K, Column>;
    for (const k of Object.keys(kinds) as K[]) this.cols[k] = make(kinds[k], initial);
    this.#free = new Int32Array(64);
  }

  /** Live rows. */
  get live(): number {
    return this.#top - this.#freeCount;
  }

  /** Rows allocated in the columns (live, free and spare), for memory accounting. */
  get capacity(): number {
    return this.#capacity;
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
   * growing, and a doubling would leave up to half of the largest columns unused (and briefly
   * hold old and new copies side by side, the sync's peak).
   */
  #grow(): void {
    const next = Math.ceil(this.#capacity * 1.5);
    for (const k of Object.keys(this.#kinds) as K[]) {
      const bigger = make(this.#kinds[k], next);
      bigger.set(this.cols[k]);
      this.cols[k] = bigger;
    }
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
