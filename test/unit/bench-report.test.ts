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
  niceTicks,
  parseResult,
  renderChart,
  renderReport,
  wrapTitle,
  writeReport,
} from '../../bench/report.js';

/** The [x, y] pixel pairs of the chart's data line. */
function polylinePoints(svg: string): Array<[number, number]> {
  const m = /<polyline class="series"[^>]* points="([^"]*)"/.exec(svg);
  if (m?.[1] === undefined) return [];
  return m[1].split(' ').map((p) => {
    const [x = NaN, y = NaN] = p.split(',').map(Number);
    return [x, y];
  });
}

function limitLine(svg: string): { y1: number; y2: number; dash: string } | null {
  const m = /<line class="limit"[^>]* y1="([\d.]+)" y2="([\d.]+)"[^>]* stroke-dasharray="([^"]+)"/.exec(svg);
  return m ? { y1: Number(m[1]), y2: Number(m[2]), dash: m[3] ?? '' } : null;
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

describe('niceTicks', () => {
  it('steps by 1, 2 or 5 × 10^k and covers the range', () => {
    expect(niceTicks(0, 21, 5)).toEqual([0, 5, 10, 15, 20, 25]);
    expect(niceTicks(0, 1050, 5)).toEqual([0, 200, 400, 600, 800, 1000, 1200]);
    expect(niceTicks(0, 0.9, 4)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
  });
});

describe('renderChart', () => {
  it('draws one vertex per point and a dashed limit line at the limit value, labelled', () => {
    const values = Array.from({ length: 30 }, (_, i) => (i % 7 === 0 ? 19 : 20));
    const svg = renderChart(perSecond(values));
    const pts = polylinePoints(svg);
    expect(pts).toHaveLength(30);
    const line = limitLine(svg);
    expect(line).not.toBeNull();
    expect(line?.dash).toBe('6 4');
    // A point whose value equals the limit sits exactly on the limit line.
    expect(line?.y1).toBe(pts[1]?.[1]);
    expect(line?.y2).toBe(line?.y1);
    // Higher values are higher on the page (smaller y).
    expect(pts[0]?.[1]).toBeGreaterThan(pts[1]?.[1] ?? Infinity);
    expect(svg).toContain('>limit 20/s</text>');
    expect(svg).toMatch(/^<svg [^>]*viewBox="0 0 800 300"/);
    expect(svg).toContain('<rect width="800" height="300" fill="#fff"/>');
  });

  it('has no limit line without a limit, and draws the limit even when the data is far below it', () => {
    expect(limitLine(renderChart(perSecond([1, 2, 3], null)))).toBeNull();
    const svg = renderChart({ ...perSecond([1, 2, 3]), unit: 'MiB', limit: 512 });
    const line = limitLine(svg);
    expect(line?.y1).toBeGreaterThanOrEqual(40); // inside the plot area, not above it
    expect(svg).toContain('>limit 512 MiB</text>');
  });

  it('escapes text, survives empty and non-finite input, and is deterministic', () => {
    const s: Series = { id: 'x', title: 'a <b> & "c"', unit: 'messages/s', points: [] };
    const svg = renderChart(s);
    expect(svg).toContain('a &lt;b&gt; &amp; &quot;c&quot;');
    expect(svg).toContain('>no data</text>');
    expect(polylinePoints(renderChart({ ...s, points: [[0, 1], [1, Number.NaN], [2, 3]] }))).toHaveLength(2);
    expect(renderChart(perSecond([5, 6, 7]))).toBe(renderChart(perSecond([5, 6, 7])));
  });

  it('downsamples long series but keeps their extremes', () => {
    const points = Array.from({ length: 10_000 }, (_, i): [number, number] => [i / 10, i === 4321 ? 999 : i % 50]);
    const kept = downsample(points);
    expect(kept.length).toBeLessThanOrEqual(MAX_CHART_POINTS);
    expect(kept).toContainEqual([432.1, 999]);
    expect(kept.map((p) => p[0])).toEqual([...kept.map((p) => p[0])].sort((a, b) => a - b));
    expect(polylinePoints(renderChart({ ...perSecond([]), points })).length).toBe(kept.length);
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
    const long = renderChart({ ...perSecond([20]), title: 'Messages per second at the sink, rate.perSecond = 1000 (fixed 1 s windows from the first arrival)' });
    expect(long.match(/font-weight="600"/g)).toHaveLength(2);
    expect(long).toContain('<path d="M76 58V252H776"');
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
    writeFileSync(join(results, 'rate.json'), JSON.stringify({ suite: 'rate', series: [perSecond([20, 19, 20])] }));
    writeFileSync(join(results, 'peak.quick.json'), JSON.stringify({ suite: 'peak', rows: [{ secret: 'quick figure' }] }));
    const { path } = writeReport(results);
    expect(path).toBe(join(dir, 'REPORT.md'));
    const md = readFileSync(path, 'utf8');
    expect(md).toContain('## rate');
    expect(md).not.toContain('quick figure');
    expect(md).toContain('| peak | not run (quick run only) | – | – |');
    expect(polylinePoints(readFileSync(join(dir, 'report', 'rate-limit-20.svg'), 'utf8'))).toHaveLength(3);
    expect(existsSync(join(dir, 'report', 'old-gone.svg'))).toBe(false);
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
    expect(peakCharts.length).toBe(1);
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
});
