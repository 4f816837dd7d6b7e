/**
 * The one benchmark runner: `npm run bench [suite...]` (`tsx bench/run.ts`). Without a name it
 * runs every `bench/<suite>.bench.ts`, in name order. Each suite's figures are printed and
 * written to `bench/results/<suite>.json` together with the machine they were measured on.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem, release, platform } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Row, Suite } from './lib/suite.js';
import { writeReport } from './report.js';

const benchDir = dirname(fileURLToPath(import.meta.url));
const resultsDir = join(benchDir, 'results');

function available(): string[] {
  return readdirSync(benchDir)
    .filter((f) => f.endsWith('.bench.ts'))
    .map((f) => f.slice(0, -'.bench.ts'.length))
    .sort();
}

function versionOf(pkg: string): string {
  try {
    const json = JSON.parse(readFileSync(join(benchDir, '..', 'node_modules', pkg, 'package.json'), 'utf8')) as { version?: string };
    return json.version ?? 'unknown';
  } catch {
    return 'not installed';
  }
}

function machine(): Record<string, unknown> {
  return {
    cpuModel: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: `${platform()} ${release()}`,
    node: process.version,
    versions: { nodemailer: versionOf('nodemailer'), mustache: versionOf('mustache'), bottleneck: versionOf('bottleneck') },
  };
}

/** A plain aligned table: the columns of all rows, in first-seen order. */
function table(rows: readonly Row[]): string {
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cell = (v: unknown) => (v === undefined || v === null ? '-' : String(v));
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padStart(width[i] ?? 0)).join('  ');
  return [line(cols), line(width.map((w) => '-'.repeat(w))), ...rows.map((r) => line(cols.map((c) => cell(r[c]))))].join('\n');
}

async function runSuite(name: string, quick: boolean): Promise<void> {
  const mod = (await import(pathToFileURL(join(benchDir, `${name}.bench.ts`)).href)) as { default: Suite };
  const suite = mod.default;
  const log = (line: string) => console.log(`[${name}] ${line}`);
  const info = machine();
  log(suite.description);
  log(`machine: ${JSON.stringify(info)}`);
  const startedAt = new Date();
  const result = await suite.run({ log, quick });
  const finishedAt = new Date();
  log(`configuration: ${JSON.stringify(result.config)}`);
  console.log(`\n${table(result.rows)}\n`);
  if (result.comparisons.length > 0) console.log(`${table(result.comparisons)}\n`);
  for (const n of result.notes) log(`note: ${n}`);
  const file = join(resultsDir, quick ? `${name}.quick.json` : `${name}.json`);
  const out = {
    suite: name,
    description: suite.description,
    command: `npm run bench ${name}${quick ? ' -- --quick' : ''}`,
    quick,
    startedAt: startedAt.toISOString(),
    durationS: Math.round((finishedAt.getTime() - startedAt.getTime()) / 100) / 10,
    machine: info,
    ...result,
  };
  writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
  log(`results written to ${file} (${out.durationS} s)`);
}

/**
 * Suites that run the daemon run it as it ships: `dist/cli/main.js`, built from the current
 * source once per run (a stale build would measure old code).
 */
function build(): void {
  const t0 = performance.now();
  const r = spawnSync('npm', ['run', '--silent', 'build'], { cwd: join(benchDir, '..'), stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`npm run build failed (exit ${String(r.status)})`);
  console.log(`[bench] built dist/ in ${Math.round(performance.now() - t0) / 1000} s`);
}

async function main(): Promise<void> {
  const all = available();
  const args = process.argv.slice(2);
  const quick = args.includes('--quick') || process.env['BENCH_QUICK'] === '1';
  const wanted = args.filter((a) => a !== '--quick');
  const unknown = wanted.filter((w) => !all.includes(w));
  if (unknown.length > 0) {
    console.error(`unknown suite(s): ${unknown.join(', ')}; available: ${all.join(', ')}`);
    process.exit(64);
  }
  build();
  const t0 = performance.now();
  for (const name of wanted.length > 0 ? wanted : all) await runSuite(name, quick);
  console.log(`[bench] suites took ${Math.round((performance.now() - t0) / 1000)} s`);
  if (!quick) {
    const w = writeReport(resultsDir);
    console.log(`[bench] report written to ${w.path}: regenerated ${w.regenerated.join(', ') || 'none'}; kept from the previous report ${w.kept.join(', ') || 'none'}`);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
