/**
 * `mailwheel plan --svg`: the plan as an SVG picture drawn by Apache ECharts (src/charts). Its own
 * module, imported by the command only when --svg is given: loading ECharts costs about a second
 * of start-up, which no other command (the daemon's `start` among them) should pay.
 */
import { planChartSvg } from '../charts/plan-chart.js';
import { minuteCapacity, type CapacityPlan, type RateWindows } from '../core/capacity-plan.js';
import { describeRate } from './plan-render.js';

/**
 * The chart as an SVG picture (Apache ECharts, src/charts/plan-chart.ts): sends due per minute,
 * stacked as already claimed / scheduled and still to send / local-time broadcasts, the rate's
 * capacity a minute as a dashed line, the peaks labelled, midnights marked.
 * @param claimed sends of each minute already claimed (left out of `plan.counts`); omitted when not looked up.
 */
export function svgChart(plan: CapacityPlan, title: string, rate: RateWindows, claimed?: ArrayLike<number>): string {
  const broadcast = plan.broadcast;
  const scheduled = broadcast === undefined ? plan.counts : plan.counts.map((n, i) => n - (broadcast[i] ?? 0));
  const capacity = minuteCapacity(rate);
  return planChartSvg({
    title,
    fromMs: plan.fromMs,
    scheduled,
    claimed,
    broadcast,
    capacityPerMinute: Number.isFinite(capacity) ? capacity : null,
    capacityLabel: describeRate(rate),
    peaks: plan.peaks.slice(0, 5).map((p) => p.minuteMs),
  });
}
