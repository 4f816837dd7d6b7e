/**
 * The daemon's stop sequence closes the inbound feedback listener first: no new report arrives
 * while the sending side drains and MongoDB closes (a relay retries a refused DSN later).
 */
import { expect, it } from 'vitest';
import { closeInOrder, type LifecycleParts } from '../../src/app/lifecycle.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { silentLogger } from '../helpers/fakes.js';

it('closeInOrder stops the inbound listener before anything else', async () => {
  const order: string[] = [];
  const step = (name: string) => async () => void order.push(name);
  const parts = {
    loaded: { config: { send: { drainTimeoutMs: 1000 } } },
    log: silentLogger(),
    clock: new FakeClock(0),
    feedback: { inbound: { listen: async () => 0, close: step('inbound') } },
    housekeeping: { close: step('housekeeping') },
    partitions: undefined,
    scheduler: { stop: step('scheduler') },
    broadcasts: { stop: step('broadcasts') },
    dispatcher: { stop: step('dispatcher') },
    checkpoint: { close: step('checkpoint') },
    analytics: { close: step('analytics') },
    eventCheck: { markChecked: step('eventCheck') },
    transport: { close: step('smtp') },
    cluster: { member: { stop: step('member') }, close: step('redis') },
    instances: { stop: step('instance') },
    store: { close: step('mongodb') },
  } as unknown as LifecycleParts;
  await closeInOrder(parts, undefined);
  expect(order[0]).toBe('inbound');
  expect(order).toContain('mongodb');
  expect(order.indexOf('inbound')).toBeLessThan(order.indexOf('housekeeping'));
});
