/**
 * The metric names a PromQL expression selects, for the test that checks every name the alert
 * rules and the Grafana dashboard use is one the daemon exports. Not a PromQL parser: it removes
 * what can hold identifiers that are not metric names — strings (so label matcher values go),
 * label matcher blocks, range and subquery brackets, Grafana variables, the label lists of
 * by / without / on / ignoring / group_left / group_right — then keeps each identifier that is not
 * a keyword and not a function or aggregation call (an identifier followed by `(`).
 */

const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'atan2', 'inf', 'nan', 'start', 'end']);

export function metricNamesOf(expr: string): Set<string> {
  let s = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""') // strings
    .replace(/#[^\n]*/g, ' ') // comments
    .replace(/\$\{[^}]*\}|\$\w+/g, ' ') // Grafana variables: ${DS_PROMETHEUS}, $__rate_interval
    .replace(/\{[^}]*\}/g, ' ') // label matchers (their strings are gone already)
    .replace(/\[[^\]]*\]/g, ' ') // ranges and subqueries
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  // Numbers, durations and exponents (1e3, 15m) would read as identifiers after a digit: drop them.
  s = s.replace(/\b\d[\w.]*/g, ' ');
  const names = new Set<string>();
  for (const m of s.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?/g)) {
    const [token, call] = m;
    const name = token.replace(/\s*\($/, '');
    if (call !== undefined || KEYWORDS.has(name.toLowerCase())) continue;
    names.add(name);
  }
  return names;
}

/** The family a sample name belongs to: `x_bucket`, `x_sum`, `x_count` of a histogram `x` are `x`. */
export function familyCandidates(name: string): string[] {
  const m = /^(.+)_(bucket|sum|count)$/.exec(name);
  return m?.[1] === undefined ? [name] : [name, m[1]];
}
