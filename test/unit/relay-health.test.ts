/**
 * One relay's health (relay-health.ts) on the fake clock: `threshold` consecutive connection
 * failures mark it down, a reply in between resets the count, probes back off (1 s, 2 s, 4 s ...
 * capped at probeMaxMs) until one answers, an answer from elsewhere marks it up at once and stops
 * the probes, a late probe of an earlier outage changes nothing, and close() stops everything.
 */
import { describe, expect, it } from 'vitest';
import { RelayHealth } from '../../src/adapters/smtp/relay-health.js';
import { FakeClock, flushMicrotasks } from '../helpers/fake-clock.js';

function setup(answers: boolean[], opts: { threshold?: number; probeMaxMs?: number; probes?: boolean } = {}) {
  const clock = new FakeClock(0);
  const changes: Array<[number, boolean]> = [];
  const probedAt: number[] = [];
  let next = 0;
  const health = new RelayHealth(
    { threshold: opts.threshold ?? 3, probeMaxMs: opts.probeMaxMs ?? 5_000, ...(opts.probes === undefined ? {} : { probes: opts.probes }) },
    async () => {
      probedAt.push(clock.now());
      return answers[next++] ?? false;
    },
    (up) => changes.push([clock.now(), up]),
    clock,
  );
  return { clock, health, changes, probedAt };
}

describe('RelayHealth', () => {
  it('goes down after threshold consecutive failures; a reply in between resets the count', () => {
    const t = setup([]);
    expect(t.health.failure()).toBe(false);
    expect(t.health.failure()).toBe(false);
    t.health.answered(); // a 4xx/5xx or a 250: the relay is there
    expect(t.health.failure()).toBe(false);
    expect(t.health.failure()).toBe(false);
    expect(t.health.up).toBe(true);
    expect(t.health.failure()).toBe(true);
    expect(t.health.up).toBe(false);
    expect(t.changes).toEqual([[0, false]]);
    expect(t.health.downs).toBe(1);
  });

  it('probes with backoff capped at probeMaxMs until one answers, then is up and stops probing', async () => {
    const t = setup([false, false, false, false, true], { probeMaxMs: 5_000 });
    for (let i = 0; i < 3; i++) t.health.failure();
    await t.clock.advanceAsync(60_000);
    // 1 s, then 2, 4, 5 (cap), 5: probes at 1, 3, 7, 12, 17 s.
    expect(t.probedAt).toEqual([1_000, 3_000, 7_000, 12_000, 17_000]);
    expect(t.health.up).toBe(true);
    expect(t.changes).toEqual([
      [0, false],
      [17_000, true],
    ]);
    expect(t.clock.pending).toBe(0);
  });

  it('an answer from elsewhere (a readiness handshake, the queue probe) marks it up at once and cancels the probe', async () => {
    const t = setup([]);
    for (let i = 0; i < 3; i++) t.health.failure();
    await t.clock.advanceAsync(1_500); // one failed probe at 1 s; the next is due at 3 s
    t.health.answered();
    expect(t.health.up).toBe(true);
    expect(t.clock.pending).toBe(0);
    await t.clock.advanceAsync(60_000);
    expect(t.probedAt).toEqual([1_000]);
  });

  it('a probe of an earlier outage that answers late does not touch the next outage', async () => {
    const clock = new FakeClock(0);
    let release: ((ok: boolean) => void) | undefined;
    const probes: number[] = [];
    const health = new RelayHealth(
      { threshold: 1, probeMaxMs: 4_000 },
      () => {
        probes.push(clock.now());
        return new Promise<boolean>((resolve) => (release = resolve));
      },
      () => undefined,
      clock,
    );
    health.failure();
    await clock.advanceAsync(1_000); // probe 1 starts and hangs
    const first = release;
    health.answered(); // up by other means
    health.failure(); // and down again: a new outage, probed on its own
    first?.(false); // the old probe fails late: it must not schedule a second loop
    await flushMicrotasks();
    expect(clock.pending).toBe(1);
    await clock.advanceAsync(1_000);
    expect(probes).toEqual([1_000, 2_000]);
  });

  it('without probes (a lone relay: the send queue probes) it only comes back when told it answers', async () => {
    const t = setup([true], { threshold: 1, probes: false });
    t.health.failure();
    await t.clock.advanceAsync(60_000);
    expect(t.probedAt).toEqual([]);
    expect(t.health.up).toBe(false);
    t.health.answered();
    expect(t.health.up).toBe(true);
  });

  it('close() stops the probes', async () => {
    const t = setup([true], { threshold: 1 });
    t.health.failure();
    t.health.close();
    await t.clock.advanceAsync(60_000);
    expect(t.probedAt).toEqual([]);
    expect(t.clock.pending).toBe(0);
  });
});
