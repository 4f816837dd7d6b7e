/**
 * Ids of the events that state a delivery's final outcome. A delivery key settles once (its
 * `<key>#done` record: sent, failed or missed), so its outcome event gets an id made from the
 * key and the type rather than a random one: writing it twice (a retried batch, or the start-up
 * rebuild of events lost in a crash racing a live instance's late flush) stores it once, through
 * the unique `_id` that every server has (FerretDB v1 included).
 */
import type { OutcomeEvent, OutcomeType } from '../core/types.js';

/** Event types that mirror a delivery record's final status. */
export const FINAL_OUTCOMES = ['sent', 'failed', 'missed'] as const satisfies readonly OutcomeType[];
export type FinalOutcome = (typeof FINAL_OUTCOMES)[number];

export function isFinalOutcome(type: OutcomeType): type is FinalOutcome {
  return (FINAL_OUTCOMES as readonly OutcomeType[]).includes(type);
}

/** `<key>#<type>`, the id of a delivery's final outcome event. */
export function outcomeEventId(key: string, type: FinalOutcome): string {
  return `${key}#${type}`;
}

/** The deterministic id of `event` when it is a final outcome of a delivery; undefined otherwise. */
export function eventIdOf(event: OutcomeEvent): string | undefined {
  return event.key !== undefined && isFinalOutcome(event.type) ? outcomeEventId(event.key, event.type) : undefined;
}
