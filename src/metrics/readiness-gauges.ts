/**
 * `/readyz` as Prometheus series, so an alert rule can see readiness without a blackbox prober:
 * `mailwheel_ready` (1 ready, 0 not) and `mailwheel_ready_check{check}` (1/0 for each check the
 * answer names: `synced`, `mongodb`, `smtp`, and `redis` with `cluster.redisUrl`). Read at scrape
 * time from the same check `/readyz` runs (its SMTP handshake is cached, so a scrape costs one
 * MongoDB ping and, with Redis, one Redis ping), once per scrape for both gauges.
 *
 * A check that has not answered within `timeoutMs` (MongoDB unreachable can take the driver's
 * server-selection time) reads as not ready with no `mailwheel_ready_check` samples: a scrape must
 * stay well inside Prometheus's scrape timeout (10 s by default), or the whole target would go
 * `up == 0` and every other series with it.
 *
 * Registered on the Metrics registry by the composition root (it owns the Readiness); kept out of
 * metrics.ts, which reads plain component getters.
 */
import { Gauge, type Registry } from 'prom-client';
import type { Clock } from '../ports/index.js';

/** A `/readyz` answer: `ok`, plus each check by name (booleans are the checks; other fields are details). */
export interface ReadinessReading {
  ok: boolean;
  [check: string]: unknown;
}

export function registerReadinessGauges(registry: Registry, check: () => Promise<ReadinessReading>, opts: { clock: Clock; timeoutMs?: number }): void {
  const timeoutMs = opts.timeoutMs ?? 2_000;
  const read = shared(() => withTimeout(check(), timeoutMs, opts.clock));
  const registers = [registry];
  new Gauge({
    name: 'mailwheel_ready',
    help: 'What /readyz answers: 1 ready (first sync done, MongoDB, SMTP and, with cluster.redisUrl, Redis answer), 0 not ready or no answer within 2 s.',
    registers,
    async collect() {
      const r = await read();
      this.set(r?.ok === true ? 1 : 0);
    },
  });
  new Gauge({
    name: 'mailwheel_ready_check',
    help: 'Each /readyz check (synced, mongodb, smtp, redis): 1 passes, 0 fails. Absent while the checks do not answer within 2 s.',
    labelNames: ['check'],
    registers,
    async collect() {
      const r = await read();
      this.reset();
      for (const [name, v] of Object.entries(r ?? {})) if (name !== 'ok' && typeof v === 'boolean') this.set({ check: name }, v ? 1 : 0);
    },
  });
}

/** The answer, or undefined when it rejects or takes longer than `ms` (timer on the injected clock). */
function withTimeout<T>(p: Promise<T>, ms: number, clock: Clock): Promise<T | undefined> {
  return new Promise((resolve) => {
    const timer = clock.setTimeout(() => resolve(undefined), ms);
    p.then(
      (v) => resolve(v),
      () => resolve(undefined),
    ).finally(() => clock.clearTimeout(timer));
  });
}

/** One read shared by both gauges of a scrape (prom-client collects them in the same tick). */
function shared<T>(read: () => Promise<T>): () => Promise<T> {
  let running: Promise<T> | undefined;
  return () => {
    running ??= read().finally(() => (running = undefined));
    return running;
  };
}
