/** The benchmark report generator's pure parts: number and table formatting, the SVG chart, the report's layout. */
import { existsSync, readdirSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Series } from '../../bench/lib/suite.js';
import {
  chartFiles,
  downsample,
  formatNumber,
  markdownTable,
  MAX_CHART_POINTS,
  parseResult,
  renderChart,
  renderReport,
  wrapTitle,
  writeReport,
} from '../../bench/report.js';
import { SERIES_COLOURS } from '../../src/charts/series-chart.js';
import { isRoundScale, parseSvg, plotSpan, valueAxis } from '../helpers/svg.js';

/** The data line's vertices (pixels): the longest unfilled path in the data colour (markers are filled). */
function dataLine(svg: string): Array<[number, number]> {
  const lines = parseSvg(svg).paths.filter((p) => p.stroke === SERIES_COLOURS.data && p.fill === 'none');
  return lines.map((p) => p.points).sort((a, b) => b.length - a.length)[0] ?? [];
}

/** The limit line's vertices, or null: the dashed path in the limit colour. */
function limitLine(svg: string): Array<[number, number]> | null {
  return parseSvg(svg).paths.find((p) => p.stroke === SERIES_COLOURS.limit && p.dash !== null)?.points ?? null;
}

/** The plot's top: the highest horizontal grid line. */
function plotTop(svg: string): number {
  const parsed = parseSvg(svg);
  const span = plotSpan(parsed);
  const grid = parsed.paths.filter((p) => p.points.length === 2 && p.points[0]?.[1] === p.points[1]?.[1] && p.points[0]?.[0] === span.left && p.points[1]?.[0] === span.right);
  return Math.min(...grid.map((p) => p.points[0]?.[1] ?? Infinity));
}

const perSecond = (values: number[], limit: number | null = 20): Series => ({
  id: 'limit-20',
  title: 'Sends per second at 20/s',
  unit: 'messages/s',
  limit,
  points: values.map((v, i): [number, number] => [i, v]),
});

describe('formatNumber', () => {
  it('groups thousands and keeps the stored decimals', () => {
    expect(formatNumber(103095)).toBe('103,095');
    expect(formatNumber(999)).toBe('999');
    expect(formatNumber(1000)).toBe('1,000');
    expect(formatNumber(-1234567.89)).toBe('-1,234,567.89');
    expect(formatNumber(0.41)).toBe('0.41');
    expect(formatNumber(69.4)).toBe('69.4');
    expect(formatNumber(1e21)).toBe('1e+21');
  });
});

describe('markdownTable', () => {
  it('takes the columns of all rows in first-seen order, right-aligns numeric ones, shows nulls as a dash', () => {
    const t = markdownTable([
      { method: 'a | b', msgsPerS: 5628 },
      { method: 'c', msgsPerS: null, extra: true },
    ]).split('\n');
    expect(t).toEqual([
      '| method | msgsPerS | extra |',
      '| --- | ---: | --- |',
      '| a \\| b | 5,628 | – |',
      '| c | – | true |',
    ]);
  });

  it('is empty for no rows', () => {
    expect(markdownTable([])).toBe('');
  });
});

