/**
 * The plan chart (src/charts/plan-chart.ts), read back from its SVG with an XML parser: where the
 * capacity line is on the value axis, that the axes carry round numbers, dates at midnight and
 * units, that already claimed sends are a layer of their own, and that the bytes are stable.
 */
import { describe, expect, it } from 'vitest';
import { midnightsBetween, peakLabelRows, PLAN_COLOURS, planChartSvg, stepPoints, type PlanChartData } from '../../src/charts/plan-chart.js';
import { seriesChartSvg } from '../../src/charts/series-chart.js';
import { planFromCounts } from '../../src/core/capacity-plan.js';
import { svgChart } from '../../src/cli/plan-svg.js';
import { isRoundScale, parseSvg, plotSpan, valueAxis, type ParsedSvg } from '../helpers/svg.js';

const MIN = 60_000;
const FROM = Date.UTC(2027, 1, 1, 18, 0);

/** A day from 18:00: 1,200 at every :00, 300 at every :30; the first two hours' :00 half claimed; a 2,000-user wave at 15:00. */
function day(minutes = 1440): PlanChartData {
  const scheduled = Array.from({ length: minutes }, (_, i) => (i % 60 === 0 ? 1200 : i % 30 === 0 ? 300 : 0));
  const claimed = Array.from({ length: minutes }, (_, i) => (i < 120 && i % 60 === 0 ? 500 : 0));
  const broadcast = Array.from({ length: minutes }, (_, i) => (i === 21 * 60 ? 2000 : 0));
  return { title: 'plan', fromMs: FROM, scheduled, claimed, broadcast, capacityPerMinute: 2400, capacityLabel: '40/s', peaks: [FROM + 21 * 60 * MIN] };
}

/** The value axis of a plan chart: its labels sit left of the plot. */
function axisOf(svg: ParsedSvg) {
  return valueAxis(svg, plotSpan(svg).left);
}

/** The capacity line: the longest dashed path in its colour (the legend's sample is a short one). */
function capacityLine(svg: ParsedSvg): Array<[number, number]> | undefined {
  const dashed = svg.paths.filter((p) => p.stroke === PLAN_COLOURS.capacity && p.dash !== null);
  const len = (pts: Array<[number, number]>) => Math.max(...pts.map((q) => q[0])) - Math.min(...pts.map((q) => q[0]));
  return dashed.map((p) => p.points).sort((a, b) => len(b) - len(a))[0];
}

/** The highest point (smallest y) of the filled area drawn in `colour`. */
function areaTop(svg: ParsedSvg, colour: string): number {
  const areas = svg.paths.filter((p) => p.fill === colour && p.points.length > 2);
  expect(areas.length, `an area filled ${colour}`).toBeGreaterThan(0);
  return Math.min(...areas.flatMap((p) => p.points.map((q) => q[1])));
}

