/**
 * bench/REPORT.md and its charts (bench/report/<suite>-<series>.svg), generated from the JSON
 * results in bench/results/ (never from the `*.quick.json` files: quick figures are not reported).
 *
 * `npm run bench` calls `writeReport` after a full run; `npm run bench:report` (this file run as a
 * script) regenerates the report from the existing JSON without rerunning anything.
 *
 * The output is a pure function of the JSON: no wall-clock date, no locale, fixed rounding. The
 * same results give byte-identical files, so a committed report only changes when figures do.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Row, Series } from './lib/suite.js';
import { renderChart } from './report-chart.js';
import { anchorOf, keptSections, type KeptSection } from './report-kept.js';

export { downsample, limitLabel, MAX_CHART_POINTS, renderChart, wrapTitle } from './report-chart.js';

/** Suites in the order the issue lists them; any other suite follows, alphabetically. */
export const SUITE_ORDER = ['mime', 'smtp', 'rate', 'registry', 'sync', 'peak', 'broadcast', 'old-design', 'scale'];

/** One `bench/results/<suite>.json`, checked field by field (a missing field is not an error). */
export interface SuiteRecord {
  suite: string;
  description: string;
  command: string;
  quick: boolean;
  startedAt: string | null;
  durationS: number | null;
  machine: Record<string, unknown> | null;
  config: Record<string, unknown>;
  rows: Row[];
  comparisons: Row[];
  notes: string[];
  series: Series[];
  /** Set when the file could not be read: the suite is listed, its figures are not. */
  error?: string;
}

// ---------------------------------------------------------------- formatting

/**
 * Thousands separators on the integer part, the decimals exactly as JSON stored them (suites
 * already round). Hand-written rather than toLocaleString so the output never depends on ICU.
 */
export function formatNumber(n: number): string {
  const s = String(n);
  if (!Number.isFinite(n) || /e/i.test(s)) return s;
  const [int = '', frac] = s.split('.');
  const sign = int.startsWith('-') ? '-' : '';
  const grouped = int.slice(sign.length).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return `${sign}${grouped}${frac === undefined ? '' : `.${frac}`}`;
}

/** One table cell: numbers grouped, null and missing as "–", pipes and newlines made harmless. */
export function formatCell(v: unknown): string {
  if (v === null || v === undefined) return '–';
  if (typeof v === 'number') return formatNumber(v);
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return s.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

/**
 * A Markdown table of rows with different keys: the columns of all rows in first-seen order
 * (column names carry the units, e.g. `msgsPerS`), numeric columns right-aligned.
 */
export function markdownTable(rows: readonly Row[]): string {
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  if (cols.length === 0) return '';
  const numeric = (c: string) => rows.every((r) => r[c] === null || r[c] === undefined || typeof r[c] === 'number');
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [
    line(cols.map(formatCell)),
    line(cols.map((c) => (numeric(c) ? '---:' : '---'))),
    ...rows.map((r) => line(cols.map((c) => formatCell(r[c])))),
  ].join('\n');
}

/** A configuration value on one line: primitives as cells, lists of primitives joined, the rest as compact JSON. */
function configValue(v: unknown): string {
  if (Array.isArray(v) && v.every((x) => x === null || typeof x !== 'object')) return v.map(formatCell).join(', ');
  if (v !== null && typeof v === 'object') return `\`${JSON.stringify(v).replace(/\|/g, '\\|').replace(/`/g, "'")}\``;
  return formatCell(v);
}

function configTable(config: Record<string, unknown>): string {
  const keys = Object.keys(config);
  if (keys.length === 0) return '';
  return ['| setting | value |', '| --- | --- |', ...keys.map((k) => `| ${formatCell(k)} | ${configValue(config[k])} |`)].join('\n');
}