describe('renderChart', () => {
  it('draws one vertex per point and a dashed limit line at the limit value, labelled, on round ticks from 0', () => {
    const values = Array.from({ length: 30 }, (_, i) => (i % 7 === 0 ? 19 : 20));
    const svg = renderChart(perSecond(values));
    const pts = dataLine(svg);
    expect(pts).toHaveLength(30);
    const line = limitLine(svg);
    expect(line).not.toBeNull();
    // A point whose value equals the limit sits on the limit line.
    expect(Math.abs((line?.[0]?.[1] ?? NaN) - (pts[1]?.[1] ?? NaN))).toBeLessThan(0.05);
    expect(line?.[1]?.[1]).toBe(line?.[0]?.[1]);
    // Higher values are higher on the page (smaller y).
    expect(pts[0]?.[1]).toBeGreaterThan(pts[1]?.[1] ?? Infinity);
    const parsed = parseSvg(svg);
    const axis = valueAxis(parsed, plotSpan(parsed).left);
    expect(axis.values[0]).toBe(0);
    expect(isRoundScale(axis.values), axis.values.join('/')).toBe(true);
    expect(Math.abs((line?.[0]?.[1] ?? NaN) - axis.y(20))).toBeLessThan(0.6);
    const texts = parsed.texts.map((t) => t.text);
    expect(texts).toEqual(expect.arrayContaining(['limit 20/s', 'seconds', 'messages/s']));
    expect([parsed.width, parsed.height]).toEqual([800, 300]);
  });

  it('has no limit line without a limit, and draws the limit inside the chart even when the data is far below it', () => {
    expect(limitLine(renderChart(perSecond([1, 2, 3], null)))).toBeNull();
    const svg = renderChart({ ...perSecond([1, 2, 3]), unit: 'MiB', limit: 512 });
    const parsed = parseSvg(svg);
    const axis = valueAxis(parsed, plotSpan(parsed).left);
    expect(axis.values.at(-1)).toBeGreaterThanOrEqual(512);
    expect(Math.abs((limitLine(svg)?.[0]?.[1] ?? NaN) - axis.y(512))).toBeLessThan(0.6);
    expect(parsed.texts.map((t) => t.text)).toContain('limit 512 MiB');
  });

  it('escapes text, survives empty and non-finite input, and is deterministic', () => {
    const s: Series = { id: 'x', title: 'a <b> & "c"', unit: 'messages/s', points: [] };
    const texts = parseSvg(renderChart(s)).texts.map((t) => t.text);
    expect(texts).toContain('a <b> & "c"');
    expect(texts).toContain('no data');
    expect(dataLine(renderChart({ ...s, points: [[0, 1], [1, Number.NaN], [2, 3]] }))).toHaveLength(2);
    const first = renderChart(perSecond([5, 6, 7]));
    renderChart(perSecond([1]));
    expect(renderChart(perSecond([5, 6, 7]))).toBe(first);
  });

  it('downsamples long series but keeps their extremes', () => {
    const points = Array.from({ length: 10_000 }, (_, i): [number, number] => [i / 10, i === 4321 ? 999 : i % 50]);
    const kept = downsample(points);
    expect(kept.length).toBeLessThanOrEqual(MAX_CHART_POINTS);
    expect(kept).toContainEqual([432.1, 999]);
    expect(kept.map((p) => p[0])).toEqual([...kept.map((p) => p[0])].sort((a, b) => a - b));
    // The drawing keeps the spike (zrender itself merges vertices closer than a pixel, so no count).
    const svg = renderChart({ ...perSecond([]), points });
    const parsed = parseSvg(svg);
    const line = dataLine(svg);
    expect(line.length).toBeLessThanOrEqual(kept.length);
    expect(Math.abs(Math.min(...line.map((p) => p[1])) - valueAxis(parsed, plotSpan(parsed).left).y(999))).toBeLessThan(0.6);
  });
});

describe('wrapTitle', () => {
  it('keeps short titles on one line and wraps long ones at spaces into at most two', () => {
    expect(wrapTitle('Sends per second at 20/s')).toEqual(['Sends per second at 20/s']);
    expect(wrapTitle('aaa bbb ccc', 7)).toEqual(['aaa bbb', 'ccc']);
    const lines = wrapTitle('word '.repeat(60), 20);
    expect(lines).toHaveLength(2);
    expect(lines.every((l) => l.length <= 20)).toBe(true);
    expect(lines[1]?.endsWith('…')).toBe(true);
  });

  it('moves the plot down for a two-line title', () => {
    const title = 'Messages per second at the sink, rate.perSecond = 1000 (fixed 1 s windows from the first arrival)';
    const long = renderChart({ ...perSecond([20]), title });
    const texts = parseSvg(long).texts.map((t) => t.text);
    expect(texts).toEqual(expect.arrayContaining(wrapTitle(title)));
    expect(wrapTitle(title)).toHaveLength(2);
    expect(plotTop(long)).toBeGreaterThan(plotTop(renderChart(perSecond([20]))) + 10);
  });
});

describe('chartFiles', () => {
  it('names charts <suite>-<id>.svg, file-name-safe and unique', () => {
    const s = (id: string): Series => ({ id, title: id, unit: '', points: [] });
    expect(chartFiles('rate', [s('limit-20'), s('a/b c'), s('limit-20')])).toEqual(['rate-limit-20.svg', 'rate-a-b-c.svg', 'rate-limit-20-2.svg']);
  });
});

