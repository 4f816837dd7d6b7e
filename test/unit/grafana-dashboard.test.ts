/**
 * monitoring/grafana-dashboard.json (issue 18) as Grafana imports it: schema version 39, the data
 * source an import-time input (`${DS_PROMETHEUS}`) on every panel and query, unique panel ids,
 * panels that do not overlap, and every query valid PromQL — checked by Prometheus's own parser:
 * the queries, with the dashboard variables filled in, become recording rules that
 * `promtool check rules` must accept (promtool: Debian's prometheus package, see
 * alert-rules.test.ts; never skipped). That each metric they name is exported is
 * test/integration/monitoring-metrics.test.ts.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';

const ROOT = resolve(import.meta.dirname, '../..');
const PROMTOOL = process.env.PROMTOOL ?? 'promtool';

interface Target {
  expr: string;
  refId: string;
  datasource: { type: string; uid: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type: string; uid: string };
  targets?: Target[];
  fieldConfig?: { defaults: { unit?: string } };
}
interface Dashboard {
  schemaVersion: number;
  uid: string;
  __inputs: Array<{ name: string; type: string; pluginId: string }>;
  panels: Panel[];
  templating: { list: Array<{ name: string; datasource?: { uid: string } }> };
}

const dashboard = JSON.parse(readFileSync(join(ROOT, 'monitoring/grafana-dashboard.json'), 'utf8')) as Dashboard;
const DS = { type: 'prometheus', uid: '${DS_PROMETHEUS}' };

const scratch: string[] = [];
afterAll(() => {
  for (const d of scratch) rmSync(d, { recursive: true, force: true });
});

describe('monitoring/grafana-dashboard.json', () => {
  it('imports with a Prometheus data source chosen at import time', () => {
    expect(dashboard.schemaVersion).toBe(39);
    expect(dashboard.uid).toBe('mailwheel-overview');
    expect(dashboard.__inputs).toEqual([expect.objectContaining({ name: 'DS_PROMETHEUS', type: 'datasource', pluginId: 'prometheus' })]);
    for (const v of dashboard.templating.list) expect(v.datasource, v.name).toEqual(DS);
    for (const p of dashboard.panels.filter((p) => p.type !== 'row')) {
      expect(p.datasource, p.title).toEqual(DS);
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets ?? []) expect(t.datasource, `${p.title} ${t.refId}`).toEqual(DS);
      expect(p.fieldConfig?.defaults.unit, `${p.title}: a unit on every panel`).toBeTruthy();
    }
  });

  it('has unique panel ids and no two panels overlap', () => {
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const cells = new Map<string, string>();
    for (const p of dashboard.panels) {
      const { x, y, w, h } = p.gridPos;
      expect(x + w, p.title).toBeLessThanOrEqual(24);
      for (let i = x; i < x + w; i++) {
        for (let j = y; j < y + h; j++) {
          const other = cells.get(`${i},${j}`);
          expect(other, `${p.title} overlaps ${other ?? ''}`).toBeUndefined();
          cells.set(`${i},${j}`, p.title);
        }
      }
    }
  });

  it('every query is valid PromQL (promtool check rules over them as recording rules)', async () => {
    const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
    expect(exprs.length).toBeGreaterThan(40);
    // The dashboard's variables as Grafana substitutes them ($instance is a regex: All is `.*`).
    const filled = (e: string): string => e.replaceAll('$__rate_interval', '1m').replaceAll('$job', 'mailwheel').replaceAll('$instance', '.*');
    const rules = { groups: [{ name: 'dashboard', rules: exprs.map((e, i) => ({ record: `dashboard:query_${i}`, expr: filled(e.expr) })) }] };
    const dir = mkdtempSync(join(tmpdir(), 'mailwheel-dashboard-'));
    scratch.push(dir);
    writeFileSync(join(dir, 'queries.yml'), stringify(rules));
    const { code, output } = await new Promise<{ code: number; output: string }>((done, fail) =>
      execFile(PROMTOOL, ['check', 'rules', 'queries.yml'], { cwd: dir, timeout: 60_000 }, (err, stdout, stderr) => {
        if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') fail(new Error(`promtool not found (${PROMTOOL}): install Debian's prometheus package (as .ci/run does) or set PROMTOOL; never skipped`));
        else done({ code: err ? 1 : 0, output: `${stdout}${stderr}` });
      }),
    );
    expect(code, output).toBe(0);
    expect(output).toContain(`SUCCESS: ${exprs.length} rules found`);
  });
});