/** `2026-11-26T03:59:32.535Z` → `2026-11-26 03:59 UTC` (always UTC: the report must not depend on TZ). */
function formatDate(iso: string | null): string {
  if (iso === null || Number.isNaN(Date.parse(iso))) return 'unknown date';
  return `${new Date(iso).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

function formatDuration(s: number | null): string {
  if (s === null) return 'unknown duration';
  if (s < 60) return `${formatNumber(s)} s`;
  const m = Math.floor(s / 60);
  return `${formatNumber(s)} s (${m} min ${Math.round(s - m * 60)} s)`;
}

/** One line under a chart: what a reader without the image needs (and a check on the image). */
function seriesSummary(s: Series): string {
  const ys = s.points.map((p) => p[1]).filter(Number.isFinite);
  if (ys.length === 0) return 'no data points';
  // Loops, not Math.min(...ys): a long series would overflow the argument list.
  let [min, max, sum] = [Infinity, -Infinity, 0];
  for (const y of ys) [min, max, sum] = [Math.min(min, y), Math.max(max, y), sum + y];
  const round1 = (n: number) => Math.round(n * 10) / 10;
  const limit = typeof s.limit === 'number' ? `, limit ${formatNumber(s.limit)}` : '';
  return `${formatNumber(ys.length)} point${ys.length === 1 ? '' : 's'}; ${s.unit}: min ${formatNumber(round1(min))}, mean ${formatNumber(round1(sum / ys.length))}, max ${formatNumber(round1(max))}${limit}`;
}

// ---------------------------------------------------------------- reading results

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Rows hold primitives; anything else a suite put there is shown as compact JSON rather than dropped. */
function toRows(v: unknown): Row[] {
  if (!Array.isArray(v)) return [];
  return v.filter(isRecord).map((r) => {
    const row: Row = {};
    for (const [k, x] of Object.entries(r)) row[k] = x === null || ['string', 'number', 'boolean'].includes(typeof x) ? (x as Row[string]) : JSON.stringify(x);
    return row;
  });
}

function toSeries(v: unknown): Series[] {
  if (!Array.isArray(v)) return [];
  return v.filter(isRecord).map((s, i) => ({
    id: typeof s['id'] === 'string' && s['id'] !== '' ? s['id'] : `series${i + 1}`,
    title: typeof s['title'] === 'string' ? s['title'] : `series ${i + 1}`,
    unit: typeof s['unit'] === 'string' ? s['unit'] : '',
    limit: typeof s['limit'] === 'number' ? s['limit'] : null,
    points: (Array.isArray(s['points']) ? s['points'] : []).filter(
      (p): p is [number, number] => Array.isArray(p) && typeof p[0] === 'number' && typeof p[1] === 'number',
    ),
  }));
}

/** Reads one result file leniently: whatever is missing or malformed becomes empty, never an exception. */
export function parseResult(json: unknown, fallbackName: string): SuiteRecord {
  const r = isRecord(json) ? json : {};
  const str = (k: string) => (typeof r[k] === 'string' ? (r[k] as string) : null);
  return {
    suite: str('suite') ?? fallbackName,
    description: str('description') ?? '',
    command: str('command') ?? `npm run bench ${fallbackName}`,
    quick: r['quick'] === true,
    startedAt: str('startedAt'),
    durationS: typeof r['durationS'] === 'number' ? r['durationS'] : null,
    machine: isRecord(r['machine']) ? r['machine'] : null,
    config: isRecord(r['config']) ? r['config'] : {},
    rows: toRows(r['rows']),
    comparisons: toRows(r['comparisons']),
    notes: Array.isArray(r['notes']) ? r['notes'].map((n) => (typeof n === 'string' ? n : JSON.stringify(n))) : [],
    series: toSeries(r['series']),
  };
}

/** Fixed suites first in their order, then the rest alphabetically. */
export function orderSuites(names: Iterable<string>): string[] {
  const rank = (n: string) => (SUITE_ORDER.includes(n) ? SUITE_ORDER.indexOf(n) : SUITE_ORDER.length);
  return [...new Set(names)].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
}

// ---------------------------------------------------------------- the report

/** A chart's file name: `<suite>-<id>.svg`, made file-name-safe and unique within the suite. */
export function chartFiles(suite: string, series: readonly Series[]): string[] {
  const seen = new Set<string>();
  return series.map((s) => {
    const base = `${suite}-${s.id}`.replace(/[^A-Za-z0-9._-]+/g, '-');
    let name = base;
    for (let n = 2; seen.has(name); n++) name = `${base}-${n}`;
    seen.add(name);
    return `${name}.svg`;
  });
}

/** A stable key for comparing machines (key order in the JSON must not matter). */
function machineKey(m: Record<string, unknown> | null): string {
  const sortKeys = (v: unknown): unknown =>
    isRecord(v) ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k])])) : v;
  return JSON.stringify(sortKeys(m));
}

function describeMachine(m: Record<string, unknown> | null): string {
  if (m === null) return 'not recorded';
  const v = (k: string) => (m[k] === undefined ? 'unknown' : formatCell(m[k]));
  const versions = isRecord(m['versions']) ? Object.entries(m['versions']).map(([k, x]) => `${k} ${formatCell(x)}`).join(', ') : 'not recorded';
  return `${v('cores')} cores (${v('cpuModel')}), ${v('memoryGiB')} GiB memory, ${v('os')}, Node ${v('node')}; packages: ${versions}`;
}

/** The machine most suites ran on (ties: the earlier suite in report order). */
function commonMachine(records: readonly SuiteRecord[]): string | null {
  const counts = new Map<string, number>();
  for (const r of records) if (r.machine !== null) counts.set(machineKey(r.machine), (counts.get(machineKey(r.machine)) ?? 0) + 1);
  let best: string | null = null;
  for (const [k, n] of counts) if (best === null || n > (counts.get(best) ?? 0)) best = k;
  return best;
}

function suiteSection(r: SuiteRecord, files: readonly string[], sameMachine: boolean): string {
  const out = [`## ${r.suite}`, ''];
  if (r.error !== undefined) return [...out, `**Result unreadable**: ${r.error}`, ''].join('\n');
  if (r.description !== '') out.push(r.description, '');
  out.push(`- Command: \`${r.command}\``, `- Ran: ${formatDate(r.startedAt)}, took ${formatDuration(r.durationS)}`);
  if (r.quick) out.push('- **Quick run**: counts scaled down; these figures are not comparable.');
  if (r.machine === null) out.push('- Machine: not recorded in the result');
  else if (!sameMachine) out.push(`- **Machine differs from the header**: ${describeMachine(r.machine)}`);
  out.push('');
  const block = (title: string, body: string) => (body === '' ? [] : [`**${title}**`, '', body, '']);
  out.push(...block('Configuration', configTable(r.config)));
  out.push(...block('Results', markdownTable(r.rows)));
  out.push(...block('Comparisons', markdownTable(r.comparisons)));
  out.push(...block('Notes', r.notes.map((n) => `- ${n.replace(/\r?\n/g, '\n  ')}`).join('\n')));
  r.series.forEach((s, i) => out.push(`![${s.title.replace(/[[\]<>]/g, '')}](report/${files[i] ?? ''})`, '', `*${seriesSummary(s)}*`, ''));
  return out.join('\n');
}

