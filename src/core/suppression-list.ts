/**
 * The suppression list as the sending path sees it: an in-memory set of lower-cased addresses,
 * so checking a recipient costs a hash lookup rather than a query (FerretDB v1 scans the whole
 * collection for anything but an `_id` lookup). The store is the durable copy; the set is loaded
 * from it at start-up and updated by this process's own unsubscribes and hard bounces.
 *
 * Other instances' suppressions reach this set only through `load()`, so a multi-instance
 * deployment reloads it periodically.
 */
import type { SuppressionEntry, SuppressionScope, SuppressionStore } from '../ports/index.js';
import type { DeliveryKind } from './types.js';

export interface SuppressionListOptions {
  /** Hard bounces after which an address is suppressed (config `send.hardBounceLimit`), >= 1. */
  hardBounceLimit: number;
}

export interface HardBounceResult {
  /** Hard bounces recorded for the address so far, this one included. */
  count: number;
  /** True when THIS bounce put the address on the list (emit one `suppressed` event for it). */
  suppressed: boolean;
}

/** The one spelling of an address used as a key, in memory and in the store. */
export function normaliseEmail(email: string): string {
  return email.trim().toLowerCase();
}

export class SuppressionList {
  readonly #store: SuppressionStore;
  readonly #limit: number;
  /** Addresses that get no mail at all. */
  #set = new Set<string>();
  /** Addresses that get no broadcast (marketing) mail but their own scheduled mail (scope `marketing`). */
  #marketing = new Set<string>();
  /** While a load runs: addresses added meanwhile, kept when the loaded set replaces the old one. */
  #addedDuringLoad: Map<string, SuppressionScope> | undefined;
  #loading: Promise<number> | undefined;

  constructor(store: SuppressionStore, options: SuppressionListOptions) {
    if (!Number.isInteger(options.hardBounceLimit) || options.hardBounceLimit < 1) {
      throw new RangeError(`SuppressionList: hardBounceLimit must be an integer >= 1, got ${options.hardBounceLimit}`);
    }
    this.#store = store;
    this.#limit = options.hardBounceLimit;
  }

  /**
   * (Re)loads the set from the store and returns its size. The new set replaces the old one only
   * once complete, so `has()` keeps answering from the old set meanwhile; a concurrent call joins
   * the running load.
   */
  load(): Promise<number> {
    this.#loading ??= this.#load().finally(() => {
      this.#loading = undefined;
      this.#addedDuringLoad = undefined;
    });
    return this.#loading;
  }

  /**
   * Whether `email` must not get mail of `kind`: every suppression stops broadcasts; only a
   * suppression of scope `all` stops scheduled mail. Without a kind: stopped for all mail.
   */
  has(email: string, kind: DeliveryKind = 'scheduled'): boolean {
    const key = normaliseEmail(email);
    return this.#set.has(key) || (kind === 'broadcast' && this.#marketing.has(key));
  }

  /** Adds to the in-memory set only (the caller has stored it, or a reload will bring it). */
  add(email: string, scope: SuppressionScope = 'all'): void {
    const key = normaliseEmail(email);
    if (scope === 'all') {
      this.#set.add(key);
      this.#marketing.delete(key);
    } else if (!this.#set.has(key)) this.#marketing.add(key);
    if (this.#addedDuringLoad?.get(key) !== 'all') this.#addedDuringLoad?.set(key, scope);
  }

  /** Addresses suppressed, whatever the scope. */
  get size(): number {
    return this.#set.size + this.#marketing.size;
  }

  /**
   * Counts a hard bounce and suppresses the address once the count reaches the limit. The address
   * is skipped in memory from that moment; if the store write fails it is taken out again and the
   * error is thrown, so the next bounce retries rather than the list silently diverging.
   */
  async recordHardBounce(email: string, detail: string, userId?: string): Promise<HardBounceResult> {
    const count = await this.#store.recordHardBounce(email, detail);
    const key = normaliseEmail(email);
    // Already on the list (or being put there by a concurrent bounce): not this call's doing.
    if (count < this.#limit || this.#set.has(key)) return { count, suppressed: false };
    this.add(key);
    try {
      await this.#store.suppress({ email: key, userId, reason: 'hard-bounce', source: 'smtp', detail });
    } catch (err) {
      this.#set.delete(key);
      this.#addedDuringLoad?.delete(key);
      throw err;
    }
    return { count, suppressed: true };
  }

  /**
   * Records an unsubscribe (idempotent). The address is skipped in memory even if the store write
   * fails: the recipient asked, and this process can honour that at once; the error is thrown so
   * the caller answers 5xx and the request is retried until it is durable.
   */
  async unsubscribe(email: string, userId?: string): Promise<void> {
    const key = normaliseEmail(email);
    this.add(key);
    await this.#store.suppress({ email: key, userId, reason: 'unsubscribe', source: 'unsubscribe' });
  }

  /**
   * Suppresses an address for a report (a bounce or complaint that arrived later, an operator's
   * add): stored first, then skipped in memory. Returns true when the address was not already
   * suppressed at least this widely (this call changed what it gets).
   */
  async suppress(entry: SuppressionEntry): Promise<boolean> {
    const key = normaliseEmail(entry.email);
    const scope = entry.scope ?? 'all';
    const before = this.#set.has(key) ? 'all' : this.#marketing.has(key) ? 'marketing' : undefined;
    await this.#store.suppress({ ...entry, email: key, scope });
    this.add(key, scope);
    return before === undefined || (before === 'marketing' && scope === 'all');
  }

  async #load(): Promise<number> {
    this.#addedDuringLoad = new Map();
    const all = new Set<string>();
    const marketing = new Set<string>();
    for await (const batch of this.#store.allSuppressed()) {
      for (const s of batch) (s.scope === 'marketing' ? marketing : all).add(normaliseEmail(s.email));
    }
    for (const [key, scope] of this.#addedDuringLoad) (scope === 'marketing' ? marketing : all).add(key);
    for (const key of all) marketing.delete(key);
    this.#set = all;
    this.#marketing = marketing;
    return all.size + marketing.size;
  }
}
