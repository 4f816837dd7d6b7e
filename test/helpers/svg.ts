/**
 * Reads a chart back from its SVG with a real XML parser (@xmldom/xmldom), so tests check what
 * the picture shows (where a line is, what the axes say) rather than how the text looks.
 */
import { DOMParser, type Element } from '@xmldom/xmldom';

export interface SvgText {
  text: string;
  /** Where the text is anchored: its translate() plus its own x/y. */
  x: number;
  y: number;
  fill: string | null;
}

export interface SvgPath {
  d: string;
  stroke: string | null;
  fill: string | null;
  dash: string | null;
  /** The path's vertices (M and L commands; what a line or an area is made of). */
  points: Array<[number, number]>;
}

export interface ParsedSvg {
  width: number;
  height: number;
  texts: SvgText[];
  paths: SvgPath[];
}

function translate(el: Element): [number, number] {
  const t = el.getAttribute('transform') ?? '';
  const tr = /translate\(([-\d.]+)[ ,]+([-\d.]+)\)/.exec(t);
  if (tr) return [Number(tr[1]), Number(tr[2])];
  const m = /matrix\(([-\d.e]+),([-\d.e]+),([-\d.e]+),([-\d.e]+),([-\d.e]+),([-\d.e]+)\)/.exec(t);
  if (m) return [Number(m[5]), Number(m[6])];
  return [0, 0];
}

/** The absolute M/L vertices of a path (ECharts writes lines and areas with absolute M, L and Z). */
function vertices(d: string): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const m of d.matchAll(/([MLml])\s*([-\d.e]+)[ ,]+([-\d.e]+)/g)) {
    if (m[1] === 'M' || m[1] === 'L') out.push([Number(m[2]), Number(m[3])]);
  }
  return out;
}

/** Parses the SVG; a document that is not well-formed XML fails the test. */
export function parseSvg(svg: string): ParsedSvg {
  const doc = new DOMParser({
    onError: (level, message) => {
      if (level !== 'warning') throw new Error(`not well-formed SVG: ${message}`);
    },
  }).parseFromString(svg, 'image/svg+xml');
  const root = doc.documentElement;
  if (root === null || root.nodeName !== 'svg') throw new Error('no <svg> root element');
  const texts = Array.from(doc.getElementsByTagName('text')).map((el) => {
    const [tx, ty] = translate(el);
    return { text: el.textContent ?? '', x: tx + Number(el.getAttribute('x') ?? 0), y: ty + Number(el.getAttribute('y') ?? 0), fill: el.getAttribute('fill') };
  });
  const paths = Array.from(doc.getElementsByTagName('path')).map((el) => {
    const d = el.getAttribute('d') ?? '';
    return { d, stroke: el.getAttribute('stroke'), fill: el.getAttribute('fill'), dash: el.getAttribute('stroke-dasharray'), points: vertices(d) };
  });
  return { width: Number(root.getAttribute('width')), height: Number(root.getAttribute('height')), texts, paths };
}

/** `12,345` → 12345; NaN for anything else. */
export function labelNumber(s: string): number {
  return /^-?[\d,]+(\.\d+)?$/.test(s) ? Number(s.replace(/,/g, '')) : Number.NaN;
}

export interface ValueAxis {
  /** The tick values, bottom up. */
  values: number[];
  /** Pixel y of a value, from the labels' own positions (linear, as ECharts draws a value axis). */
  y: (value: number) => number;
}

/**
 * The y axis read from its labels: the numeric texts right-aligned left of the plot (the texts
 * whose x is left of `plotLeft`), with the value → pixel scale they define.
 */
export function valueAxis(svg: ParsedSvg, plotLeft: number): ValueAxis {
  const labels = svg.texts.filter((t) => t.x < plotLeft && !Number.isNaN(labelNumber(t.text))).sort((a, b) => b.y - a.y);
  const first = labels[0];
  const last = labels[labels.length - 1];
  if (first === undefined || last === undefined || labels.length < 2) throw new Error(`no y axis labels left of x=${plotLeft}`);
  const [v0, v1] = [labelNumber(first.text), labelNumber(last.text)];
  return { values: labels.map((l) => labelNumber(l.text)), y: (v) => first.y + ((v - v0) / (v1 - v0)) * (last.y - first.y) };
}

/**
 * True when the ticks are evenly spaced by a round step (1, 2, 3 or 5 × 10^k, the steps ECharts picks) and sit on
 * multiples of it: 0/500/1,000 is, 0/40/81/121/161 is not.
 */
export function isRoundScale(values: readonly number[]): boolean {
  if (values.length < 2) return false;
  const step = (values[1] ?? 0) - (values[0] ?? 0);
  if (!(step > 0)) return false;
  const mag = 10 ** Math.floor(Math.log10(step));
  const mantissa = Math.round((step / mag) * 1000) / 1000;
  if (![1, 2, 3, 5].includes(mantissa)) return false;
  return values.every((v, i) => Math.abs(v - (values[0] ?? 0) - i * step) < step * 1e-9 && Math.abs(v / step - Math.round(v / step)) < 1e-9);
}

/** The plot's left and right edge: the longest solid horizontal line (the x axis, or a grid line as long). */
export function plotSpan(svg: ParsedSvg): { left: number; right: number; bottom: number } {
  let best: { left: number; right: number; bottom: number } | null = null;
  for (const p of svg.paths) {
    const [a, b] = p.points;
    if (p.points.length !== 2 || a === undefined || b === undefined || a[1] !== b[1] || p.dash !== null) continue;
    const span = { left: Math.min(a[0], b[0]), right: Math.max(a[0], b[0]), bottom: a[1] };
    if (best === null || span.right - span.left > best.right - best.left || (span.right - span.left === best.right - best.left && span.bottom > best.bottom)) best = span;
  }
  if (best === null) throw new Error('no horizontal axis line');
  return best;
}