/**
 * The whole REPORT.md for these results; `known` adds suites that exist but have no result ("not
 * run"); `kept` are earlier sections of suites without a result, shown as they were.
 */
export function renderReport(records: readonly SuiteRecord[], known: Iterable<string> = [], quickOnly: Iterable<string> = [], kept: ReadonlyMap<string, KeptSection> = new Map()): string {
  const byName = new Map(records.map((r) => [r.suite, r]));
  const names = orderSuites([...SUITE_ORDER, ...known, ...byName.keys(), ...kept.keys()]);
  const keptNames = names.filter((n) => !byName.has(n) && kept.has(n));
  const ran = names.map((n) => byName.get(n)).filter((r): r is SuiteRecord => r !== undefined);
  const quick = new Set(quickOnly);
  const common = commonMachine(ran);
  const starts = ran.map((r) => r.startedAt).filter((s): s is string => s !== null && !Number.isNaN(Date.parse(s))).sort();
  const ends = ran
    .filter((r) => r.startedAt !== null && !Number.isNaN(Date.parse(r.startedAt)))
    .map((r) => new Date(Date.parse(r.startedAt ?? '') + (r.durationS ?? 0) * 1000).toISOString())
    .sort();
  const total = Math.round(ran.reduce((a, r) => a + (r.durationS ?? 0), 0) * 10) / 10;
  const commonRecord = ran.find((r) => machineKey(r.machine) === common);
  const differing = ran.filter((r) => r.machine !== null && machineKey(r.machine) !== common).map((r) => r.suite);
  const out = [
    '# Benchmark report',
    '',
    // Dated by the results, not by the clock: regenerating from the same JSON changes nothing.
    `Generated by \`npm run bench\` (regenerate from the JSON with \`npm run bench:report\`) from the results in \`bench/results/\`, measured ${starts.length === 0 ? 'at unknown dates' : `${formatDate(starts[0] ?? null)} – ${formatDate(ends[ends.length - 1] ?? null)}`}. Quick runs (\`*.quick.json\`) are never reported. Benchmarks assert nothing about speed; every comparison below was measured in the same run.`,
    '',
    ...(keptNames.length === 0
      ? []
      : [`**Partly regenerated**: ${ran.length === 0 ? 'no section' : ran.map((r) => r.suite).join(', ')} from the results in \`bench/results/\`; ${keptNames.join(', ')} kept as the previous report had them (no result of theirs in \`bench/results/\`; dates and machine in their rows and sections).`, '']),
    `**Machine**: ${ran.length === 0 ? 'no results' : describeMachine(commonRecord?.machine ?? null)}${differing.length > 0 ? ` (suites measured elsewhere, see their sections: ${differing.join(', ')})` : ''}`,
    '',
    `**Total bench duration**: ${formatDuration(total)}, the sum of the suites' own durations, ${ran.length} of ${names.length} suites`,
    '',
    '| suite | status | ran | duration |',
    '| --- | --- | --- | ---: |',
    ...names.map((n) => {
      const r = byName.get(n);
      const k = kept.get(n);
      if (r === undefined && k !== undefined) return k.row;
      if (r === undefined) return `| ${n} | not run${quick.has(n) ? ' (quick run only)' : ''} | – | – |`;
      const status = r.error !== undefined ? 'result unreadable' : r.quick ? 'quick run' : 'ran';
      return `| [${n}](#${anchorOf(n)}) | ${status} | ${formatDate(r.startedAt)} | ${r.durationS === null ? '–' : `${formatNumber(r.durationS)} s`} |`;
    }),
    '',
  ];
  for (const n of names) {
    const r = byName.get(n);
    if (r !== undefined) out.push(suiteSection(r, chartFiles(r.suite, r.series), machineKey(r.machine) === common));
    else if (kept.has(n)) out.push(kept.get(n)?.section ?? '');
  }
  return `${out.join('\n').replace(/\n+$/, '')}\n`;
}

