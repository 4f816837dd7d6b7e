/**
 * A strict parser of the Prometheus text exposition format (version 0.0.4), for tests: it throws
 * on anything a Prometheus server would refuse or that the format forbids — a malformed name,
 * label or value, a sample before its family's `# TYPE`, a family split in two, a duplicate
 * series, a histogram without its `+Inf` bucket or with buckets that decrease or disagree with
 * `_count`. Returns the families with their samples.
 */

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface Sample {
  /** Full sample name (e.g. `x_bucket` for a histogram family `x`). */
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: MetricType;
  help: string;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set<MetricType>(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

export function parsePrometheusText(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const seenSeries = new Set<string>();
  let current: Family | undefined;
  if (!text.endsWith('\n')) throw new Error('exposition must end with a line feed');
  const lines = text.split('\n').slice(0, -1);
  lines.forEach((line, i) => {
    const where = `line ${i + 1}: ${line}`;
    if (line.trim() === '') return;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
      if (!m) return; // other comments are allowed
      const [, kind, name = '', rest = ''] = m;
      if (!NAME.test(name)) throw new Error(`bad metric name in ${where}`);
      let fam = families.get(name);
      if (fam && fam !== current) throw new Error(`family ${name} is split (${where})`);
      if (!fam) {
        fam = { name, type: 'untyped', help: '', samples: [] };
        families.set(name, fam);
      }
      if (kind === 'TYPE') {
        if (fam.samples.length > 0) throw new Error(`TYPE after samples (${where})`);
        if (!TYPES.has(rest as MetricType)) throw new Error(`unknown type in ${where}`);
        fam.type = rest as MetricType;
      } else fam.help = unescapeHelp(rest, where);
      current = fam;
      return;
    }
    const sample = parseSample(line, where);
    const fam = familyOf(sample.name, current);
    if (fam === undefined) throw new Error(`sample without a preceding # TYPE of its family (${where})`);
    const series = `${sample.name}${JSON.stringify(Object.entries(sample.labels).sort())}`;
    if (seenSeries.has(series)) throw new Error(`duplicate series ${series}`);
    seenSeries.add(series);
    fam.samples.push(sample);
  });
  for (const fam of families.values()) if (fam.type === 'histogram') checkHistogram(fam);
  return families;
}

/** The value of one series; throws when it is absent. */
export function valueOf(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number {
  for (const fam of families.values()) {
    for (const s of fam.samples) {
      if (s.name !== name) continue;
      const keys = Object.keys(labels);
      if (keys.length === Object.keys(s.labels).length && keys.every((k) => s.labels[k] === labels[k])) return s.value;
    }
  }
  throw new Error(`no series ${name}${JSON.stringify(labels)}`);
}

function familyOf(sampleName: string, current: Family | undefined): Family | undefined {
  if (current === undefined) return undefined;
  if (sampleName === current.name) return current;
  const suffixes = current.type === 'histogram' ? ['_bucket', '_sum', '_count'] : current.type === 'summary' ? ['_sum', '_count'] : [];
  return suffixes.some((s) => sampleName === current.name + s) ? current : undefined;
}

function parseSample(line: string, where: string): Sample {
  const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)(?: (-?\d+))?$/.exec(line);
  if (!m) throw new Error(`malformed sample (${where})`);
  const [, name = '', rawLabels, rawValue = ''] = m;
  return { name, labels: rawLabels ? parseLabels(rawLabels, where) : {}, value: parseValue(rawValue, where) };
}

function parseLabels(raw: string, where: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let i = 1; // after '{'
  const end = raw.length - 1; // the '}'
  while (i < end) {
    const eq = raw.indexOf('=', i);
    if (eq < 0) throw new Error(`label without '=' (${where})`);
    const name = raw.slice(i, eq);
    if (!LABEL.test(name)) throw new Error(`bad label name "${name}" (${where})`);
    if (name in labels) throw new Error(`duplicate label ${name} (${where})`);
    if (raw[eq + 1] !== '"') throw new Error(`label value not quoted (${where})`);
    let j = eq + 2;
    let value = '';
    for (;;) {
      const c = raw[j];
      if (c === undefined || j >= end) throw new Error(`unterminated label value (${where})`);
      if (c === '"') break;
      if (c === '\\') {
        const n = raw[j + 1];
        if (n === '\\') value += '\\';
        else if (n === '"') value += '"';
        else if (n === 'n') value += '\n';
        else throw new Error(`bad escape in label value (${where})`);
        j += 2;
        continue;
      }
      if (c === '\n') throw new Error(`raw line feed in label value (${where})`);
      value += c;
      j++;
    }
    labels[name] = value;
    i = j + 1;
    if (raw[i] === ',') i++;
    else if (i !== end) throw new Error(`expected ',' or '}' after a label (${where})`);
  }
  return labels;
}

/**
 * Values as Prometheus reads them (Go's strconv.ParseFloat): the format writes NaN, +Inf and
 * -Inf, and the server accepts any letter case (prom-client writes "Nan" for an empty event-loop
 * histogram's mean).
 */
function parseValue(raw: string, where: string): number {
  const lower = raw.toLowerCase();
  if (lower === '+inf' || lower === 'inf') return Infinity;
  if (lower === '-inf') return -Infinity;
  if (lower === 'nan') return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(raw)) throw new Error(`bad value "${raw}" (${where})`);
  return Number(raw);
}

function unescapeHelp(s: string, where: string): string {
  return s.replace(/\\(.)/g, (_, c: string) => {
    if (c === '\\') return '\\';
    if (c === 'n') return '\n';
    throw new Error(`bad escape in HELP (${where})`);
  });
}

function checkHistogram(fam: Family): void {
  const groups = new Map<string, { buckets: Array<[number, number]>; count?: number; sum?: number }>();
  for (const s of fam.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { buckets: [] }));
    if (s.name === `${fam.name}_bucket`) {
      if (le === undefined) throw new Error(`${fam.name}_bucket without le`);
      g.buckets.push([parseValue(le, `le of ${fam.name}`), s.value]);
    } else if (s.name === `${fam.name}_count`) g.count = s.value;
    else if (s.name === `${fam.name}_sum`) g.sum = s.value;
    else throw new Error(`unexpected sample ${s.name} in histogram ${fam.name}`);
  }
  for (const [key, g] of groups) {
    if (g.count === undefined || g.sum === undefined) throw new Error(`histogram ${fam.name}${key} lacks _count or _sum`);
    const sorted = [...g.buckets].sort((a, b) => a[0] - b[0]);
    if (sorted.at(-1)?.[0] !== Infinity) throw new Error(`histogram ${fam.name}${key} lacks the +Inf bucket`);
    for (let i = 1; i < sorted.length; i++) {
      if ((sorted[i]?.[1] ?? 0) < (sorted[i - 1]?.[1] ?? 0)) throw new Error(`histogram ${fam.name}${key}: buckets decrease`);
    }
    if (sorted.at(-1)?.[1] !== g.count) throw new Error(`histogram ${fam.name}${key}: +Inf bucket != _count`);
  }
}
