/**
 * Number and time labels of the charts. Fixed formats, not the machine's locale or time zone: a
 * chart made on another machine, or in a test, must carry the same text.
 */

/** `12,345`; decimals as given (an axis tick of 0.5 stays 0.5). */
export function groupThousands(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const [int = '', frac] = String(n).split('.');
  const sign = int.startsWith('-') ? '-' : '';
  const grouped = int.slice(sign.length).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return `${sign}${grouped}${frac === undefined ? '' : `.${frac}`}`;
}

/**
 * The time axis' labels by level (ECharts picks the level of each tick): a tick at midnight
 * carries the date, every other tick the time of day. All in UTC (the option sets `useUTC`).
 */
export const TIME_AXIS_LABELS = {
  year: '{yyyy}-{MM}-{dd}',
  month: '{yyyy}-{MM}-{dd}',
  day: '{yyyy}-{MM}-{dd}',
  hour: '{HH}:{mm}',
  minute: '{HH}:{mm}',
  second: '{HH}:{mm}:{ss}',
  millisecond: '{HH}:{mm}:{ss}',
} as const;

/**
 * The value axis every chart here shares: from 0, about five round ticks with thousands grouped,
 * and headroom above the highest value (then rounded up to a tick), so a line at the top is not on
 * the frame. `extra` adds what one chart needs beyond that (e.g. `minInterval` for counts).
 */
export function valueAxis(name: string, nameGap: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { type: 'value', name, nameLocation: 'middle', nameGap, min: 0, ...extra, boundaryGap: [0, '8%'], splitNumber: 5, axisLabel: { formatter: (v: number) => groupThousands(v) } };
}
