/**
 * One minute's bucket of the job registry (job-table.ts): the jobs due in that minute, as
 * (job row, generation) pairs appended to one `Int32Array`.
 *
 * Why not a linked list of rows: removing a row from a doubly linked list writes both neighbours'
 * links, and at a million jobs those neighbours are two random rows, i.e. two cache misses per
 * removed job. That was most of what made a cancel at 1M jobs about twice as slow as at 10k
 * (issue 17, second round). Here removal is lazy: the registry bumps the row's generation (which
 * it does anyway when a row is freed or moved) and {@link Bucket.live} goes down by one; the pair
 * left behind is dead and is skipped when the minute is taken. Removal touches only the row and
 * this small object, whatever the bucket's size.
 *
 * Dead pairs never outlive their use: a bucket whose last live job goes is dropped with every pair
 * in it (a past minute or a removed user's minute is not waited for), and a bucket where dead pairs
 * outnumber live ones is compacted, so a bucket holds at most twice its live jobs. Each
 * compaction looks at fewer than twice as many pairs as removals since the previous one: O(1)
 * amortized per removal.
 */

/** Pairs a new bucket has room for (most real buckets are small: one minute of one zone offset). */
const INITIAL_PAIRS = 4;

export class Bucket {
  /** `[row, gen, row, gen, ...]`; pairs `0 .. len - 1` are used. */
  pairs = new Int32Array(INITIAL_PAIRS * 2);
  /** Pairs appended and not compacted away (live and dead). */
  len = 0;
  /** Pairs whose job is still in this bucket. */
  live = 0;

  append(row: number, gen: number): void {
    if (this.len * 2 === this.pairs.length) this.#resize(Math.ceil(this.len * 1.5));
    this.pairs[this.len * 2] = row;
    this.pairs[this.len * 2 + 1] = gen;
    this.len++;
    this.live++;
  }

  /**
   * True when dead pairs outnumber live ones. Compacting then looks at fewer than twice as many
   * pairs as died since the last compaction (each death is one removal), so no minimum size is
   * needed for the cost to stay O(1) per removal, and a bucket never holds more than twice its
   * live jobs, small or large.
   */
  get wantsCompaction(): boolean {
    return this.len - this.live > this.live;
  }

  /**
   * Keeps only the pairs `isLive(row, gen)` accepts, in order, and gives back the room the dead
   * ones took when that is more than half the array. @returns the pairs looked at.
   */
  compact(isLive: (row: number, gen: number) => boolean): number {
    const looked = this.len;
    const p = this.pairs;
    let kept = 0;
    for (let i = 0; i < this.len; i++) {
      const row = p[i * 2] as number;
      const gen = p[i * 2 + 1] as number;
      if (!isLive(row, gen)) continue;
      p[kept * 2] = row;
      p[kept * 2 + 1] = gen;
      kept++;
    }
    this.len = kept;
    if (kept * 2 < p.length / 2) this.#resize(Math.max(INITIAL_PAIRS, Math.ceil(kept * 1.5)));
    return looked;
  }

  #resize(pairs: number): void {
    const next = new Int32Array(pairs * 2);
    next.set(this.pairs.subarray(0, this.len * 2));
    this.pairs = next;
  }
}
