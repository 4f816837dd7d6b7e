/** Small fakes shared by unit tests: an event recorder that keeps what it is given, and a sample delivery. */
import { scheduledKey } from '../../src/core/delivery-key.js';
import type { Delivery } from '../../src/core/types.js';
import type { EventRecorder, OutcomeEvent } from '../../src/ports/index.js';

export class RecordingEvents implements EventRecorder {
  readonly events: OutcomeEvent[] = [];
  async record(e: OutcomeEvent): Promise<void> {
    this.events.push(e);
  }
  ofType(type: OutcomeEvent['type']): OutcomeEvent[] {
    return this.events.filter((e) => e.type === type);
  }
}

/** A scheduled delivery for user u1 (Ada) at 09:00 UTC on 2026-01-05, with overrides. */
export function sampleDelivery(over: Partial<Delivery> = {}): Delivery {
  return {
    key: scheduledKey('u1', '09:00', '2026-01-05'),
    kind: 'scheduled',
    userId: 'u1',
    email: 'ada@example.test',
    name: 'Ada',
    slot: '09:00',
    localDate: '2026-01-05',
    timezone: 'UTC',
    dueAt: Date.parse('2026-01-05T09:00:00Z'),
    ...over,
  };
}