describe('renderReport', () => {
  const machine = { cpuModel: 'AMD EPYC', cores: 2, memoryGiB: 23.5, os: 'linux', node: 'v20.20.2', versions: { nodemailer: '10.6.1' } };
  const result = (suite: string, extra: Record<string, unknown> = {}) =>
    parseResult({ suite, description: `${suite} suite`, command: `npm run bench ${suite}`, startedAt: '2026-11-26T03:38:37.392Z', durationS: 90, machine, config: { pools: [1, 10] }, rows: [{ n: 12345 }], comparisons: [], notes: ['a note'], ...extra }, suite);

  it('orders suites as the issue lists them, then the rest alphabetically, and lists the missing ones as not run', () => {
    const md = renderReport([result('zzz'), result('rate'), result('mime'), result('aaa')], [], ['sync']);
    const sections = [...md.matchAll(/^## (.+)$/gm)].map((m) => m[1]);
    expect(sections).toEqual(['mime', 'rate', 'aaa', 'zzz']);
    expect(md).toContain('| sync | not run (quick run only) | – | – |');
    expect(md).toContain('| old-design | not run | – | – |');
    expect(md).toContain('**Total bench duration**: 360 s (6 min 0 s)');
    expect(md).toContain('2 cores (AMD EPYC), 23.5 GiB memory, linux, Node v20.20.2; packages: nodemailer 10.6.1');
    expect(md).toContain('| pools | 1, 10 |');
    expect(md).toContain('| 12,345 |');
    expect(md).toContain('- a note');
  });

  it('names a suite measured on another machine, and embeds each series chart', () => {
    const series = [perSecond([20, 20]), { ...perSecond([1]), id: 'other', title: 'Other' }];
    const md = renderReport([result('mime'), result('smtp'), result('rate', { machine: { ...machine, cores: 4 }, series })]);
    expect(md).toContain('suites measured elsewhere, see their sections: rate');
    expect(md).toMatch(/## rate\n[\s\S]*\*\*Machine differs from the header\*\*: 4 cores/);
    expect(md).toContain('![Sends per second at 20/s](report/rate-limit-20.svg)');
    expect(md).toContain('![Other](report/rate-other.svg)');
  });
});

describe('writeReport', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('reads <suite>.json but not *.quick.json, writes the charts, and removes stale ones', () => {
    dir = mkdtempSync(join(tmpdir(), 'mw-report-test-'));
    const results = join(dir, 'results');
    mkdirSync(join(dir, 'report'), { recursive: true });
    mkdirSync(results);
    writeFileSync(join(dir, 'report', 'old-gone.svg'), '<svg/>');
    writeFileSync(join(dir, 'report', 'old-gone.json'), '{}');
    writeFileSync(join(results, 'rate.json'), JSON.stringify({ suite: 'rate', series: [perSecond([20, 19, 20])] }));
    writeFileSync(join(results, 'peak.quick.json'), JSON.stringify({ suite: 'peak', rows: [{ secret: 'quick figure' }] }));
    const { path } = writeReport(results);
    expect(path).toBe(join(dir, 'REPORT.md'));
    const md = readFileSync(path, 'utf8');
    expect(md).toContain('## rate');
    expect(md).not.toContain('quick figure');
    expect(md).toContain('| peak | not run (quick run only) | – | – |');
    expect(dataLine(readFileSync(join(dir, 'report', 'rate-limit-20.svg'), 'utf8'))).toHaveLength(3);
    // Beside each chart, the series it is drawn from, so a kept section's chart can be redrawn.
    const data = JSON.parse(readFileSync(join(dir, 'report', 'rate-limit-20.json'), 'utf8')) as { source: string; series: Series };
    expect(data.series.points).toEqual(perSecond([20, 19, 20]).points);
    expect(data.source).toBe('bench/results/rate.json');
    expect(existsSync(join(dir, 'report', 'old-gone.svg'))).toBe(false);
    expect(existsSync(join(dir, 'report', 'old-gone.json'))).toBe(false);
  });

  it('a subset run regenerates its own sections and keeps the others, their rows and charts as they were', () => {
    dir = mkdtempSync(join(tmpdir(), 'mw-report-test-'));
    const results = join(dir, 'results');
    mkdirSync(results);
    // A full run: rate and peak.
    writeFileSync(join(results, 'rate.json'), JSON.stringify({ suite: 'rate', startedAt: '2026-11-01T10:00:00.000Z', durationS: 9, rows: [{ limit: 20, figure: 111 }], series: [perSecond([20, 19, 20])] }));
    writeFileSync(join(results, 'peak.json'), JSON.stringify({ suite: 'peak', startedAt: '2026-11-01T10:05:00.000Z', durationS: 7, rows: [{ figure: 222 }], series: [{ ...perSecond([5, 6]), id: 'unlimited', limit: null }] }));
    const first = writeReport(results);
    const full = readFileSync(first.path, 'utf8');
    const peakSection = full.slice(full.indexOf('## peak'), full.indexOf('\n## ', full.indexOf('## peak') + 1) + 1);
    const peakCharts = readdirSync(join(dir, 'report')).filter((f) => f.startsWith('peak-'));
    expect(peakCharts.sort()).toEqual(['peak-unlimited.json', 'peak-unlimited.svg']);
    // A section added by hand, without a summary row, is kept too.
    const handSection = '## scale\n\n- Ran: 2026-12-03 10:03 UTC, took 2,361.6 s (39 min 22 s)\n\nAdded by hand.\n';
    writeFileSync(first.path, `${full}\n${handSection}`);
    // A contributor runs only rate: peak's result is not there.
    rmSync(join(results, 'peak.json'));
    writeFileSync(join(results, 'rate.json'), JSON.stringify({ suite: 'rate', startedAt: '2026-12-01T10:00:00.000Z', durationS: 9, rows: [{ limit: 20, figure: 333 }], series: [perSecond([20, 20, 20])] }));
    const second = writeReport(results);
    expect(second).toMatchObject({ regenerated: ['rate'], kept: ['peak', 'scale'] });
    const md = readFileSync(second.path, 'utf8');
    expect(md).toContain('| 333 |');
    expect(md).not.toContain('| 111 |');
    expect(md).toContain(peakSection);
    expect(md).toMatch(/\| \[peak\]\(#peak\) \| kept \(earlier run\) \| 2026-11-01 10:05 UTC \| 7 s \|/);
    expect(md).toContain('**Partly regenerated**: rate from the results');
    expect(md).toContain(handSection);
    expect(md).toContain('| [scale](#scale) | kept (earlier run) | 2026-12-03 10:03 UTC | 2,361.6 s (39 min 22 s) |');
    for (const f of peakCharts) expect(existsSync(join(dir, 'report', f))).toBe(true);
    // Regenerating again changes nothing (the kept row stays kept).
    writeReport(results);
    expect(readFileSync(second.path, 'utf8')).toBe(md);
  });

  it("redraws a kept section's charts from their data files, and leaves a chart without one as it was", () => {
    dir = mkdtempSync(join(tmpdir(), 'mw-report-test-'));
    const results = join(dir, 'results');
    mkdirSync(results);
    writeFileSync(join(results, 'rate.json'), JSON.stringify({ suite: 'rate', startedAt: '2026-11-01T10:00:00.000Z', durationS: 9, series: [perSecond([20, 19, 20])] }));
    writeFileSync(join(results, 'peak.json'), JSON.stringify({ suite: 'peak', startedAt: '2026-11-01T10:05:00.000Z', durationS: 7, series: [{ ...perSecond([5, 6]), id: 'unlimited', limit: null }, { ...perSecond([7]), id: 'old', limit: null }] }));
    writeReport(results);
    const chart = (f: string) => join(dir ?? '', 'report', f);
    const drawn = readFileSync(chart('peak-unlimited.svg'), 'utf8');
    // Charts from an older renderer: one with its data file, one without.
    writeFileSync(chart('peak-unlimited.svg'), '<svg xmlns="http://www.w3.org/2000/svg">old look</svg>');
    writeFileSync(chart('peak-old.svg'), '<svg xmlns="http://www.w3.org/2000/svg">no data for me</svg>');
    rmSync(chart('peak-old.json'));
    rmSync(join(results, 'peak.json'));
    const w = writeReport(results);
    expect(w.kept).toEqual(['peak']);
    expect(readFileSync(chart('peak-unlimited.svg'), 'utf8')).toBe(drawn);
    expect(dataLine(drawn)).toHaveLength(2);
    expect(readFileSync(chart('peak-old.svg'), 'utf8')).toBe('<svg xmlns="http://www.w3.org/2000/svg">no data for me</svg>');
    expect(existsSync(chart('peak-unlimited.json'))).toBe(true);
  });
});
