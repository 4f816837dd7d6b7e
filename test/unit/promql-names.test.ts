/**
 * The metric-name extraction the monitoring test relies on (test/helpers/promql-names.ts): label
 * names, label values, functions, keywords, durations and Grafana variables are not metric names.
 */
import { describe, expect, it } from 'vitest';
import { familyCandidates, metricNamesOf } from '../helpers/promql-names.js';

const names = (e: string): string[] => [...metricNamesOf(e)].sort();

describe('metricNamesOf', () => {
  it('keeps selected names and drops matchers, functions, keywords and label lists', () => {
    expect(names('mailwheel_smtp_breaker_state{state="open"} == 1')).toEqual(['mailwheel_smtp_breaker_state']);
    expect(
      names(`(mailwheel_queue_waiting + mailwheel_dispatch_backlog) > 0
        and on (job, instance) sum by (job, instance) (increase(mailwheel_sends_total[10m])) == 0
        unless on (job, instance) count by (job, instance) (mailwheel_rate_window_used >= mailwheel_rate_window_limit)`),
    ).toEqual(['mailwheel_dispatch_backlog', 'mailwheel_queue_waiting', 'mailwheel_rate_window_limit', 'mailwheel_rate_window_used', 'mailwheel_sends_total']);
    expect(names('deriv((a_b + c_d)[20m:1m]) > 0 and time() - e_f > 15 * 60')).toEqual(['a_b', 'c_d', 'e_f']);
    expect(names('histogram_quantile(0.99, sum by (le) (rate(mailwheel_smtp_send_duration_seconds_bucket{job=~"$job", instance=~"${instance:regex}"}[$__rate_interval])))')).toEqual([
      'mailwheel_smtp_send_duration_seconds_bucket',
    ]);
    expect(names('sum without (instance) (x) / ignoring (kind) group_left (outcome) y offset 5m')).toEqual(['x', 'y']);
    expect(names('absent(up{job="mailwheel"} == 1) or vector(1e3)')).toEqual(['up']);
    expect(names('max by (job) (z{period="day", note="a {b} or c(d)"}) > bool 0.001')).toEqual(['z']);
  });

  it('maps histogram sample names to their family', () => {
    expect(familyCandidates('x_bucket')).toEqual(['x_bucket', 'x']);
    expect(familyCandidates('x_total')).toEqual(['x_total']);
  });
});
