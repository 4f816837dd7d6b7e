/**
 * The send curve of a plan (`mailwheel plan --svg`, and a status page's next 24 h): sends due per
 * minute on a UTC time axis, stacked as already claimed (sent or being sent) / scheduled and still
 * to send / local-time broadcasts, with the rate's capacity per minute as a dashed line, the
 * busiest minutes labelled and each midnight marked.
 *
 * Pure data in, an ECharts option out: no I/O, no CLI or store imports, so any caller can draw it.
 */
import { groupThousands, TIME_AXIS_LABELS, valueAxis } from './format.js';
import { renderSvg, type ChartOption, type ChartSize } from './render-svg.js';

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;

/** Colours callers (and tests) can name: a layer is found in the SVG by its colour. */
export const PLAN_COLOURS = {
  claimed: '#9aa5b1',
  scheduled: '#3a6ea5',
  broadcast: '#e8912d',
  capacity: '#d62728',
  peak: '#d62728',
  midnight: '#888888',
} as const;

export interface PlanChartData {
  title: string;
  /** The first minute's start (ms, a whole minute). */
  fromMs: number;
  /** Scheduled sends still to send per minute (not claimed yet, broadcasts not included). */
  scheduled: ArrayLike<number>;
  /** Sends of the same minutes already claimed (sent or being sent); omitted or empty: not known. */
  claimed?: ArrayLike<number> | undefined;
  /** Local-time broadcasts' recipients per minute; omitted: none queued (no layer, no legend entry). */
  broadcast?: ArrayLike<number> | undefined;
  /** Most sends one minute takes at the configured rate (rate.perSecond × 60 or rate.perMinute); null: no such limit. */
  capacityPerMinute: number | null;
  /** How the capacity line is labelled, e.g. `40/s`. */
  capacityLabel?: string | undefined;
  /** Minutes to label (their start, ms), e.g. the plan's peaks; labelled with the minute's sends still to send. */
  peaks?: readonly number[] | undefined;
}

export const PLAN_CHART_SIZE: ChartSize = { width: 1000, height: 420 };

type Point = [number, number];

/**
 * A step curve (ECharts `step: 'end'`: each value holds from its minute's start to the next point)
 * without the points that repeat the value before them, so a day of mostly empty minutes is a
 * short path rather than 1,440 points; the last minute's end closes the curve.
 */
export function stepPoints(values: ArrayLike<number>, fromMs: number): Point[] {
  const out: Point[] = [];
  let prev: number | undefined;
  for (let i = 0; i < values.length; i++) {
    const v = values[i] ?? 0;
    if (v !== prev) out.push([fromMs + i * MINUTE_MS, v]);
    prev = v;
  }
  out.push([fromMs + values.length * MINUTE_MS, prev ?? 0]);
  return out;
}

/** The midnights (UTC) strictly inside (from, to): where the date changes on the chart. */
export function midnightsBetween(fromMs: number, toMs: number): number[] {
  const out: number[] = [];
  for (let t = Math.floor(fromMs / DAY_MS) * DAY_MS + DAY_MS; t < toMs; t += DAY_MS) out.push(t);
  return out;
}

/** Height of a peak label's row, px. */
const LABEL_ROW = 14;
/** About how much of the time axis a label `HH:MM 12,345` covers: a tenth of the plot. */
const LABEL_SPAN = 0.1;

/**
 * The row each peak's label goes in (0: just above its point), in time order: a label closer than
 * a label's width to one in the same row goes a row up, so labels of peaks an hour apart do not
 * print over each other.
 */
export function peakLabelRows(peaks: readonly number[], fromMs: number, minutes: number): Array<{ t: number; row: number }> {
  const span = LABEL_SPAN * minutes * MINUTE_MS;
  const lastInRow: number[] = [];
  return [...peaks]
    .sort((a, b) => a - b)
    .map((t) => {
      let row = 0;
      while ((lastInRow[row] ?? -Infinity) > t - span) row++;
      lastInRow[row] = t;
      return { t, row };
    });
}

/** Running totals of the layers, bottom first: each layer is drawn as an area from 0 to its top. */
function cumulative(layers: ReadonlyArray<ArrayLike<number> | undefined>, minutes: number): number[][] {
  const out: number[][] = [];
  let sum = new Array<number>(minutes).fill(0);
  for (const layer of layers) {
    sum = sum.map((s, i) => s + (layer?.[i] ?? 0));
    out.push(sum);
  }
  return out;
}

function areaSeries(name: string, colour: string, points: Point[], z: number): Record<string, unknown> {
  return {
    type: 'line',
    name,
    step: 'end',
    data: points,
    showSymbol: false,
    color: colour,
    lineStyle: { width: 1, color: colour },
    areaStyle: { color: colour, opacity: 1 },
    z,
  };
}

