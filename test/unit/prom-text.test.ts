/** The strict Prometheus text parser of the test helpers refuses what Prometheus would refuse. */
import { describe, expect, it } from 'vitest';
import { parsePrometheusText, valueOf } from '../helpers/prom-text.js';

const good = `# HELP a_total Things.
# TYPE a_total counter
a_total{kind="x",note="q\\"uote\\\\n"} 3
a_total{kind="y"} 4e0
# TYPE h histogram
h_bucket{le="0.1"} 1
h_bucket{le="+Inf"} 2
h_sum 0.3
h_count 2
# TYPE g gauge
g NaN
`;

describe('parsePrometheusText', () => {
  it('reads families, labels with escapes, and histograms', () => {
    const m = parsePrometheusText(good);
    expect(m.get('a_total')).toMatchObject({ type: 'counter', help: 'Things.' });
    expect(valueOf(m, 'a_total', { kind: 'x', note: 'q"uote\\n' })).toBe(3);
    expect(valueOf(m, 'h_count')).toBe(2);
    expect(Number.isNaN(valueOf(m, 'g'))).toBe(true);
  });

  it.each([
    ['no final line feed', good.trimEnd()],
    ['a sample before its TYPE', 'x 1\n'],
    ['a bad metric name', '# TYPE 1x gauge\n1x 1\n'],
    ['an unquoted label', '# TYPE x gauge\nx{a=b} 1\n'],
    ['a bad escape', '# TYPE x gauge\nx{a="\\t"} 1\n'],
    ['a bad value', '# TYPE x gauge\nx one\n'],
    ['a duplicate series', '# TYPE x gauge\nx{a="1"} 1\nx{a="1"} 2\n'],
    ['a split family', '# TYPE x gauge\nx 1\n# TYPE y gauge\ny 1\n# TYPE x gauge\n'],
    ['a histogram without +Inf', '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n'],
    ['decreasing buckets', '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n'],
    ['+Inf bucket != count', '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 1\n'],
  ])('refuses %s', (_name, text) => {
    expect(() => parsePrometheusText(text)).toThrow();
  });
});
