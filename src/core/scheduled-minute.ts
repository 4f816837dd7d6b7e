/**
 * The scheduled path of one due minute, kept in core so the composition root only wires it: the
 * scheduler's jobs become deliveries with their keys, each is opened in the {@link MinuteLedger},
 * the catch-up split decides send or `missed`, the dispatcher claims and queues the sends, and
 * whatever ends here (already claimed, suppressed, missed) settles at once. Sent and failed
 * deliveries settle when their outcome is recorded (outcome-router.ts), so the checkpoint never
 * moves past a minute with a send still pending.
 */
import type { Delivery } from '../ports/index.js';
import type { MinuteLedger } from './catch-up.js';
import { scheduledKey } from './delivery-key.js';
import type { Job } from './job-registry.js';

/** The part of a dispatch's answer that ends deliveries without an SMTP outcome. */
export interface MinuteDispatchResult {
  /** Already claimed by an earlier run or another instance. */
  skipped: number;
  /** Not sent: the address is suppressed. */
  suppressed: number;
}

/** What the minute needs from its collaborators (the Dispatcher and CatchUp satisfy these). */
export interface ScheduledMinuteDeps {
  dispatcher: { dispatch(deliveries: readonly Delivery[]): Promise<MinuteDispatchResult> };
  catchUp: {
    split(deliveries: readonly Delivery[]): { send: Delivery[]; missed: Delivery[] };
    recordMissed(deliveries: readonly Delivery[]): Promise<number>;
  };
  ledger: MinuteLedger;
}

/** The delivery of one fired job: its key is the user, the slot and the user's local date. */
export function scheduledDelivery(j: Job): Delivery {
  return {
    key: scheduledKey(j.userId, j.time, j.localDate),
    kind: 'scheduled',
    userId: j.userId,
    email: j.email,
    name: j.name,
    slot: j.time,
    localDate: j.localDate,
    timezone: j.timezone,
    dueAt: j.fireAt,
  };
}

export class ScheduledMinute {
  readonly #deps: ScheduledMinuteDeps;
  #due: number | undefined;

  constructor(deps: ScheduledMinuteDeps) {
    this.#deps = deps;
  }

  /** Deliveries fired so far (for `run-minute`, the minute's due count); undefined before the first fire. */
  get due(): number | undefined {
    return this.#due;
  }

  /** The scheduler's `onDue`: sends one due minute's jobs (or records them `missed`). */
  async fire(jobs: readonly Job[], minute: number): Promise<void> {
    const { dispatcher, catchUp, ledger } = this.#deps;
    const deliveries = jobs.map(scheduledDelivery);
    // Every delivery of the minute is open in the ledger until it has an outcome; those that
    // never get one here (a stop released them, a crash) keep the checkpoint before this minute.
    this.#due = (this.#due ?? 0) + deliveries.length;
    ledger.begin(minute, deliveries.length);
    const { send, missed } = catchUp.split(deliveries);
    const r = await dispatcher.dispatch(send);
    ledger.settle(minute, r.skipped + r.suppressed);
    if (missed.length > 0) {
      await catchUp.recordMissed(missed);
      ledger.settle(minute, missed.length);
    }
  }
}