describe('planChartSvg', () => {
  it('draws the capacity line at rate × 60 on the value axis, whose ticks are round numbers from 0', () => {
    const svg = parseSvg(planChartSvg(day()));
    const axis = axisOf(svg);
    expect(axis.values[0]).toBe(0);
    expect(isRoundScale(axis.values), axis.values.join('/')).toBe(true);
    expect(axis.values.at(-1)).toBeGreaterThanOrEqual(3200);
    const cap = capacityLine(svg) ?? [];
    const ys = new Set(cap.map((p) => p[1]));
    expect(ys.size).toBe(1);
    expect(Math.abs([...ys][0]! - axis.y(2400))).toBeLessThan(0.6);
    // Spans the plot.
    const span = plotSpan(svg);
    const xs = cap.map((p) => p[0]);
    expect(Math.abs(Math.min(...xs) - span.left)).toBeLessThan(1);
    expect(Math.abs(Math.max(...xs) - span.right)).toBeLessThan(1);
    expect(svg.texts.map((t) => t.text)).toContain('capacity: 2,400 a minute (40/s)');
  });

  it('keeps the capacity line inside the chart when the sends stay far below it, and draws none without a per-second or per-minute limit', () => {
    const low = { ...day(), capacityPerMinute: 84_000 };
    const svg = parseSvg(planChartSvg(low));
    const axis = axisOf(svg);
    expect(isRoundScale(axis.values), axis.values.join('/')).toBe(true);
    expect(axis.values.at(-1)).toBeGreaterThanOrEqual(84_000);
    expect(Math.abs((capacityLine(svg)?.[0]?.[1] ?? NaN) - axis.y(84_000))).toBeLessThan(0.6);
    const none = parseSvg(planChartSvg({ ...day(), capacityPerMinute: null }));
    expect(capacityLine(none)).toBeUndefined();
  });

  it('stacks already claimed, still to send and the broadcasts as separate layers', () => {
    const svg = parseSvg(planChartSvg(day()));
    const axis = axisOf(svg);
    // Tops of each layer: claimed alone (500), claimed + scheduled (500 + 1,200), and with the wave (1,200 + 2,000).
    expect(Math.abs(areaTop(svg, PLAN_COLOURS.claimed) - axis.y(500))).toBeLessThan(0.6);
    expect(Math.abs(areaTop(svg, PLAN_COLOURS.scheduled) - axis.y(1700))).toBeLessThan(0.6);
    expect(Math.abs(areaTop(svg, PLAN_COLOURS.broadcast) - axis.y(3200))).toBeLessThan(0.6);
    const texts = svg.texts.map((t) => t.text);
    expect(texts).toEqual(expect.arrayContaining(['already claimed (sent or being sent)', 'scheduled, still to send', 'local-time broadcasts']));
    // The peak's label counts what is still to send (as the plan's peak lines do), not the claimed part.
    expect(texts).toContain('15:00 3,200');
    // No broadcast queued, nothing claimed: neither layer nor legend entry.
    const plain = parseSvg(planChartSvg({ ...day(), broadcast: undefined, claimed: undefined }));
    expect(plain.paths.some((p) => p.fill === PLAN_COLOURS.broadcast || p.fill === PLAN_COLOURS.claimed)).toBe(false);
    expect(plain.texts.map((t) => t.text)).toContain('scheduled');
  });

  it('labels the time axis in UTC with the date at each midnight and whole hours elsewhere, and names both axes', () => {
    // In UTC whatever the machine's zone: Node reads TZ at each Date call, so a zone 5:30 off
    // would move every label if the chart used local time.
    const tz = process.env['TZ'];
    process.env['TZ'] = 'Asia/Kolkata';
    try {
      labelsAtTheirTimes();
    } finally {
      if (tz === undefined) delete process.env['TZ'];
      else process.env['TZ'] = tz;
    }
  });

  function labelsAtTheirTimes(): void {
    for (const hours of [24, 72]) {
      const minutes = hours * 60;
      const svg = parseSvg(planChartSvg(day(minutes)));
      const span = plotSpan(svg);
      const at = (x: number) => FROM + ((x - span.left) / (span.right - span.left)) * minutes * MIN;
      const pxPerMs = (span.right - span.left) / (minutes * MIN);
      const below = svg.texts.filter((t) => t.y > span.bottom && t.y < span.bottom + 25);
      const dates = below.filter((t) => /^\d{4}-\d\d-\d\d$/.test(t.text));
      const times = below.filter((t) => /^\d\d:\d\d$/.test(t.text));
      expect(dates.map((d) => Date.parse(`${d.text}T00:00:00Z`))).toEqual(midnightsBetween(FROM, FROM + minutes * MIN));
      for (const d of dates) expect(Math.abs(at(d.x) - Date.parse(`${d.text}T00:00:00Z`)) * pxPerMs, d.text).toBeLessThan(1);
      expect(times.length).toBeGreaterThan(2);
      for (const t of times) {
        const ms = at(t.x);
        expect(new Date(Math.round(ms / 3_600_000) * 3_600_000).toISOString().slice(11, 16), `label at x=${t.x}`).toBe(t.text);
        expect(Math.abs(ms - Math.round(ms / 3_600_000) * 3_600_000) * pxPerMs).toBeLessThan(1);
      }
      const names = svg.texts.map((t) => t.text);
      expect(names).toContain('UTC');
      expect(names).toContain('sends per minute');
      // The date boundary is also a dashed line through the plot, one per midnight.
      const midnightLines = svg.paths.filter((p) => p.stroke === PLAN_COLOURS.midnight && p.dash !== null);
      expect(midnightLines.length).toBe(midnightsBetween(FROM, FROM + minutes * MIN).length);
    }
  }

  it('gives the same bytes for the same data, whatever was drawn before', () => {
    const first = planChartSvg(day());
    seriesChartSvg({ titleLines: ['other'], unit: 'MiB', xName: 'seconds', points: [[0, 1]], limit: null });
    expect(planChartSvg(day())).toBe(first);
    expect(first.endsWith('</svg>\n')).toBe(true);
  });
});

