/**
 * Where an outcome goes once the recorder has it: a scheduled delivery settles in the minute
 * ledger (only once its outcome is recorded, so the checkpoint never passes an unrecorded send);
 * a broadcast delivery goes to the broadcast runner even if recording threw, because a run that
 * never hears of an outcome would stall. The composition root wraps the recorder's hooks with
 * this and hands the result to the send queue.
 */
import type { MinuteLedger } from './catch-up.js';
import type { Outcome, OutcomeHooks } from '../ports/index.js';
import { epochMinute } from './time.js';

export interface OutcomeRoutes {
  /** Scheduled deliveries open per due minute. */
  ledger: MinuteLedger;
  /** A broadcast delivery's outcome (called whether or not recording succeeded). */
  broadcast(o: Outcome): void;
}

/** The recorder's hooks, followed by the routing above. */
export function routeOutcomes(recorded: OutcomeHooks, routes: OutcomeRoutes): OutcomeHooks {
  return {
    onOutcome: async (o) => {
      try {
        await recorded.onOutcome(o);
        if (o.delivery.kind === 'scheduled') routes.ledger.settle(epochMinute(o.delivery.dueAt));
      } finally {
        if (o.delivery.kind === 'broadcast') routes.broadcast(o);
      }
    },
    onRetry: (d, attempt, delayMs, error) => recorded.onRetry?.(d, attempt, delayMs, error),
  };
}
