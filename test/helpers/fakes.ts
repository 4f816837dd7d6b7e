/**
 * Small fakes shared by unit tests: a silent logger, an event recorder that keeps what it is
 * given, an in-memory claim store, and a sample delivery. One copy each: a test that needs
 * something more specific extends these rather than writing its own.
 */
import pino, { type Logger } from 'pino';
import { scheduledKey } from '../../src/core/delivery-key.js';
import type { Delivery } from '../../src/core/types.js';
import type { ClaimOptions, ClaimResult, ClaimStore, EventRecorder, OutcomeEvent } from '../../src/ports/index.js';

/** A logger that writes nothing. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/**
 * Claims in memory, as the Mongo claim store makes them: a key is owned by whoever claimed it
 * first until released; a finished key is reported as taken with its status (`finished`); an
 * unfinished key of a holder that is not alive is taken over, and so is one of this process with
 * `adoptOwn`.
 */
export class MemoryClaimStore implements ClaimStore {
  /** Holder of each claimed key. */
  readonly owner = new Map<string, string>();
  /** Final status of each completed key. */
  readonly done = new Map<string, 'sent' | 'failed' | 'missed'>();
  readonly released: string[] = [];
  readonly claimCalls: string[][] = [];
  /** Every key this process was ever granted, in order. */
  readonly granted: string[] = [];
  /** Holders whose heartbeat is fresh (this process is). */
  readonly alive: Set<string>;
  /** When set, claim() waits for it (to interleave a stop with a claim round trip). */
  gate: Promise<void> | undefined;

  /**
   * @param takenByOthers keys a live other instance or an earlier run already owns
   * @param me this process's holder id
   */
  constructor(
    takenByOthers: Iterable<string> = [],
    readonly me = 'me',
  ) {
    this.alive = new Set([me, 'other']);
    for (const k of takenByOthers) this.owner.set(k, 'other');
  }

  /** Keys this process holds now. */
  get owned(): Set<string> {
    return new Set([...this.owner].filter(([, holder]) => holder === this.me).map(([k]) => k));
  }

  async claim(keys: readonly string[], options: ClaimOptions = {}): Promise<ClaimResult> {
    this.claimCalls.push([...keys]);
    if (this.gate) await this.gate;
    const claimed: string[] = [];
    const taken: string[] = [];
    const finished = new Map<string, 'sent' | 'failed' | 'missed'>();
    for (const k of keys) {
      const holder = this.owner.get(k);
      const status = this.done.get(k);
      const free = holder === undefined || (status === undefined && ((options.adoptOwn === true && holder === this.me) || !this.alive.has(holder)));
      if (free) {
        this.owner.set(k, this.me);
        this.granted.push(k);
        claimed.push(k);
        continue;
      }
      taken.push(k);
      if (status !== undefined) finished.set(k, status);
    }
    return { claimed, taken, finished };
  }

  async complete(outcomes: ReadonlyArray<{ key: string; status: 'sent' | 'failed' | 'missed' }>): Promise<void> {
    for (const o of outcomes) {
      if (!this.owner.has(o.key)) this.owner.set(o.key, this.me);
      this.done.set(o.key, o.status);
    }
  }

  async release(keys: readonly string[]): Promise<void> {
    for (const k of keys) {
      this.released.push(k);
      if (!this.done.has(k)) this.owner.delete(k);
    }
  }
}

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
