/**
 * Per-zone progress of one run of a local-time or quiet-hours broadcast: for each zone, the
 * recipients the run saw, those with an outcome, and the zone's instant (every recipient of a zone
 * shares it: see send-window.ts). Bounded: one entry per zone, and at most {@link MAX_ZONES}
 * (the rest are folded into one entry, so a users collection full of odd zone spellings cannot
 * grow the broadcast document without bound).
 *
 * A run recounts from zero, so until it has seen a zone as far as the last published progress did
 * (an earlier run), that zone is shown as published then (`baseline`); the final progress of a run
 * that read the whole segment is its own count (users may have left the segment).
 */
import type { ZoneProgress } from '../ports/broadcasts.js';
import type { ZoneTally } from './broadcast-batch.js';
import type { SendWindow } from './send-window.js';

export const MAX_ZONES = 1_000;
/** The entry the zones beyond {@link MAX_ZONES} are counted in. */
export const OTHER_ZONES = '(other zones)';

export class ZoneBook {
  readonly #window: SendWindow;
  readonly #baseline: ReadonlyMap<string, ZoneProgress>;
  readonly #zones = new Map<string, ZoneTally>();

  constructor(window: SendWindow, baseline: readonly ZoneProgress[] = []) {
    this.#window = window;
    this.#baseline = new Map(baseline.map((z) => [z.zone, z]));
  }

  #entry(zone: string): ZoneTally {
    let t = this.#zones.get(zone);
    if (t === undefined) {
      const name = this.#zones.size >= MAX_ZONES ? OTHER_ZONES : zone;
      t = this.#zones.get(name) ?? { users: 0, done: 0 };
      this.#zones.set(name, t);
    }
    return t;
  }

  /** A batch's share of a zone (users seen, done, its instant when the batch computed it). */
  add(zone: string, share: ZoneTally): void {
    const t = this.#entry(zone);
    t.users += share.users;
    t.done += share.done;
    if (share.at !== undefined) t.at = Math.min(t.at ?? Infinity, share.at);
  }

  /** `n` more recipients of `zone` have an outcome. */
  done(zone: string, n: number): void {
    const t = this.#zones.get(zone) ?? this.#zones.get(OTHER_ZONES);
    if (t !== undefined) t.done += n;
  }

  /**
   * The progress to publish, by instant then name. `final`: this run's own counts only;
   * otherwise each zone at least as far as the baseline showed it.
   */
  progress(now: number, final: boolean): ZoneProgress[] {
    const out = new Map<string, ZoneProgress>();
    for (const [zone, t] of this.#zones) out.set(zone, { zone, at: new Date(t.at ?? this.#instantOf(zone, now)), users: t.users, done: t.done });
    if (!final) {
      for (const [zone, b] of this.#baseline) {
        const mine = out.get(zone);
        if (mine === undefined) out.set(zone, b);
        else out.set(zone, { zone, at: mine.at, users: Math.max(mine.users, b.users), done: Math.max(mine.done, b.done) });
      }
    }
    return [...out.values()].sort((a, b) => a.at.getTime() - b.at.getTime() || (a.zone < b.zone ? -1 : a.zone > b.zone ? 1 : 0));
  }

  /** A zone's instant when no batch of this run computed it (its batches were in the ledger). */
  #instantOf(zone: string, now: number): number {
    const w = this.#window.at(zone, now);
    if (w instanceof Error) return now;
    return w.kind === 'at' ? w.at : w.base;
  }
}
