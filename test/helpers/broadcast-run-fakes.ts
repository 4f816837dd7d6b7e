/**
 * In-memory ports shared by the BroadcastRun unit tests (broadcast-run, broadcast-overlap): users
 * and their cursor batches, an outcome recorder whose completions are written only on flush, and
 * a run store with a batch ledger whose confirmations the test can hold.
 */
import type { BatchCounts, BroadcastCheckpoint, BroadcastCounters, BroadcastRunStore, DoneStatus, RunVerdict } from '../../src/ports/broadcasts.js';
import type { RawUser } from '../../src/ports/index.js';
import type { MemoryClaimStore } from './fakes.js';

export const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

export function users(n: number, over: (i: number) => Partial<RawUser> = () => ({})): RawUser[] {
  return Array.from({ length: n }, (_, i) => ({ _id: `u${String(i).padStart(4, '0')}`, email: `u${i}@example.test`, name: `User ${i}`, active: true, ...over(i) }));
}

/** The users as a cursor would hand them out, one macrotask per batch. */
export async function* batches(all: RawUser[], size: number): AsyncGenerator<RawUser[]> {
  for (let i = 0; i < all.length; i += size) {
    await tick();
    yield all.slice(i, i + size);
  }
}

/** Completions are pending until flush(), like OutcomeRecorder's batched `#done` writes. */
export class Recorder {
  pending: Array<{ key: string; status: 'sent' | 'failed' }> = [];
  flushes = 0;
  constructor(readonly claims: MemoryClaimStore) {}
  async flush(): Promise<void> {
    this.flushes++;
    for (const o of this.pending.splice(0)) this.claims.done.set(o.key, o.status);
  }
}

export class MemoryRunStore implements BroadcastRunStore {
  readonly ledger = new Map<string, BatchCounts>();
  readonly publishes: Array<{ counters: BroadcastCounters; checkpoint: BroadcastCheckpoint | undefined }> = [];
  readonly confirms: string[] = [];
  verdict: () => RunVerdict = () => 'continue';
  /** Called at every publish to check invariants at that moment. */
  onCheckpoint: (processed: number) => void = () => undefined;
  /** While set, each confirmation waits until the test calls its entry in `gates`. */
  gated = false;
  readonly gates: Array<() => void> = [];

  async check(): Promise<RunVerdict> {
    return this.verdict();
  }
  async confirmedBatch(id: string): Promise<BatchCounts | undefined> {
    return this.ledger.get(id);
  }
  async confirmBatch(id: string, counts: BatchCounts): Promise<void> {
    if (this.gated) await new Promise<void>((r) => this.gates.push(r));
    this.confirms.push(id);
    this.ledger.set(id, { ...counts });
  }
  async partialBatch(): Promise<ReadonlyMap<string, DoneStatus> | undefined> {
    return undefined;
  }
  async recordPartial(): Promise<void> {}
  async publish(p: { counters: BroadcastCounters; checkpoint: BroadcastCheckpoint | undefined }): Promise<void> {
    this.onCheckpoint(p.checkpoint?.processed ?? 0);
    this.publishes.push({ counters: { ...p.counters }, checkpoint: p.checkpoint && { ...p.checkpoint } });
  }
}
