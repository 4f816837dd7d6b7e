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
 * and the ids zrender numbers process-wide are renumbered per document (see stableIds).
 */
export function renderSvg(option: ChartOption, size: ChartSize): string {
  const chart = echarts.init(null, null, { renderer: 'svg', ssr: true, width: size.width, height: size.height });
  try {
    chart.setOption({ ...option, animation: false });
    return `${stableIds(chart.renderToSVGString())}\n`;
  } finally {
    chart.dispose();
  }
}

/**
 * zrender counts painters (`zr3-…`) and CSS classes (`zr3-cls-41`) up across the whole process,
 * so the same chart drawn after others would carry other ids: a partial bench report would
 * rewrite every kept chart, a test could not compare bytes. The painter becomes `zr0` and the
 * classes are numbered in order of first appearance; ids stay unique within the document, which
 * is all SVG needs (one document, one painter).
 */
export function stableIds(svg: string): string {
  const classes = new Map<string, number>();
  return svg
    .replace(/\bzr\d+-cls-(\d+)\b/g, (_m, n: string) => {
      if (!classes.has(n)) classes.set(n, classes.size);
      return `zr0-cls-${classes.get(n)}`;
    })
    .replace(/\bzr\d+-/g, 'zr0-');
}
