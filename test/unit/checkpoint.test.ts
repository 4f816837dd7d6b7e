/** Checkpoint with a fake clock and an in-memory store: saves when the mark moves, retries failures. */
import { describe, expect, it } from 'vitest';
import { MinuteLedger } from '../../src/core/catch-up.js';
import { Checkpoint } from '../../src/core/checkpoint.js';
import type { CheckpointStore } from '../../src/ports/index.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { silentLogger } from '../helpers/fakes.js';

const log = silentLogger();

class MemoryStore implements CheckpointStore {
  value: number | undefined;
  saves: number[] = [];
  failNext = 0;
  async load(): Promise<number | undefined> {
    return this.value;
  }
  async save(minute: number): Promise<void> {
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('mongo down');
    }
    this.saves.push(minute);
    this.value = Math.max(this.value ?? -Infinity, minute);
  }
}

describe('Checkpoint', () => {
  it('saves the mark only when it moves forward, every interval', async () => {
    const clock = new FakeClock('2027-01-01T00:00:00Z');
    const store = new MemoryStore();
    const ledger = new MinuteLedger();
    let processed: number | undefined;
    const cp = new Checkpoint({ store, ledger, processed: () => processed, clock }, { intervalMs: 1000 }, log);
    cp.start();
    await clock.advanceAsync(1000);
    expect(store.saves).toEqual([]); // nothing processed yet
    processed = 10;
    await clock.advanceAsync(1000);
    await clock.advanceAsync(1000);
    expect(store.saves).toEqual([10]);
    ledger.begin(11, 2);
    processed = 12;
    await clock.advanceAsync(1000);
    expect(store.saves).toEqual([10]); // minute 11 still open: the mark is 10
    ledger.settle(11, 2);
    await clock.advanceAsync(1000);
    expect(store.saves).toEqual([10, 12]);
    await cp.close();
    expect(cp.saved).toBe(12);
  });

  it('a failed save is retried at the next interval; close() saves once more', async () => {
    const clock = new FakeClock(0);
    const store = new MemoryStore();
    let processed = 5;
    const cp = new Checkpoint({ store, ledger: new MinuteLedger(), processed: () => processed, clock }, { intervalMs: 1000 }, log);
    store.failNext = 1;
    cp.start();
    await clock.advanceAsync(1000);
    expect(cp.stats.errors).toBe(1);
    expect(store.saves).toEqual([]);
    await clock.advanceAsync(1000);
    expect(store.saves).toEqual([5]);
    processed = 7;
    await cp.close();
    await cp.close();
    expect(store.saves).toEqual([5, 7]);
    expect(clock.pending).toBe(0);
  });

  it('load() reads the stored minute and counts as saved', async () => {
    const store = new MemoryStore();
    store.value = 42;
    const cp = new Checkpoint({ store, ledger: new MinuteLedger(), processed: () => 40, clock: new FakeClock(0) }, {}, log);
    expect(await cp.load()).toBe(42);
    await cp.save();
    expect(store.saves).toEqual([]); // 40 is behind what is stored
  });
});
