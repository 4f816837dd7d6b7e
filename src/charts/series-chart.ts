/**
 * A line chart of one measured series over time (bench/REPORT.md: messages per second, RSS): x in
 * seconds from the start of the run, y from 0 in the series' unit, and a limit (if any) as a dashed
 * line drawn over the data, so a series running exactly at its limit still shows it.
 */
import { groupThousands, valueAxis } from './format.js';
import { renderSvg, type ChartOption, type ChartSize } from './render-svg.js';

export const SERIES_COLOURS = { data: '#1f77b4', limit: '#d62728' } as const;

export const SERIES_CHART_SIZE: ChartSize = { width: 800, height: 300 };

/** Up to this many points get a marker, so single samples of a short run still show. */
const MARKERS_UP_TO = 50;

export interface SeriesChartData {
  /** The title, already split into its lines (at most two fit). */
  titleLines: readonly string[];
  /** The y axis' name: the series' unit, e.g. `messages/s`. */
  unit: string;
  /** The x axis' name, e.g. `seconds`. */
  xName: string;
  points: ReadonlyArray<readonly [number, number]>;
  /** The limit's value and label (e.g. `limit 1,000/s`); null: no limit. */
  limit: { value: number; label: string } | null;
}

export function seriesChartOptions(data: SeriesChartData): ChartOption {
  const xs = data.points.map((p) => p[0]);
  const lastX = xs.length === 0 ? 1 : Math.max(...xs);
  const noData = data.points.length === 0;
  const title = data.titleLines.join('\n');
  const top = 28 + 20 * data.titleLines.length;
  const series: Array<Record<string, unknown>> = [
    {
      type: 'line',
      name: data.unit,
      data: data.points.map((p) => [p[0], p[1]]),
      showSymbol: data.points.length <= MARKERS_UP_TO,
      symbolSize: 5,
      color: SERIES_COLOURS.data,
      lineStyle: { width: 1.5, color: SERIES_COLOURS.data },
      z: 2,
    },
  ];
  if (data.limit !== null) {
    // A series, not a markLine: the limit counts in the y extent, so it is inside the chart even
    // when the data stays below it, and the axis still ends on a round number.
    series.push({
      type: 'line',
      name: data.limit.label,
      data: [
        [Math.min(0, ...xs), data.limit.value],
        [lastX, data.limit.value],
      ],
      showSymbol: false,
      color: SERIES_COLOURS.limit,
      lineStyle: { width: 1.5, type: 'dashed', color: SERIES_COLOURS.limit },
      endLabel: { show: true, formatter: data.limit.label, color: SERIES_COLOURS.limit, offset: [-4, -10], align: 'right' },
      z: 3,
    });
  }
  return {
    textStyle: { fontFamily: 'sans-serif' },
    title: { text: title, left: 'center', top: 8, textStyle: { fontSize: 14, lineHeight: 18 }, ...(noData ? { subtext: 'no data' } : {}) },
    grid: { left: 76, right: 24, top, bottom: 48 },
    xAxis: {
      type: 'value',
      name: data.xName,
      nameLocation: 'middle',
      nameGap: 28,
      min: Math.min(0, ...xs),
      // Whole seconds between ticks: samples are a second (or half a second) apart.
      minInterval: 1,
      splitNumber: 6,
      axisLabel: { formatter: (v: number) => groupThousands(v) },
      splitLine: { show: false },
    },
    yAxis: valueAxis(data.unit, 56),
    series,
  };
}

export function seriesChartSvg(data: SeriesChartData, size: ChartSize = SERIES_CHART_SIZE): string {
  return renderSvg(seriesChartOptions(data), size);
}
