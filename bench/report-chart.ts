/**
 * The charts of bench/REPORT.md (one per series a suite records), drawn by Apache ECharts through
 * src/charts/series-chart.ts: the report only decides what goes in (points, title lines, limit).
 */
import { groupThousands } from '../src/charts/format.js';
import { seriesChartSvg } from '../src/charts/series-chart.js';
import type { Series } from './lib/suite.js';

/** About what fits across the chart at the title's size; longer titles wrap, at most two lines. */
const TITLE_CHARS = 80;
/** More points than pixels only makes the file bigger; beyond this, buckets keep their min and max. */
export const MAX_CHART_POINTS = 1600;

/** Keeps the shape of a long series: per bucket of consecutive points, its lowest and highest (in x order). */
export function downsample(points: ReadonlyArray<[number, number]>, max = MAX_CHART_POINTS): Array<[number, number]> {
  if (points.length <= max) return [...points];
  const buckets = Math.floor(max / 2);
  const out: Array<[number, number]> = [];
  for (let b = 0; b < buckets; b++) {
    const slice = points.slice(Math.floor((b * points.length) / buckets), Math.floor(((b + 1) * points.length) / buckets));
    let lo = slice[0];
    let hi = slice[0];
    for (const p of slice) {
      if (lo === undefined || p[1] < lo[1]) lo = p;
      if (hi === undefined || p[1] > hi[1]) hi = p;
    }
    if (lo === undefined || hi === undefined) continue;
    out.push(...(lo === hi ? [lo] : lo[0] <= hi[0] ? [lo, hi] : [hi, lo]));
  }
  return out;
}

/** Splits a title at spaces into lines of at most `max` characters; a third line is cut with an ellipsis. */
export function wrapTitle(title: string, max = TITLE_CHARS): string[] {
  const lines: string[] = [];
  for (const word of title.split(/\s+/).filter((w) => w !== '')) {
    const last = lines[lines.length - 1];
    if (last !== undefined && last.length + 1 + word.length <= max) lines[lines.length - 1] = `${last} ${word}`;
    else lines.push(word);
  }
  if (lines.length <= 2) return lines;
  return [lines[0] ?? '', `${lines.slice(1).join(' ').slice(0, max - 1).trimEnd()}…`];
}

/** The limit's label: "limit 1,000/s" for a rate, otherwise the value and its unit. */
export function limitLabel(limit: number, unit: string): string {
  return unit.endsWith('/s') ? `limit ${groupThousands(limit)}/s` : `limit ${groupThousands(limit)} ${unit}`.trimEnd();
}

/**
 * The chart of one series (Apache ECharts, src/charts/series-chart.ts): x = seconds since the
 * start of the run, y = value from 0, the limit (if any) as a dashed red line over the data.
 */
export function renderChart(series: Series): string {
  const pts = downsample(series.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)).sort((a, b) => a[0] - b[0]));
  const limit = typeof series.limit === 'number' && Number.isFinite(series.limit) ? series.limit : null;
  return seriesChartSvg({
    titleLines: wrapTitle(series.title),
    unit: series.unit,
    xName: 'seconds',
    points: pts,
    limit: limit === null ? null : { value: limit, label: limitLabel(limit, series.unit) },
  });
}