/** The ECharts option of the plan chart (see the module comment). */
export function planChartOptions(data: PlanChartData): ChartOption {
  const minutes = data.scheduled.length;
  const toMs = data.fromMs + minutes * MINUTE_MS;
  const claimed = data.claimed !== undefined && data.claimed.length > 0 ? data.claimed : undefined;
  const [withClaimed = [], withScheduled = [], total = withScheduled] = cumulative([claimed, data.scheduled, data.broadcast], minutes);
  // Stacked by hand (drawn tallest first, each from 0): ECharts' own stacking pairs points by
  // index, which the trimmed step curves no longer share.
  const series: Array<Record<string, unknown>> = [];
  if (data.broadcast !== undefined) series.push(areaSeries('local-time broadcasts', PLAN_COLOURS.broadcast, stepPoints(total, data.fromMs), 2));
  series.push(areaSeries(claimed === undefined ? 'scheduled' : 'scheduled, still to send', PLAN_COLOURS.scheduled, stepPoints(withScheduled, data.fromMs), 3));
  if (claimed !== undefined) series.push(areaSeries('already claimed (sent or being sent)', PLAN_COLOURS.claimed, stepPoints(withClaimed, data.fromMs), 4));

  const peaks = (data.peaks ?? []).filter((t) => t >= data.fromMs && t < toMs);
  series.push({
    type: 'line',
    name: 'peak minutes',
    // [minute, top of its stack, sends still to send in it]: the label says what the plan's peak lines say.
    data: peakLabelRows(peaks, data.fromMs, minutes).map(({ t, row }) => {
      const i = Math.round((t - data.fromMs) / MINUTE_MS);
      return { value: [t, total[i] ?? 0, (total[i] ?? 0) - (withClaimed[i] ?? 0)], label: { offset: [0, -LABEL_ROW * row] } };
    }),
    showSymbol: true,
    symbol: 'circle',
    symbolSize: 6,
    lineStyle: { width: 0 },
    color: PLAN_COLOURS.peak,
    label: { show: true, position: 'top', color: PLAN_COLOURS.peak, formatter: (p: { value: [number, number, number] }) => `${new Date(p.value[0]).toISOString().slice(11, 16)} ${groupThousands(p.value[2])}` },
    z: 6,
    // The dates change here: a thin line through the whole plot, besides the date on the axis.
    markLine: {
      silent: true,
      symbol: 'none',
      label: { show: false },
      lineStyle: { color: PLAN_COLOURS.midnight, type: 'dashed', width: 1 },
      data: midnightsBetween(data.fromMs, toMs).map((t) => ({ xAxis: t })),
    },
  });
  const cap = data.capacityPerMinute;
  if (cap !== null && Number.isFinite(cap) && cap > 0) {
    // A series rather than a markLine: its value counts in the axis extent, so the line is always
    // inside the chart and the axis still ends on a round number.
    series.push({
      type: 'line',
      name: `capacity: ${groupThousands(cap)} a minute${data.capacityLabel === undefined ? '' : ` (${data.capacityLabel})`}`,
      data: [
        [data.fromMs, cap],
        [toMs, cap],
      ],
      showSymbol: false,
      color: PLAN_COLOURS.capacity,
      lineStyle: { color: PLAN_COLOURS.capacity, width: 1.5, type: 'dashed' },
      z: 5,
    });
  }
  return {
    useUTC: true,
    textStyle: { fontFamily: 'sans-serif' },
    title: { text: data.title, left: 10, top: 6, textStyle: { fontSize: 14 } },
    legend: { top: 30, left: 10, itemWidth: 18, itemHeight: 10, itemGap: 36, data: series.filter((s) => s['name'] !== 'peak minutes').map((s) => ({ name: s['name'], icon: s['areaStyle'] === undefined ? undefined : 'rect' })) },
    grid: { left: 80, right: 40, top: 80, bottom: 60 },
    xAxis: {
      type: 'time',
      min: data.fromMs,
      max: toMs,
      name: 'UTC',
      nameLocation: 'middle',
      nameGap: 30,
      axisLabel: { formatter: TIME_AXIS_LABELS, hideOverlap: true },
      splitLine: { show: false },
    },
    yAxis: valueAxis('sends per minute', 60, { minInterval: 1 }),
    series,
  };
}

/** The plan chart as an SVG document. */
export function planChartSvg(data: PlanChartData, size: ChartSize = PLAN_CHART_SIZE): string {
  return renderSvg(planChartOptions(data), size);
}