/**
 * `<chart>.json` beside `<chart>.svg`: the series the chart is drawn from and where it came from.
 * The results JSON of a suite is not always committed (a subset run has only its own), so a kept
 * section's charts could not be redrawn without it.
 */
export function chartDataFile(svgFile: string): string {
  return svgFile.replace(/\.svg$/, '.json');
}

/** The series of a chart data file; null when there is none or it is unreadable (the chart is then kept as it is). */
export function readChartData(path: string): Series | null {
  if (!existsSync(path)) return null;
  try {
    const data: unknown = JSON.parse(readFileSync(path, 'utf8'));
    return (isRecord(data) ? toSeries([data['series']])[0] : undefined) ?? null;
  } catch {
    return null;
  }
}

/** What writeReport did: the report's path, the suites regenerated from their results and those kept. */
export interface ReportWritten {
  path: string;
  regenerated: string[];
  kept: string[];
}

/**
 * Writes `<resultsDir>/../REPORT.md` and `<resultsDir>/../report/*.svg` from every
 * `<resultsDir>/<suite>.json`. A suite without a result keeps the section (and charts) the
 * existing report has for it (report-kept.ts), so running a subset of the suites updates only
 * their sections; its charts are redrawn from their data files (chartDataFile). Charts neither
 * produced nor kept are removed, with their data, so the directory matches the report.
 */
