/**
 * Fair shares of the partitions among the live members (docs/ARCHITECTURE.md "Several
 * instances"): what one member should take and give back in one round of leasing, given the
 * table it just read. Pure and deterministic: every member computes the same targets from the same
 * view, so they converge without talking to each other.
 *
 * - Targets: with m live members, each aims at floor(P/m); the first P mod m members by sorted id
 *   aim at one more. The targets add up to P.
 * - Below its target, a member takes free partitions (no lease), the ones nearest its home first
 *   (member rank r starts at floor(r*P/m)), so members joining together rarely race for the same
 *   ones.
 * - Above its target, a member gives back its excess, the ones farthest from its home first. So a
 *   newcomer gets its share in about two rounds (the others give back at their next round, it
 *   takes at its next), and nothing moves that need not.
 * - Partitions held by a member that is not live (its lease has not expired yet) are neither free
 *   nor counted: they are taken once the lease expires.
 */

export interface BalanceView {
  /** This member's id. It always counts as live (it is heartbeating now). */
  self: string;
  /** P: partitions 0..P-1. */
  partitions: number;
  /** Ids of the live members (heartbeat within the lease TTL). */
  members: readonly string[];
  /** Owner of each partition (index = partition), null when free. */
  owners: ReadonlyArray<string | null>;
}

export interface BalancePlan {
  /** This member's fair share. */
  target: number;
  /** Free partitions to try to take (SET NX: another member may win some). */
  take: number[];
  /** Held partitions to give back. */
  release: number[];
}

/** Each member's fair share: floor(P/m), plus one for the first P mod m members by sorted id. */
export function fairShares(members: readonly string[], partitions: number): Map<string, number> {
  const sorted = sortedUnique(members);
  const base = Math.floor(partitions / Math.max(1, sorted.length));
  const extra = partitions - base * sorted.length;
  return new Map(sorted.map((id, rank) => [id, base + (rank < extra ? 1 : 0)]));
}

/** What `view.self` should take and give back this round. */
export function planBalance(view: BalanceView): BalancePlan {
  const { self, partitions: P } = view;
  const members = sortedUnique([...view.members, self]);
  const target = fairShares(members, P).get(self) ?? 0;
  const home = Math.floor((members.indexOf(self) * P) / members.length);
  // Circular distance from this member's home: near ones are taken first, far ones given back first.
  const distance = (p: number): number => (p - home + P) % P;

  const mine: number[] = [];
  const free: number[] = [];
  for (let p = 0; p < P; p++) {
    const owner = view.owners[p] ?? null;
    if (owner === null) free.push(p);
    else if (owner === self) mine.push(p);
  }

  if (mine.length < target) {
    const take = free.sort((a, b) => distance(a) - distance(b)).slice(0, target - mine.length);
    return { target, take, release: [] };
  }
  if (mine.length === target) return { target, take: [], release: [] };

  // Above target: give back the excess. That is never more than the others need: the targets add
  // up to P, so what the members below their targets lack, beyond the free partitions, is the sum
  // of every member's excess (plus what non-live members still hold).
  const give = mine.length - target;
  const release = mine.sort((a, b) => distance(b) - distance(a)).slice(0, give);
  return { target, take: [], release };
}

function sortedUnique(ids: readonly string[]): string[] {
  return [...new Set(ids)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}