describe('stepPoints and midnightsBetween', () => {
  it('keeps only the minutes where the value changes, and closes at the last minute end', () => {
    expect(stepPoints([0, 0, 5, 5, 0], 0)).toEqual([
      [0, 0],
      [2 * MIN, 5],
      [4 * MIN, 0],
      [5 * MIN, 0],
    ]);
    expect(stepPoints([], 7)).toEqual([[7, 0]]);
  });

  it('puts the label of a peak close to an earlier labelled one a row higher (24 h: closer than 144 min)', () => {
    const h = (n: number) => FROM + n * 3_600_000;
    expect(peakLabelRows([h(13), h(7), h(8), h(12), h(20)], FROM, 1440)).toEqual([
      { t: h(7), row: 0 },
      { t: h(8), row: 1 },
      { t: h(12), row: 0 },
      { t: h(13), row: 1 },
      { t: h(20), row: 0 },
    ]);
    // The labels read back from the picture: two peaks an hour apart are at different heights.
    const scheduled = Array.from({ length: 1440 }, (_, i) => (i === 420 || i === 480 ? 700 : 0));
    const svg = parseSvg(planChartSvg({ title: 'p', fromMs: FROM, scheduled, capacityPerMinute: null, peaks: [h(7), h(8)] }));
    const [a, b] = ['01:00 700', '02:00 700'].map((l) => svg.texts.find((t) => t.text === l)?.y ?? NaN);
    expect(Math.abs((a ?? NaN) - (b ?? NaN))).toBeGreaterThanOrEqual(12);
  });

  it('lists the midnights strictly inside the range', () => {
    expect(midnightsBetween(Date.UTC(2027, 1, 1), Date.UTC(2027, 1, 3))).toEqual([Date.UTC(2027, 1, 2)]);
    expect(midnightsBetween(FROM, FROM + 30 * 3_600_000)).toEqual([Date.UTC(2027, 1, 2)]);
  });
});

describe('svgChart (plan --svg)', () => {
  it('takes the capacity a minute from the rate (per second × 60, or per minute when lower) and splits the broadcasts off the counts', () => {
    const counts = new Int32Array(120);
    counts[0] = 900;
    counts[60] = 700;
    const broadcast = new Int32Array(120);
    broadcast[60] = 400;
    const plan = planFromCounts(counts, FROM, { perSecond: 14 }, 59, 5, broadcast);
    const capY = (svg: ParsedSvg) => capacityLine(svg)?.[0]?.[1] ?? NaN;
    const a = parseSvg(svgChart(plan, 't', { perSecond: 14 }));
    expect(Math.abs(capY(a) - axisOf(a).y(840))).toBeLessThan(0.6);
    const b = parseSvg(svgChart(plan, 't', { perSecond: 14, perMinute: 600 }));
    expect(Math.abs(capY(b) - axisOf(b).y(600))).toBeLessThan(0.6);
    // Scheduled 300 under the wave's 400 at minute 60.
    expect(Math.abs(areaTop(a, PLAN_COLOURS.broadcast) - axisOf(a).y(900))).toBeLessThan(0.6);
    const schedTops = a.paths.filter((p) => p.fill === PLAN_COLOURS.scheduled && p.points.length > 2).flatMap((p) => p.points.filter((q) => Math.abs(q[0] - plotSpan(a).left - (plotSpan(a).right - plotSpan(a).left) / 2) < 1).map((q) => q[1]));
    expect(schedTops.some((y) => Math.abs(y - axisOf(a).y(300)) < 0.6)).toBe(true);
  });
});
