/**
 * Housekeeping: jobs run on their schedules.json cron (a real node-cron timer, every second here),
 * a job without an entry is not scheduled and says so, runs never overlap, failures are counted
 * and never thrown, and close() stops the timers.
 */
import { Writable } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import { Housekeeping } from '../../src/app/housekeeping.js';
import { ErrorCodes } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { mwError } from '../helpers/errors.js';

function capture(): { log: ReturnType<typeof createLogger>; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { log: createLogger('info', sink), lines };
}

describe('Housekeeping', () => {
  it('runs a job on its cron, reports runs, and stops on close', async () => {
    const { log } = capture();
    const runs: string[] = [];
    const hk = new Housekeeping({ userSync: { cron: '* * * * * *', timezone: 'UTC' } }, log, { onRun: (job, ok) => runs.push(`${job}:${ok}`) });
    let n = 0;
    expect(hk.add('userSync', async () => void n++)).toBe(true);
    await vi.waitFor(() => expect(n).toBeGreaterThanOrEqual(1), { timeout: 3000, interval: 50 });
    await hk.close();
    const after = n;
    await new Promise((r) => setTimeout(r, 1200));
    expect(n).toBe(after);
    expect(runs[0]).toBe('userSync:true');
    expect(hk.stats()['userSync']).toMatchObject({ runs: after, failures: 0 });
  });

  it('a job without a schedules.json entry is registered but not scheduled, with a warning naming it', async () => {
    const { log, lines } = capture();
    const hk = new Housekeeping({ userSync: { cron: '*/5 * * * *', timezone: 'UTC' } }, log);
    let ran = false;
    expect(hk.add('retention', async () => void (ran = true))).toBe(false);
    expect(lines.some((l) => l['level'] === 40 && String(l['msg']).includes('"retention"'))).toBe(true);
    expect(await hk.run('retention')).toBe(true);
    expect(ran).toBe(true);
    await hk.close();
  });

  it('a failing run is logged and counted, never thrown; runs of one job do not overlap', async () => {
    const { log, lines } = capture();
    const hk = new Housekeeping({ userSync: { cron: '0 0 1 1 *', timezone: 'UTC' } }, log);
    let concurrent = 0;
    let maxConcurrent = 0;
    let fail = true;
    hk.add('userSync', async () => {
      concurrent++;
      maxConcurrent = Math.max(maxConcurrent, concurrent);
      await new Promise((r) => setTimeout(r, 30));
      concurrent--;
      if (fail) throw new Error('mongo down');
      return { read: 3 };
    });
    const [a, b] = await Promise.all([hk.run('userSync'), hk.run('userSync')]);
    expect([a, b]).toEqual([false, false]);
    expect(maxConcurrent).toBe(1);
    fail = false;
    expect(await hk.run('userSync')).toBe(true);
    expect(hk.stats()['userSync']).toMatchObject({ runs: 2, failures: 1, lastError: null });
    expect(lines.some((l) => l['msg'] === 'housekeeping userSync failed')).toBe(true);
    expect(lines.find((l) => l['msg'] === 'housekeeping userSync done')?.['result']).toEqual({ read: 3 });
    await hk.close();
    expect(() => hk.add('dailySummary', async () => undefined)).toThrow(mwError(ErrorCodes.INTERNAL, /closed/));
  });
});
