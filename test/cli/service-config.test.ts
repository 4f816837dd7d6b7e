/**
 * The configuration issue 5 adds: every housekeeping entry of schedules.json is validated like
 * userSync (a bad one stops start-up naming it, exit 78 from the CLI), the packaged file holds
 * the four jobs (broadcasts included), and the new settings (catch-up, retention, analytics
 * retries, the HTTP token) are checked and the token is redacted.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultConfigDir, loadConfig, redactConfig } from '../../src/config/load.js';
import { ConfigError, EXIT_CONFIG } from '../../src/errors.js';
import { runCli } from '../helpers/cli.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function operatorFiles(config: object, schedules?: object): string {
  const dir = mkdtempSync(join(tmpdir(), 'mailwheel-svc-config-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  if (schedules) writeFileSync(join(dir, 'schedules.json'), JSON.stringify(schedules));
  return join(dir, 'config.json');
}

function fieldOf(config: object, schedules?: object): string {
  try {
    loadConfig({ file: operatorFiles(config, schedules), env: {} });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).field;
  }
  throw new Error('expected a ConfigError');
}

const every = { cron: '*/5 * * * *', timezone: 'UTC' };

describe('schedules.json housekeeping entries', () => {
  it('the packaged file schedules userSync, fullSync, retention, dailySummary and broadcasts', () => {
    const packaged = JSON.parse(readFileSync(join(defaultConfigDir, 'schedules.json'), 'utf8')) as Record<string, unknown>;
    expect(Object.keys(packaged).sort()).toEqual(['broadcasts', 'dailySummary', 'fullSync', 'retention', 'userSync']);
    expect(loadConfig({ env: {} }).schedules).toEqual(packaged);
  });

  it.each(['fullSync', 'retention', 'dailySummary', 'broadcasts'])('a bad cron expression in %s names that entry', (name) => {
    expect(fieldOf({}, { userSync: every, [name]: { cron: '61 * * * *', timezone: 'UTC' } })).toBe(`schedules.${name}.cron`);
    expect(fieldOf({}, { userSync: every, [name]: { cron: '0 3 * * *', timezone: 'Nowhere/Atlantis' } })).toBe(`schedules.${name}.timezone`);
  });

  it('an unknown entry is named (a typo must not silently turn a job off)', () => {
    expect(fieldOf({}, { userSync: every, retension: every })).toBe('schedules.retension');
  });

  it('optional entries may be left out', () => {
    const loaded = loadConfig({ file: operatorFiles({}, { userSync: every }), env: {} });
    expect(loaded.schedules).toEqual({ userSync: every });
  });

  it('the CLI exits 78 and names the entry', async () => {
    const file = operatorFiles({}, { userSync: every, dailySummary: { cron: 'at midnight', timezone: 'UTC' } });
    const r = await runCli(['config', 'check', '--config', file], { LOG_LEVEL: 'silent' });
    expect(r.code).toBe(EXIT_CONFIG);
    expect(r.stderr).toContain('schedules.dailySummary.cron');
    expect(r.stderr).toContain('at midnight');
  });
});

describe('service settings', () => {
  it('defaults: 15 min grace, 24 h lookback, 90/30 days retention, no token', () => {
    const { config } = loadConfig({ env: {} });
    expect(config.send.catchUpGraceMs).toBe(900_000);
    expect(config.send.catchUpLookbackHours).toBe(24);
    expect(config.retention).toEqual({ eventsDays: 90, deliveriesDays: 30 });
    expect(config.http.token).toBeNull();
  });

  it('rejects bad values naming the field', () => {
    expect(fieldOf({ send: { catchUpGraceMs: -1 } })).toBe('send.catchUpGraceMs');
    expect(fieldOf({ send: { catchUpLookbackHours: 500 } })).toBe('send.catchUpLookbackHours');
    expect(fieldOf({ retention: { deliveriesDays: 1 } })).toBe('retention.deliveriesDays');
    // Deleting delivery records inside the catch-up window would let a catch-up send twice.
    expect(fieldOf({ retention: { deliveriesDays: 2 }, send: { catchUpLookbackHours: 72 } })).toBe('retention.deliveriesDays');
    expect(fieldOf({ http: { token: 'short' } })).toBe('http.token');
    expect(fieldOf({ analytics: { retryMaxMs: 0 } })).toBe('analytics.retryMaxMs');
  });

  it('MAILWHEEL_HTTP_TOKEN sets the token, and config output redacts it', () => {
    const { config } = loadConfig({ env: { MAILWHEEL_HTTP_TOKEN: 'a-long-enough-secret-token' } });
    expect(config.http.token).toBe('a-long-enough-secret-token');
    expect(JSON.stringify(redactConfig(config))).not.toContain('a-long-enough-secret-token');
  });
});
