/**
 * Apache ECharts rendered to an SVG string on the server: no DOM, no canvas, no browser. One
 * entry point for every chart mailwheel draws (`plan --svg`, bench/REPORT.md, a status page), so
 * they share the renderer, its fonts and its determinism.
 *
 * Only the parts of ECharts the charts use are registered (echarts/core), which keeps the import
 * light for a CLI command.
 */
import { LineChart } from 'echarts/charts';
import { GridComponent, LegendComponent, MarkLineComponent, MarkPointComponent, TitleComponent } from 'echarts/components';
import * as echarts from 'echarts/core';
import { SVGRenderer } from 'echarts/renderers';
import type { EChartsCoreOption } from 'echarts/core';

echarts.use([LineChart, GridComponent, LegendComponent, MarkLineComponent, MarkPointComponent, TitleComponent, SVGRenderer]);

export type ChartOption = EChartsCoreOption;

export interface ChartSize {
  width: number;
  height: number;
}

/**
 * The chart as a standalone SVG document (with a trailing newline). The same option and size
 * always give the same bytes: animation is forced off (an SSR frame mid-animation would differ),
 * and the painter's instance number, which zrender counts up per chart in the process and writes
 * into class and clip-path ids, is renamed to `zr0`, so a chart does not change with how many
 * were drawn before it (a partial bench report would otherwise rewrite every kept chart).
 */
export function renderSvg(option: ChartOption, size: ChartSize): string {
  const chart = echarts.init(null, null, { renderer: 'svg', ssr: true, width: size.width, height: size.height });
  try {
    chart.setOption({ ...option, animation: false });
    const svg = chart.renderToSVGString();
    const id = /\b(zr\d+)-/.exec(svg)?.[1];
    const normalised = id === undefined || id === 'zr0' ? svg : svg.split(`${id}-`).join('zr0-');
    return `${normalised}\n`;
  } finally {
    chart.dispose();
  }
}