export function writeReport(resultsDir: string): ReportWritten {
  const benchDir = resolve(resultsDir, '..');
  const chartDir = join(benchDir, 'report');
  const files = existsSync(resultsDir) ? readdirSync(resultsDir).sort() : [];
  const records: SuiteRecord[] = [];
  for (const f of files.filter((x) => x.endsWith('.json') && !x.endsWith('.quick.json'))) {
    const name = f.slice(0, -'.json'.length);
    try {
      records.push(parseResult(JSON.parse(readFileSync(join(resultsDir, f), 'utf8')), name));
    } catch (err) {
      // One unreadable file must not lose the report of the others: it shows as a note.
      records.push({ ...parseResult({}, name), error: `could not read ${f}: ${err instanceof Error ? err.message : String(err)}` });
    }
  }
  const known = existsSync(benchDir) ? readdirSync(benchDir).filter((f) => f.endsWith('.bench.ts')).map((f) => f.slice(0, -'.bench.ts'.length)) : [];
  const quickOnly = files.filter((f) => f.endsWith('.quick.json')).map((f) => f.slice(0, -'.quick.json'.length));
  const path = join(benchDir, 'REPORT.md');
  const ran = new Set(records.map((r) => r.suite));
  const kept = new Map([...(existsSync(path) ? keptSections(readFileSync(path, 'utf8')) : new Map<string, KeptSection>())].filter(([n]) => !ran.has(n)));
  mkdirSync(chartDir, { recursive: true });
  const written = new Set<string>();
  for (const file of [...kept.values()].flatMap((k) => k.charts)) {
    written.add(file);
    // A kept chart is redrawn from its data (so every chart has the current look); without its
    // data file it stays the picture it was.
    const series = readChartData(join(chartDir, chartDataFile(file)));
    if (series === null) continue;
    writeFileSync(join(chartDir, file), renderChart(series));
    written.add(chartDataFile(file));
  }
  for (const r of records) {
    chartFiles(r.suite, r.series).forEach((file, i) => {
      const s = r.series[i];
      if (s === undefined) return;
      writeFileSync(join(chartDir, file), renderChart(s));
      const source = `bench/results/${r.suite}.json${r.startedAt === null ? '' : `, the run started ${r.startedAt}`}`;
      writeFileSync(join(chartDir, chartDataFile(file)), `${JSON.stringify({ source, series: s })}\n`);
      written.add(file).add(chartDataFile(file));
    });
  }
  for (const f of readdirSync(chartDir)) if ((f.endsWith('.svg') || f.endsWith('.json')) && !written.has(f)) rmSync(join(chartDir, f));
  writeFileSync(path, renderReport(records, known, quickOnly, kept));
  return { path, regenerated: [...ran].sort(), kept: [...kept.keys()].sort() };
}

/** Run as a script (`npm run bench:report`), not when imported by bench/run.ts or a test. */
function isMain(): boolean {
  const arg = process.argv[1];
  if (arg === undefined) return false;
  try {
    return realpathSync(arg) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  const resultsDir = join(dirname(fileURLToPath(import.meta.url)), 'results');
  const w = writeReport(resultsDir);
  console.log(`[bench] report written to ${w.path}: regenerated ${w.regenerated.join(', ') || 'none'}; kept from the previous report ${w.kept.join(', ') || 'none'}`);
}
