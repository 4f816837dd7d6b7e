/**
 * How a per-second limit becomes Bottleneck grants. Shared by the send queue, which paces with
 * it, and the capacity plan, which predicts the queue's drain from it.
 *
 * A grant is a batch of `perSecond / 20` messages (1..maxBatch): about 20 grants a second keep
 * the flow smooth, and batching keeps Bottleneck's per-job cost (about 400 jobs/s) off the path.
 * Grants are spaced by exactly `batch / perSecond` seconds, with no headroom. Bottleneck's timers
 * do run a millisecond or two early, but the send queue's ArrivalGate caps every sliding second
 * of arrivals at `perSecond`, so an early grant waits at the gate instead of exceeding the limit.
 * (With 5 % headroom and whole-millisecond spacing the queue sustained 0.94 x the limit, measured
 * with `npm run bench rate`.)
 */

/** Grants per second at a per-second limit high enough to batch. */
const GRANTS_PER_SECOND = 20;

export interface GrantPacing {
  /** Messages per grant. */
  batch: number;
  /** Milliseconds between grants; 0 without a per-second limit. */
  minTime: number;
}

export function grantPacing(perSecond: number | null | undefined, maxBatch: number): GrantPacing {
  if (!perSecond) return { batch: maxBatch, minTime: 0 };
  const batch = Math.min(maxBatch, Math.max(1, Math.floor(perSecond / GRANTS_PER_SECOND)));
  return { batch, minTime: (batch * 1000) / perSecond };
}
