/**
 * `/readyz` with several relays: SMTP is ready while at least one relay answers its handshake,
 * and the body gives each relay's answer by host:port; with one relay the body is as before.
 */
import { describe, expect, it } from 'vitest';
import { Readiness, type RelayReply } from '../../src/app/readiness.js';
import type { BreakerState } from '../../src/ports/index.js';
import { FakeClock } from '../helpers/fake-clock.js';

function setup(answers: RelayReply[][]) {
  const clock = new FakeClock('2026-01-05T09:00:00Z');
  const state = { breaker: 'closed' as BreakerState, handshakes: 0 };
  const readiness = new Readiness(
    {
      synced: () => true,
      pingMongo: async () => undefined,
      verifySmtp: async () => answers[state.handshakes++] ?? [],
      breaker: () => state.breaker,
      clock,
    },
    { smtpCheckCacheMs: 0, smtpCheckFailedCacheMs: 0 },
  );
  return { clock, state, readiness };
}

const A = '10.0.0.1:587';
const B = '10.0.0.2:587';

describe('Readiness with several relays', () => {
  it('ready while one relay answers; each relay named with its answer', async () => {
    const t = setup([
      [
        { relay: A, ok: false },
        { relay: B, ok: true },
      ],
      [
        { relay: A, ok: false },
        { relay: B, ok: false },
      ],
    ]);
    expect(await t.readiness.check()).toEqual({ ok: true, synced: true, mongodb: true, smtp: true, breaker: 'closed', relays: { [A]: false, [B]: true } });
    t.clock.jump(1);
    expect(await t.readiness.check()).toEqual({ ok: false, synced: true, mongodb: true, smtp: false, breaker: 'closed', relays: { [A]: false, [B]: false } });
  });

  it('one relay: the body is as before (no relays key)', async () => {
    const t = setup([[{ relay: A, ok: true }]]);
    expect(await t.readiness.check()).toEqual({ ok: true, synced: true, mongodb: true, smtp: true, breaker: 'closed' });
  });

  it('breaker open (every relay down): not ready, no handshake, no stale relay answers', async () => {
    const t = setup([
      [
        { relay: A, ok: true },
        { relay: B, ok: true },
      ],
    ]);
    await t.readiness.check();
    t.state.breaker = 'open';
    expect(await t.readiness.check()).toEqual({ ok: false, synced: true, mongodb: true, smtp: false, breaker: 'open' });
    expect(t.state.handshakes).toBe(1);
  });
});
