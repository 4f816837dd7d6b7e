/**
 * A first-in first-out queue with O(1) `shift`. A plain array's `shift` moves every element, which
 * is O(n) on the send queue's large backlogs (a peak minute can queue tens of thousands); here a
 * head index moves instead, and the consumed prefix is dropped once it is the larger half.
 */
export class Fifo<T> {
  #items: T[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  /** Puts `item` back at the front (a message that must go next). */
  unshift(item: T): void {
    if (this.#head > 0) this.#items[--this.#head] = item;
    else this.#items.unshift(item);
  }

  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head++];
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  /** Removes and returns up to `n` items from the front. */
  take(n: number): T[] {
    const out: T[] = [];
    while (out.length < n && this.length > 0) out.push(this.shift() as T);
    return out;
  }

  /** Keeps only the items for which `keep` is true (O(n); for rare removals). */
  retain(keep: (item: T) => boolean): void {
    this.#items = this.#items.slice(this.#head).filter(keep);
    this.#head = 0;
  }
}

/**
 * One FIFO per class, served in a fixed order of classes: the send queue keeps scheduled mail
 * ahead of broadcasts with it (a broadcast never waits in front of a user's slot).
 */
export class OrderedFifos<K extends string, T> {
  readonly #order: readonly K[];
  readonly #fifos = new Map<K, Fifo<T>>();

  /** @param order the classes, first served first */
  constructor(order: readonly K[]) {
    this.#order = order;
    for (const k of order) this.#fifos.set(k, new Fifo<T>());
  }

  /** Items across every class. */
  get length(): number {
    let n = 0;
    for (const f of this.#fifos.values()) n += f.length;
    return n;
  }

  /** The FIFO of class `k`. */
  of(k: K): Fifo<T> {
    return this.#fifos.get(k) as Fifo<T>;
  }

  /** The first class, in order, that holds an item. */
  firstNonEmpty(): K | undefined {
    return this.#order.find((k) => this.of(k).length > 0);
  }

  /** The next item of the first non-empty class. */
  shift(): T | undefined {
    const k = this.firstNonEmpty();
    return k === undefined ? undefined : this.of(k).shift();
  }

  /** Keeps only the items for which `keep` is true, in every class. */
  retain(keep: (item: T) => boolean): void {
    for (const f of this.#fifos.values()) f.retain(keep);
  }
}
