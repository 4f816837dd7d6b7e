/**
 * The destination groups' send path (smtp/destination-queues.ts) over a fake transport: routing
 * by recipient domain, the global windows never exceeded by the groups together, each group's
 * own windows, scheduled mail first inside a group, a deferral slowing only its group, and the
 * façade's room(), idle() and stop(). buildSendPath with no group builds the single SendQueue.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { buildSendPath, DestinationQueues } from '../../src/adapters/smtp/destination-queues.js';
import { SendQueue } from '../../src/adapters/smtp/send-queue.js';
import type { SendPath } from '../../src/adapters/smtp/send-options.js';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import type { Delivery, DeliveryKind } from '../../src/core/types.js';
import type { MailTransport } from '../../src/ports/index.js';
import { silentLogger } from '../helpers/fakes.js';

const log = silentLogger();
const until = (check: () => void): Promise<void> => vi.waitFor(check, { timeout: 5000, interval: 2 });

function delivery(key: string, domain: string, kind: DeliveryKind = 'scheduled'): Delivery {
  return { key, kind, userId: key, email: `${key}@${domain}`, name: undefined, dueAt: 0 };
}

class FakeTransport implements MailTransport {
  readonly calls: string[] = [];
  behaviour: (d: Delivery) => Promise<void> = async () => {};
  async send(d: Delivery): Promise<{ messageId: string; response: string }> {
    this.calls.push(d.key);
    await this.behaviour(d);
    return { messageId: `<${d.key}@test>`, response: '250 OK' };
  }
  async close(): Promise<void> {}
}

type Groups = Config['destinations']['groups'];
let base: Config | undefined;
function config(rate: Config['rate'], groups: Groups): Config {
  base ??= loadConfig({ env: {} }).config;
  return {
    ...base,
    rate,
    smtp: { ...base.smtp, poolSize: 4 },
    send: { ...base.send, maxAttempts: 5, backoffBaseMs: 5, backoffMaxMs: 20 },
    destinations: { groups, default: { rate: {}, maxConnections: null } },
  };
}
const group = (name: string, domains: string[], rate: Config['rate'], maxConnections: number | null = null): Groups[number] => ({ name, domains, rate, maxConnections });

const paths: SendPath[] = [];
afterEach(async () => {
  await Promise.all(paths.splice(0).map((p) => p.stop(0)));
});
function build(cfg: Config, transport: FakeTransport): SendPath {
  const path = buildSendPath(cfg, transport, { onOutcome: async () => {} }, log);
  paths.push(path);
  return path;
}
const groupView = (path: SendPath, name: string) => path.groups?.find((g) => g.name === name);

describe('destination groups: the send path', () => {
  it('no groups configured: the single SendQueue, as before', async () => {
    const path = build(config({ perSecond: null }, []), new FakeTransport());
    expect(path).toBeInstanceOf(SendQueue);
    expect(path.groups).toBeUndefined();
  });

  it('routes each delivery to its group by recipient domain; other domains go to default', async () => {
    const transport = new FakeTransport();
    const path = build(config({ perSecond: null }, [group('gmail', ['gmail.com', 'googlemail.com'], {}), group('yahoo', ['yahoo.com'], {})]), transport);
    expect(path).toBeInstanceOf(DestinationQueues);
    for (const [k, d] of [['a', 'gmail.com'], ['b', 'GoogleMail.com'], ['c', 'yahoo.com'], ['d', 'example.test'], ['e', 'gmail.com']] as const) path.submit(delivery(k, d));
    await path.idle();
    expect([...transport.calls].sort()).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(path.groups?.map((g) => [g.name, g.sent])).toEqual([['gmail', 3], ['yahoo', 1], ['default', 1]]);
    expect(path.stats.sent).toBe(5);
  });

  it('the global perMinute 10 holds across two groups of 8 each: 10 sent, 6 wait', async () => {
    const transport = new FakeTransport();
    const path = build(config({ perSecond: null, perMinute: 10 }, [group('a', ['a.test'], { perMinute: 8 }), group('b', ['b.test'], { perMinute: 8 })]), transport);
    for (let i = 0; i < 8; i++) {
      path.submit(delivery(`a${i}`, 'a.test', 'broadcast'));
      path.submit(delivery(`b${i}`, 'b.test', 'broadcast'));
    }
    await until(() => expect(transport.calls).toHaveLength(10));
    await until(() => expect(path.inFlight).toBe(0));
    expect(path.waiting).toBe(6);
    expect(transport.calls).toHaveLength(10);
    expect(new Set(transport.calls).size).toBe(10);
    expect(await path.budget.use()).toEqual([{ name: 'perMinute', windowMs: 60_000, limit: 10, used: 10 }]);
    const { released } = await path.stop(0);
    expect(released).toHaveLength(6);
  });

  it("a group's own perMinute holds while the other group uses the rest of the global budget", async () => {
    const transport = new FakeTransport();
    const path = build(config({ perSecond: null, perMinute: 100 }, [group('a', ['a.test'], { perMinute: 3 })]), transport);
    for (let i = 0; i < 6; i++) {
      path.submit(delivery(`a${i}`, 'a.test'));
      path.submit(delivery(`o${i}`, 'other.test'));
    }
    await until(() => expect(transport.calls).toHaveLength(9));
    await until(() => expect(path.inFlight).toBe(0));
    expect(groupView(path, 'a')).toMatchObject({ sent: 3, waiting: 3, limits: { perMinute: 3 } });
    expect(groupView(path, 'default')).toMatchObject({ sent: 6, waiting: 0 });
  });

  it('inside a group scheduled mail goes before queued broadcasts', async () => {
    const transport = new FakeTransport();
    const path = build(config({ perSecond: null }, [group('a', ['a.test'], {}, 1)]), transport);
    let open: () => void = () => {};
    const gate = new Promise<void>((r) => (open = r));
    transport.behaviour = (d) => (d.key === 'b1' ? gate : Promise.resolve());
    for (let i = 1; i <= 4; i++) path.submit(delivery(`b${i}`, 'a.test', 'broadcast'));
    await until(() => expect(transport.calls).toEqual(['b1']));
    for (let i = 1; i <= 3; i++) path.submit(delivery(`s${i}`, 'a.test', 'scheduled'));
    await until(() => expect(path.awaitingGrant).toBe(false));
    open();
    await path.idle();
    expect(transport.calls).toEqual(['b1', 's1', 's2', 's3', 'b2', 'b3', 'b4']);
  });

  it('a 421 slows only the group it came from', async () => {
    const transport = new FakeTransport();
    const path = build(config({ perSecond: null }, [group('a', ['a.test'], { perSecond: 50 }), group('b', ['b.test'], { perSecond: 50 })]), transport);
    let deferred = false;
    transport.behaviour = async (d) => {
      if (d.key === 'a0' && !deferred) {
        deferred = true;
        throw Object.assign(new Error('421 4.7.0 Try again later'), { responseCode: 421, response: '421 4.7.0 Try again later', code: 'EMESSAGE' });
      }
    };
    path.submit(delivery('a0', 'a.test'));
    path.submit(delivery('b0', 'b.test'));
    await path.idle();
    expect(groupView(path, 'a')?.slowdowns).toBe(1);
    expect(groupView(path, 'a')?.deferrals).toBe(1);
    expect(groupView(path, 'a')?.ratePerSecond).toBeLessThan(50);
    expect(groupView(path, 'b')).toMatchObject({ slowdowns: 0, deferrals: 0, ratePerSecond: 50 });
    expect(path.rateRatio).toBeLessThan(1);
  });

  it('room() resolves once the groups together have fewer waiting than the limit', async () => {
    const transport = new FakeTransport();
    const path = build(config({ perSecond: null }, [group('a', ['a.test'], {}, 1)]), transport);
    const opens: Array<() => void> = [];
    transport.behaviour = () => new Promise<void>((r) => opens.push(r));
    for (let i = 0; i < 3; i++) path.submit(delivery(`a${i}`, 'a.test'));
    for (let i = 0; i < 3; i++) path.submit(delivery(`o${i}`, 'other.test'));
    // a: one in flight, two waiting; default (poolSize 4): three in flight.
    await until(() => expect(path.inFlight).toBe(4));
    expect(path.waiting).toBe(2);
    let roomy = false;
    const room = path.room(2).then(() => (roomy = true));
    await until(() => expect(opens.length).toBe(4));
    expect(roomy).toBe(false);
    // The one in flight in a ends: the next of a starts, one waits.
    const aFirst = transport.calls.indexOf('a0');
    opens[aFirst]?.();
    await room;
    expect(path.waiting).toBe(1);
    // Let the rest through: every send blocked so far, then the ones still to come at once.
    transport.behaviour = async () => {};
    for (const release of opens) release();
    await path.idle();
    expect([...transport.calls].sort()).toEqual(['a0', 'a1', 'a2', 'o0', 'o1', 'o2']);
  });
});
