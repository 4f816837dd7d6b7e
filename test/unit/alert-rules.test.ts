/**
 * monitoring/alerts.yml (issue 18) through Prometheus's own `promtool` (Debian package
 * `prometheus`, installed by .ci/run): `check rules` validates the file, `test rules` runs
 * monitoring/alerts.test.yml, where each alert fires on a synthetic series and stays silent on
 * another. Nothing here is skipped: without promtool every test fails, saying how to install it.
 * Also checked: every alert has `for`, a severity and both annotations, and a firing and a silent
 * expectation in the test file; and the harness can fail (a mutated rule breaks the tests).
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const ROOT = resolve(import.meta.dirname, '../..');
const RULES = join(ROOT, 'monitoring/alerts.yml');
const TESTS = join(ROOT, 'monitoring/alerts.test.yml');
const PROMTOOL = process.env.PROMTOOL ?? 'promtool';

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleTest {
  eval_time: string;
  alertname: string;
  exp_alerts?: Array<{ exp_labels: Record<string, string> }>;
}

/** Runs promtool; a missing binary is a failure with the way to get it, never a skip. */
function promtool(args: string[], cwd = ROOT): Promise<{ code: number; output: string }> {
  return new Promise((done, fail) => {
    execFile(PROMTOOL, args, { cwd, timeout: 60_000 }, (err, stdout, stderr) => {
      const output = `${stdout}${stderr}`;
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') {
        fail(new Error(`promtool not found (${PROMTOOL}): install Debian's prometheus package (apt-get install --no-install-recommends prometheus, as .ci/run does) or set PROMTOOL; the alert rule checks are never skipped`));
        return;
      }
      done({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, output });
    });
  });
}

const rules = (): Rule[] => (parse(readFileSync(RULES, 'utf8')) as { groups: Array<{ rules: Rule[] }> }).groups.flatMap((g) => g.rules);
const ruleTests = (): RuleTest[] => (parse(readFileSync(TESTS, 'utf8')) as { tests: Array<{ alert_rule_test?: RuleTest[] }> }).tests.flatMap((t) => t.alert_rule_test ?? []);

const scratch: string[] = [];
afterAll(() => {
  for (const d of scratch) rmSync(d, { recursive: true, force: true });
});

describe('monitoring/alerts.yml', () => {
  it('promtool check rules accepts it, with every rule counted', async () => {
    const { code, output } = await promtool(['check', 'rules', RULES]);
    expect(code, output).toBe(0);
    expect(output).toContain(`SUCCESS: ${rules().length} rules found`);
  });

  it('promtool test rules: every case of monitoring/alerts.test.yml passes', async () => {
    const { code, output } = await promtool(['test', 'rules', TESTS]);
    expect(code, output).toBe(0);
    expect(output).toContain('SUCCESS');
  });

  it('every alert has for, a severity, a summary and a description, and a firing and a silent case', () => {
    const cases = ruleTests();
    const all = rules();
    expect(all.length).toBeGreaterThanOrEqual(15);
    for (const r of all) {
      expect(r.for, r.alert).toMatch(/^\d+[smh]$/);
      expect(['critical', 'warning'], r.alert).toContain(r.labels?.severity);
      expect(r.annotations?.summary, r.alert).toBeTruthy();
      expect(r.annotations?.description, r.alert).toBeTruthy();
      const mine = cases.filter((c) => c.alertname === r.alert);
      expect(
        mine.some((c) => (c.exp_alerts ?? []).length > 0),
        `${r.alert}: no case where it fires`,
      ).toBe(true);
      expect(
        mine.some((c) => (c.exp_alerts ?? []).length === 0),
        `${r.alert}: no case where it stays silent`,
      ).toBe(true);
    }
    // No case names an alert that does not exist (a renamed alert would leave its cases testing nothing).
    const names = new Set(all.map((r) => r.alert));
    for (const c of cases) expect(names, c.alertname).toContain(c.alertname);
  });

  it('the tests can fail: a rule that fires on a closed breaker breaks them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mailwheel-alerts-'));
    scratch.push(dir);
    const text = readFileSync(RULES, 'utf8');
    const mutated = text.replace('mailwheel_smtp_breaker_state{state="open"} == 1', 'mailwheel_smtp_breaker_state == 1');
    expect(mutated).not.toBe(text);
    writeFileSync(join(dir, 'alerts.yml'), mutated);
    copyFileSync(TESTS, join(dir, 'alerts.test.yml'));
    const { code, output } = await promtool(['test', 'rules', 'alerts.test.yml'], dir);
    expect(code, output).not.toBe(0);
    expect(output).toContain('MailwheelSmtpBreakerOpen');
  });
});
